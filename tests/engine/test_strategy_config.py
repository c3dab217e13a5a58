"""StrategyConfig validation and identity, and the four weight functions on hand values."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from engine.strategy.config import WEIGHT_FNS, StrategyConfig, target_weights
from engine.validation import ConfigError


def _config(weight_fn: str, **kwargs) -> StrategyConfig:
    values = {"target_vol": 0.10, "weight_fn": weight_fn, "vol_window_months": 12,
              "max_allocation": 3.0, **kwargs}
    return StrategyConfig(**values)


@pytest.mark.parametrize(
    ("weight_fn", "expected"),
    # tv = 0.10, rv = 0.20, risk_aversion 1 so k = 1 / 0.10 = 10 (docs/engine.md formulas):
    # inverse_vol 0.1/0.2; squared (0.1/0.2)^2; linear max(0, 1 - 10 (0.2 - 0.1));
    # sigmoid 1 / (1 + exp(10 (0.2 - 0.1))).
    [
        ("inverse_vol", 0.5),
        ("inverse_vol_squared", 0.25),
        ("linear", 0.0),
        ("sigmoid", 1.0 / (1.0 + math.e)),
    ],
)
def test_weight_functions_on_hand_values(weight_fn, expected):
    np.testing.assert_allclose(target_weights(np.array([0.20]), _config(weight_fn)), [expected],
                               rtol=1e-15, atol=0)


def test_weight_functions_below_target_vol():
    # rv = 0.08 < tv = 0.10, risk_aversion 2 so k = 20: inverse 1.25, squared 1.5625,
    # linear 1 - 20 (-0.02) = 1.4, sigmoid 1 / (1 + e^{-0.4}).
    rv = np.array([0.08])
    expected = {"inverse_vol": 1.25, "inverse_vol_squared": 1.5625, "linear": 1.4,
                "sigmoid": 1.0 / (1.0 + math.exp(-0.4))}
    for fn, value in expected.items():
        np.testing.assert_allclose(
            target_weights(rv, _config(fn, risk_aversion=2.0)), [value], rtol=1e-14, atol=0
        )


@pytest.mark.parametrize("weight_fn", WEIGHT_FNS)
def test_weights_are_clipped_to_allocation_range(weight_fn):
    config = _config(weight_fn, min_allocation=0.2, max_allocation=0.9)
    rv = np.array([[0.01, 0.05, 0.10, 0.20, 0.5, 2.0]])
    weights = target_weights(rv, config)
    assert weights.shape == rv.shape
    assert np.all(weights >= 0.2) and np.all(weights <= 0.9)
    unclipped = target_weights(rv, _config(weight_fn))
    np.testing.assert_allclose(weights, np.clip(unclipped, 0.2, 0.9), rtol=0, atol=0)


@pytest.mark.parametrize("weight_fn", ["inverse_vol", "inverse_vol_squared"])
def test_zero_realized_vol_gives_max_allocation(weight_fn):
    with np.errstate(all="raise"):
        weights = target_weights(np.array([0.0]), _config(weight_fn, max_allocation=1.5))
    np.testing.assert_array_equal(weights, [1.5])


def test_defaults():
    # risk_aversion: None means the default 1.0 for the rules that use it.
    config = StrategyConfig(target_vol=0.1, weight_fn="linear", vol_window_months=6)
    assert (config.risk_aversion, config.tc_bps, config.min_allocation, config.max_allocation,
            config.no_trade_band) == (1.0, 5.0, 0.0, 1.0, 0.0)
    assert config.window_days == 6 * 21


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("target_vol", math.nan, "[0.01, 1]"),
        ("target_vol", -0.1, "[0.01, 1]"),
        ("vol_window_months", 0, "[1, 60]"),
        ("vol_window_months", 6.5, "[1, 60]"),
        ("risk_aversion", 0.0, "(0, 50]"),
        ("tc_bps", -1.0, "[0, 500]"),
        ("no_trade_band", 1.5, "[0, 1]"),
        ("min_allocation", -0.1, "[0, 3]"),
    ],
)
def test_invalid_config_names_field_and_range(field, value, allowed):
    values = {"target_vol": 0.1, "weight_fn": "linear", "vol_window_months": 12, field: value}
    with pytest.raises(ConfigError) as info:
        StrategyConfig(**values)
    message = str(info.value)
    assert f"StrategyConfig.{field} = " in message
    assert allowed in message


def test_unknown_weight_fn_lists_the_choices():
    with pytest.raises(ConfigError) as info:
        StrategyConfig(target_vol=0.1, weight_fn="foo", vol_window_months=12)  # type: ignore[arg-type]
    message = str(info.value)
    assert "StrategyConfig.weight_fn = 'foo'" in message
    for name in WEIGHT_FNS:
        assert name in message


def test_max_allocation_below_min_allocation():
    with pytest.raises(ConfigError) as info:
        StrategyConfig(target_vol=0.1, weight_fn="linear", vol_window_months=12,
                       min_allocation=0.5, max_allocation=0.2)
    assert "StrategyConfig.max_allocation = 0.2" in str(info.value)
    assert "[0.5, 3]" in str(info.value)


def test_config_id_is_stable():
    config = StrategyConfig(target_vol=0.1, weight_fn="inverse_vol", vol_window_months=12)
    # The first 10 hex digits of SHA-256 of the canonical JSON
    # {"max_allocation":1.0,"min_allocation":0.0,"no_trade_band":0.0,"risk_aversion":null,
    #  "target_vol":0.1,"tc_bps":5.0,"vol_window_months":12,"weight_fn":"inverse_vol"}
    # (risk_aversion null: the inverse rules do not use it).
    assert config.config_id == "715e7c9fac"
    assert re.fullmatch(r"[0-9a-f]{10}", config.config_id)
    same = StrategyConfig(target_vol=0.1, weight_fn="inverse_vol", vol_window_months=12.0,
                          tc_bps=5)
    assert same == config and same.config_id == config.config_id
    other = dataclasses.replace(config, tc_bps=6.0)
    assert other.config_id != config.config_id
    ids = {dataclasses.replace(config, target_vol=tv).config_id for tv in (0.05, 0.1, 0.15)}
    assert len(ids) == 3


def test_from_dict_round_trip_and_unknown_keys():
    config = StrategyConfig(target_vol=0.12, weight_fn="sigmoid", vol_window_months=9,
                            risk_aversion=2.5, no_trade_band=0.05)
    assert StrategyConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="target_volatility"):
        StrategyConfig.from_dict({**config.to_dict(), "target_volatility": 0.1})


def test_config_is_frozen():
    config = _config("linear")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.target_vol = 0.2  # type: ignore[misc]


@pytest.mark.parametrize("weight_fn", ["inverse_vol", "inverse_vol_squared"])
def test_inverse_rules_drop_risk_aversion_so_equivalent_rules_share_an_id(weight_fn):
    # The inverse rules ignore risk_aversion: whatever is passed becomes None.
    configs = [_config(weight_fn, risk_aversion=value) for value in (None, 0.7, 4.0, -3.0)]
    assert {c.risk_aversion for c in configs} == {None}
    assert len({c.config_id for c in configs}) == 1
    assert configs[0].to_dict()["risk_aversion"] is None


@pytest.mark.parametrize("weight_fn", ["linear", "sigmoid"])
def test_rules_using_risk_aversion_default_it_to_one(weight_fn):
    implicit, explicit = _config(weight_fn), _config(weight_fn, risk_aversion=1.0)
    assert implicit.risk_aversion == 1.0
    assert implicit == explicit and implicit.config_id == explicit.config_id
    assert _config(weight_fn, risk_aversion=2.0).config_id != implicit.config_id
    with pytest.raises(ConfigError, match=r"StrategyConfig\.risk_aversion = 0\.0 .*\(0, 50\]"):
        _config(weight_fn, risk_aversion=0.0)


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    # A numpy int64 or float64 is a number like any other (a search hands them over).
    config = StrategyConfig(target_vol=np.float64(0.12), weight_fn=np.str_("sigmoid"),
                            vol_window_months=np.int64(9), risk_aversion=np.int64(2),
                            tc_bps=np.int32(10), max_allocation=np.float32(1.0))
    plain = StrategyConfig(target_vol=0.12, weight_fn="sigmoid", vol_window_months=9,
                           risk_aversion=2.0, tc_bps=10.0)
    assert config == plain and config.config_id == plain.config_id
    assert type(config.vol_window_months) is int
    assert type(config.risk_aversion) is float
    assert type(config.weight_fn) is str


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vol_window_months", np.int64(70), "StrategyConfig.vol_window_months = 70 is outside"),
        ("vol_window_months", np.float64(6.5), "must be an integer in [1, 60]"),
        ("target_vol", np.float64(2.0), "StrategyConfig.target_vol = 2.0 is outside"),
        ("tc_bps", np.int64(600), "StrategyConfig.tc_bps = 600 is outside the allowed range"),
        ("target_vol", np.bool_(True), "must be a number"),
        ("vol_window_months", True, "must be an integer"),
    ],
)
def test_numpy_scalars_out_of_range_name_the_plain_value(field, value, message):
    values = {"target_vol": 0.1, "weight_fn": "linear", "vol_window_months": 12, field: value}
    with pytest.raises(ConfigError) as info:
        StrategyConfig(**values)
    assert message in str(info.value)
