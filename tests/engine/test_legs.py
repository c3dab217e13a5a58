"""engine.market.legs: the non-equity leg simulated is the one the live data supports."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.market.calibration import calibrate
from engine.market.legs import leg_label, leg_of
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.strategy import StrategyConfig, evaluate
from engine.strategy.evaluation import market_from_paths


def test_leg_of_the_market_data_columns():
    assert leg_of(["date", "close", "risk_free"]) == "cash"
    assert leg_of(["date", "close", "risk_free", "bond_close"]) == "bond"
    assert leg_label("bond") == "government bonds"
    assert leg_label("cash") == "cash"
    with pytest.raises(ValueError, match="'gold' is not one of bond, cash"):
        leg_label("gold")


def test_the_leg_picks_the_array_and_leaves_the_draws_alone():
    bond = simulate_scenario(REGIMES["bear"], 8, 3, warmup_months=6, horizon_years=1)
    cash = simulate_scenario(REGIMES["bear"], 8, 3, warmup_months=6, horizon_years=1,
                             leg="cash")
    np.testing.assert_array_equal(bond.equity, cash.equity)
    np.testing.assert_array_equal(bond.bond, cash.bond)
    assert market_from_paths(bond).alternative is bond.bond
    assert market_from_paths(cash).alternative is cash.cash
    with pytest.raises(ValueError, match="defensive leg 'gold'"):
        simulate_scenario(REGIMES["bear"], 2, 3, leg="gold")


def test_an_all_defensive_rule_earns_the_leg_it_holds():
    # weight clipped to 0: the portfolio is the leg. On cash its monthly excess return
    # over the path's risk-free is 0 (Sharpe undefined or 0, vol ~0); on bonds it is not.
    config = StrategyConfig(target_vol=0.05, weight_fn="inverse_vol", vol_window_months=3,
                            max_allocation=0.0, min_allocation=0.0, tc_bps=0.0)
    objectives = InvestmentObjectives()
    bond = simulate_scenario(REGIMES["base"], 20, 4, warmup_months=3, horizon_years=2)
    cash = simulate_scenario(REGIMES["base"], 20, 4, warmup_months=3, horizon_years=2,
                             leg="cash")
    on_bond = evaluate(bond, [config], objectives).row(0, named=True)
    on_cash = evaluate(cash, [config], objectives).row(0, named=True)
    assert on_bond["ann_vol_median"] > 0.01  # a 7-year bond index moves
    assert on_cash["ann_vol_median"] < 0.01  # cash at the short rate barely does


def test_calibration_records_the_leg_of_its_history():
    paths = simulate_scenario(REGIMES["base"], 1, 5, warmup_months=0, horizon_years=2)
    history = pl.DataFrame({"close": paths.equity[0], "risk_free": paths.short_rate[0]})
    assert calibrate(history).defensive_leg == "cash"
    with_bond = history.with_columns(pl.Series("bond_close", paths.bond[0]))
    assert calibrate(with_bond).defensive_leg == "bond"
