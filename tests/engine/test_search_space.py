"""engine.optimisation.search_space: proposals to configs, validation, the JSON schema."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from engine.optimisation.search_space import PARAMETERS, SearchSpace
from engine.strategy.config import WEIGHT_FNS, StrategyConfig
from engine.validation import ConfigError

SPACE = SearchSpace()
LINEAR = {"weight_fn": "linear", "target_vol": 0.123456, "vol_window_months": 12,
          "risk_aversion": 2.34567}


def test_make_config_rounds_and_carries_the_fixed_fields():
    space = SearchSpace(min_allocation=0.1, max_allocation=0.9, no_trade_band=0.02)
    config = space.make_config(LINEAR, tc_bps=10.0)
    # target_vol to 4 decimals, risk_aversion to 3
    assert config == StrategyConfig(target_vol=0.1235, weight_fn="linear", vol_window_months=12,
                                    risk_aversion=2.346, tc_bps=10.0, min_allocation=0.1,
                                    max_allocation=0.9, no_trade_band=0.02)


def test_inverse_rules_ignore_risk_aversion():
    values = {"weight_fn": "inverse_vol", "target_vol": 0.1, "vol_window_months": 6}
    plain = SPACE.make_config(values, 10.0)
    assert plain.risk_aversion is None
    assert SPACE.make_config({**values, "risk_aversion": 3.0}, 10.0) == plain
    assert SPACE.make_config({**values, "risk_aversion": None}, 10.0) == plain


def test_numpy_scalars_are_accepted():
    values = {"weight_fn": np.str_("sigmoid"), "target_vol": np.float64(0.08),
              "vol_window_months": np.int64(18), "risk_aversion": np.float32(1.5)}
    config = SPACE.make_config(values, np.float64(10.0))
    assert config == SPACE.make_config({"weight_fn": "sigmoid", "target_vol": 0.08,
                                        "vol_window_months": 18, "risk_aversion": 1.5}, 10.0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"target_vol": 0.3}, "SearchSpace.target_vol = 0.3 is outside the allowed range"
                              " [0.05, 0.2]"),
        ({"target_vol": 0.04}, "SearchSpace.target_vol = 0.04 is outside"),
        ({"vol_window_months": 25}, "SearchSpace.vol_window_months = 25 is outside the allowed"
                                    " range [6, 24]"),
        ({"vol_window_months": 12.5}, "SearchSpace.vol_window_months = 12.5 must be an integer"),
        ({"risk_aversion": 6.0}, "SearchSpace.risk_aversion = 6.0 is outside the allowed range"
                                 " [0.5, 5]"),
        ({"risk_aversion": None}, "SearchSpace.risk_aversion = None must be a number in"
                                  " [0.5, 5]"),
        ({"weight_fn": "momentum"}, "SearchSpace.weight_fn = 'momentum' is not one of"),
        ({"target_vol": "0.1"}, "SearchSpace.target_vol = '0.1' must be a number"),
        ({"tc_bps": 5.0}, "SearchSpace: unknown field(s) tc_bps"),
    ],
)
def test_invalid_proposals_name_the_field_and_range(override, message):
    with pytest.raises(ConfigError) as info:
        SPACE.make_config({**LINEAR, **override}, 10.0)
    assert message in str(info.value)


@pytest.mark.parametrize("missing", ["weight_fn", "target_vol", "vol_window_months",
                                     "risk_aversion"])
def test_missing_fields_are_named(missing):
    values = {k: v for k, v in LINEAR.items() if k != missing}
    with pytest.raises(ConfigError, match=f"^SearchSpace.{missing} = None"):
        SPACE.make_config(values, 10.0)


def test_a_weight_fn_outside_a_narrower_space_is_refused():
    space = SearchSpace(weight_fns=("linear",))
    refused = r"^SearchSpace\.weight_fn = 'sigmoid' is not one of linear$"
    with pytest.raises(ConfigError, match=refused):
        space.make_config({**LINEAR, "weight_fn": "sigmoid"}, 10.0)


def test_validate_accepts_points_and_refuses_the_rest():
    config = SPACE.make_config(LINEAR, 10.0)
    SPACE.validate(config)
    for bad in (
        dataclasses.replace(config, target_vol=0.25),  # out of range
        dataclasses.replace(config, target_vol=0.12345),  # not rounded as the space rounds
        dataclasses.replace(config, max_allocation=0.8),  # not the space's fixed field
    ):
        with pytest.raises(ConfigError, match="SearchSpace"):
            SPACE.validate(bad)


def test_json_schema_describes_one_proposal():
    schema = SPACE.json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(PARAMETERS)
    assert set(schema["properties"]) == set(PARAMETERS)
    assert "tc_bps" not in schema["properties"]
    props = schema["properties"]
    assert props["weight_fn"]["enum"] == list(WEIGHT_FNS)
    assert (props["target_vol"]["minimum"], props["target_vol"]["maximum"]) == (0.05, 0.20)
    assert props["vol_window_months"]["type"] == "integer"
    assert (props["vol_window_months"]["minimum"], props["vol_window_months"]["maximum"]) == (
        6, 24)
    assert props["risk_aversion"]["type"] == ["number", "null"]
    assert (props["risk_aversion"]["minimum"], props["risk_aversion"]["maximum"]) == (0.5, 5.0)
    assert all(prop["description"] for prop in props.values())


def test_json_schema_follows_a_custom_space():
    space = SearchSpace(target_vol=(0.08, 0.12), vol_window_months=(9, 15),
                        weight_fns=("sigmoid", "inverse_vol"))
    props = space.json_schema()["properties"]
    assert props["weight_fn"]["enum"] == ["sigmoid", "inverse_vol"]
    assert (props["target_vol"]["minimum"], props["target_vol"]["maximum"]) == (0.08, 0.12)
    assert (props["vol_window_months"]["minimum"], props["vol_window_months"]["maximum"]) == (
        9, 15)


def test_search_space_has_no_cost_dimension():
    assert "tc_bps" not in {f.name for f in dataclasses.fields(SearchSpace)}
    with pytest.raises(TypeError):
        SearchSpace(tc_bps=(0.0, 20.0))  # type: ignore[call-arg]
