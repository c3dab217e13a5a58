"""The five named regimes (docs/regimes.md table) and regime validation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from engine.market.regimes import REGIMES, Regime, regime_from_mapping, regimes_from_mapping
from engine.validation import ConfigError

# docs/regimes.md: (equity drift, equity vol, short rate, rho(equity, bond));
# the high_vol and low_vol rate/correlation cells are the project's documented choices.
DESIGN_TABLE = {
    "base": (0.08, 0.18, 0.03, -0.3),
    "bull": (0.15, 0.12, 0.02, 0.0),
    "bear": (-0.05, 0.35, 0.01, -0.6),
    "high_vol": (0.05, 0.40, None, None),
    "low_vol": (0.07, 0.08, None, None),
}


def test_the_five_regimes_and_their_design_values():
    assert sorted(REGIMES) == sorted(DESIGN_TABLE)
    for name, (drift, vol, rate, corr) in DESIGN_TABLE.items():
        regime = REGIMES[name]
        assert regime.name == name
        np.testing.assert_allclose(
            [regime.equity_drift, regime.equity_vol], [drift, vol], rtol=0, atol=0
        )
        if rate is not None:
            np.testing.assert_allclose(
                [regime.short_rate, regime.equity_bond_corr], [rate, corr], rtol=0, atol=0
            )
        # Heston defaults (docs/regimes.md): kappa 2, vol of vol 0.3, rho_sv -0.7,
        # theta = v0 = vol^2.
        np.testing.assert_allclose(
            [regime.heston_kappa, regime.vol_of_vol, regime.spot_variance_corr],
            [2.0, 0.3, -0.7], rtol=0, atol=0,
        )
        np.testing.assert_allclose(regime.variance, vol**2, rtol=1e-15)


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        REGIMES["new"] = REGIMES["base"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "satisfied"),
    # 2 kappa theta vs sigma^2 = 0.09: base 0.1296, bull 0.0576, low_vol 0.0256,
    # bear 0.49, high_vol 0.64.
    [("base", True), ("bear", True), ("high_vol", True), ("bull", False), ("low_vol", False)],
)
def test_feller_condition(name, satisfied):
    regime = REGIMES[name]
    assert regime.feller_satisfied is satisfied
    assert (2 * 2.0 * regime.equity_vol**2 > 0.3**2) is satisfied


def test_shock_correlation_signs_and_positive_definite():
    # docs/regimes.md: corr(Z_S, Z_r) = -rho; the rate shock meets the variance shock through
    # the equity shock only, corr(Z_v, Z_r) = -rho rho_sv.
    regime = REGIMES["bear"]
    c = regime.shock_correlation()
    np.testing.assert_allclose(
        c, [[1, -0.7, -0.42], [-0.7, 1, 0.6], [-0.42, 0.6, 1]], rtol=0, atol=1e-15
    )
    assert np.all(np.linalg.eigvalsh(c) > 0)


def test_round_trip_through_mapping():
    for regime in REGIMES.values():
        assert regime_from_mapping(regime.to_dict()) == regime
    document = {name: {k: v for k, v in r.to_dict().items() if k != "name"}
                for name, r in REGIMES.items()}
    assert regimes_from_mapping(document) == dict(REGIMES)


def test_mapping_defaults_fill_optional_fields():
    regime = regime_from_mapping(
        {"equity_drift": 0.06, "equity_vol": 0.2, "short_rate": 0.02, "equity_bond_corr": -0.2},
        name="custom",
    )
    assert regime.name == "custom"
    assert regime.heston_kappa == 2.0 and regime.dividend_yield == 0.02


def test_unknown_field_is_named():
    values = dict(REGIMES["base"].to_dict(), equity_volatility=0.2)
    with pytest.raises(ConfigError, match="equity_volatility"):
        regime_from_mapping(values)


def test_missing_field_is_named():
    values = REGIMES["base"].to_dict()
    del values["equity_vol"]
    with pytest.raises(ConfigError, match=r"missing field.*equity_vol"):
        regime_from_mapping(values)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("equity_vol", math.nan, "(0, 2]"),
        ("equity_vol", -0.1, "(0, 2]"),
        ("vol_of_vol", 0.0, "(0, 5]"),
        ("equity_bond_corr", 1.5, "[-0.99, 0.99]"),
        ("short_rate", 0.5, "[-0.05, 0.25]"),
        ("rate_vol", -0.01, "(0, 0.2]"),
        ("dividend_yield", math.inf, "[0, 0.2]"),
        ("equity_drift", "0.05", "[-1, 1]"),
    ],
)
def test_invalid_values_name_field_and_range(field, value, allowed):
    values = dict(REGIMES["base"].to_dict(), **{field: value})
    with pytest.raises(ConfigError) as info:
        Regime(**values)
    message = str(info.value)
    assert f".{field} = " in message
    assert allowed in message


def test_invalid_name_rejected():
    with pytest.raises(ConfigError, match="name"):
        dataclasses.replace(REGIMES["base"], name="bad name!")


def test_regime_is_frozen():
    regime = REGIMES["base"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        regime.equity_vol = 0.5  # type: ignore[misc]
    assert regime.equity_vol == 0.18


def test_ints_are_normalised_to_floats():
    regime = dataclasses.replace(REGIMES["base"], equity_drift=0, short_rate=0)
    assert isinstance(regime.equity_drift, float) and isinstance(regime.short_rate, float)
