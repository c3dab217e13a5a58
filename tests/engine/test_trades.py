"""engine.strategy.trades: hand-computed rebalances."""

from __future__ import annotations

import pytest

from engine.strategy.trades import trades_frame, trades_to_target
from engine.validation import ConfigError


def test_units_and_prices_hand_computed() -> None:
    # 10 equity units at 50 and 50 bond units at 10: NAV 1000, w = 0.5. Target 0.6,
    # 10 bps: cost = 10 / 1e4 x (0.1 + 0.1) x 1000 = 0.2; NAV after 999.8; equity
    # 0.6 x 999.8 = 599.88 (+99.88, +1.9976 units); bond 399.92 (-100.08, -10.008 units)
    t = trades_to_target(0.6, equity_units=10, bond_units=50, equity_price=50, bond_price=10,
                         tc_bps=10, no_trade_band=0.02)
    assert t.trade
    assert t.nav == 1000.0
    assert t.current_equity_weight == 0.5
    assert t.equity_weight_change == pytest.approx(0.1, abs=1e-15)
    assert t.bond_weight_change == pytest.approx(-0.1, abs=1e-15)
    assert t.cost == pytest.approx(0.2, abs=1e-12)
    assert t.nav_after == pytest.approx(999.8, abs=1e-12)
    assert t.equity_value_change == pytest.approx(99.88, abs=1e-12)
    assert t.bond_value_change == pytest.approx(-100.08, abs=1e-12)
    assert t.equity_units_change == pytest.approx(1.9976, abs=1e-12)
    assert t.bond_units_change == pytest.approx(-10.008, abs=1e-12)
    # the value changes pay the cost
    assert t.equity_value_change + t.bond_value_change == pytest.approx(-t.cost, abs=1e-12)


def test_change_inside_the_band_is_skipped() -> None:
    t = trades_to_target(0.62, nav=1000.0, equity_weight=0.6, no_trade_band=0.05, tc_bps=10)
    assert not t.trade
    assert t.new_equity_weight == 0.6
    assert (t.cost, t.equity_value_change, t.bond_value_change) == (0.0, 0.0, 0.0)
    assert t.equity_units_change is None


def test_a_change_of_exactly_the_band_trades() -> None:
    """|change| < band skips, |change| = band trades. Dyadic weights make the change
    exactly the band (0.65 - 0.6 is 0.05000000000000004 in binary, above a band of 0.05,
    so it would trade under ``>`` too)."""
    assert 0.75 - 0.5 == 0.25 and 0.25 - 0.5 == -0.25
    for target in (0.75, 0.25):
        edge = trades_to_target(target, nav=1000.0, equity_weight=0.5, no_trade_band=0.25)
        assert edge.trade and edge.new_equity_weight == target
    inside = trades_to_target(0.75, nav=1000.0, equity_weight=0.5, no_trade_band=0.25 + 2**-20)
    assert not inside.trade


def test_selling_equity_and_the_frame() -> None:
    # w 0.8 -> 0.3 on NAV 2e6 at 5 bps: cost 5e-4 x 1.0 x 2e6 = 1000
    t = trades_to_target(0.3, nav=2e6, equity_weight=0.8, tc_bps=5)
    assert t.cost == pytest.approx(1000.0, abs=1e-9)
    assert t.equity_value_change == pytest.approx(0.3 * 1_999_000 - 1.6e6, abs=1e-6)
    assert t.bond_value_change == pytest.approx(0.7 * 1_999_000 - 0.4e6, abs=1e-6)
    frame = trades_frame(t)
    assert frame["asset"].to_list() == ["equity", "bond"]
    assert frame["weight_change"].to_list() == pytest.approx([-0.5, 0.5], abs=1e-15)
    assert frame["cost"].sum() == pytest.approx(1000.0, abs=1e-9)
    assert frame["units_change"].null_count() == 2


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ConfigError, match="target_equity_weight"):
        trades_to_target(-0.1, nav=1.0, equity_weight=0.5)
    with pytest.raises(ValueError, match="equity_price"):
        trades_to_target(0.5, equity_units=1, bond_units=1, equity_price=0.0, bond_price=1.0)
    with pytest.raises(ValueError, match="give nav and equity_weight"):
        trades_to_target(0.5)
