"""InvestmentObjectives: the mandate's defaults, validation, and the pass columns."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.objectives import MANDATE_CHECKS, OBJECTIVE_CHECKS, InvestmentObjectives
from engine.validation import ConfigError

# A config aiming at 12% vol (its own target) that realises 11%: within 2% of both its
# own target and the mandate's 10%.
ROW = {
    "target_vol": 0.12,
    "ann_vol_median": 0.11,
    "sharpe_median": 1.6,
    "max_drawdown_median": 0.10,
    "var95_median": 0.04,
    "cvar95_median": 0.06,
    "cost_drag_median": 0.0015,
}


def _passes(**overrides) -> dict[str, bool]:
    frame = pl.DataFrame([{**ROW, **overrides}])
    return frame.select(InvestmentObjectives().pass_columns()).row(0, named=True)


def test_defaults_are_design_values():
    # the mandate (docs/optimisation.md): target vol 10%, Sharpe 1.5, drawdown 15%,
    # VaR95 5%, CVaR95 8%, cost budget 20 bp a year, robustness 80%.
    assert InvestmentObjectives().to_dict() == {
        "target_vol": 0.10, "vol_tolerance": 0.02, "min_sharpe": 1.5, "max_drawdown": 0.15,
        "max_var95": 0.05, "max_cvar95": 0.08, "max_cost_bps": 20.0,
        "robustness_threshold": 0.80, "assumed_tc_bps": 10.0, "penalty_weight": 1.0,
    }


def test_a_row_inside_every_threshold_passes():
    assert all(_passes().values())


@pytest.mark.parametrize(
    ("column", "field", "value"),
    [
        ("pass_vol", "ann_vol_median", 0.125),
        ("pass_sharpe", "sharpe_median", 1.49),
        ("pass_drawdown", "max_drawdown_median", 0.16),
        ("pass_var95", "var95_median", 0.051),
        ("pass_cvar95", "cvar95_median", 0.081),
        ("pass_cost", "cost_drag_median", 0.0021),
    ],
)
def test_each_threshold_fails_its_column(column, field, value):
    result = _passes(**{field: value})
    assert result[column] is False
    assert result["meets_objectives"] is False
    assert sum(not v for v in result.values()) == 2


def test_pass_columns_are_objective_checks_in_order():
    result = _passes()
    assert list(result) == [*OBJECTIVE_CHECKS, "meets_objectives"]
    assert set(MANDATE_CHECKS) == set(OBJECTIVE_CHECKS) - {"pass_vol_own_target"}
    assert all(isinstance(label, str) and label for label in OBJECTIVE_CHECKS.values())


def test_mandate_vol_and_own_target_vol_are_judged_separately():
    # Realised 13%, own target 12%: |0.13 - 0.12| = 0.01 <= 0.02 passes the own-target
    # check; |0.13 - 0.10| = 0.03 > 0.02 fails the mandate's, and so the mandate.
    mandate_miss = _passes(ann_vol_median=0.13)
    assert mandate_miss["pass_vol_own_target"] is True
    assert mandate_miss["pass_vol"] is False
    assert mandate_miss["meets_objectives"] is False
    # Below the mandate's band: own target 8%, realised 7.5%: own |0.005| passes,
    # mandate |0.025| fails.
    below = _passes(target_vol=0.08, ann_vol_median=0.075)
    assert (below["pass_vol_own_target"], below["pass_vol"]) == (True, False)
    # Own target 15%, realised 11%: |0.11 - 0.15| = 0.04 fails the own-target check,
    # which is reported but is not part of the mandate: the config still meets it.
    own_miss = _passes(target_vol=0.15)
    assert own_miss["pass_vol_own_target"] is False
    assert own_miss["pass_vol"] is True
    assert own_miss["meets_objectives"] is True


@pytest.mark.parametrize("field", sorted(set(ROW) - {"target_vol"}))
@pytest.mark.parametrize("missing", [None, math.nan])
def test_missing_or_nan_metric_fails(field, missing):
    # A metric undefined on every path (null, or NaN from a NaN median) cannot pass:
    # its check and meets_objectives fail; a missing vol fails both vol checks.
    result = _passes(**{field: missing})
    assert result["meets_objectives"] is False
    expected_failures = 3 if field == "ann_vol_median" else 2
    assert sum(not v for v in result.values()) == expected_failures


def test_invalid_objective_names_field():
    with pytest.raises(ConfigError, match=r"InvestmentObjectives\.max_drawdown = 1\.5"):
        InvestmentObjectives(max_drawdown=1.5)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("assumed_tc_bps", -1.0, "[0, 500]"),
        ("assumed_tc_bps", 501.0, "[0, 500]"),
        ("penalty_weight", 101.0, "[0, 100]"),
        ("penalty_weight", -0.5, "[0, 100]"),
        # limits that scale a penalty must be positive
        ("max_drawdown", 0.0, "(0, 1]"),
        ("max_var95", 0.0, "(0, 1]"),
        ("max_cvar95", 0.0, "(0, 1]"),
        ("max_cost_bps", 0.0, "(0, 1000]"),
        ("vol_tolerance", 0.0, "(0, 1]"),
    ],
)
def test_new_fields_and_penalty_limits_are_range_checked(field, value, allowed):
    with pytest.raises(ConfigError) as info:
        InvestmentObjectives(**{field: value})
    assert f"InvestmentObjectives.{field} = " in str(info.value)
    assert allowed in str(info.value)


def test_numpy_scalars_are_accepted_as_plain_floats():
    objectives = InvestmentObjectives(max_cost_bps=np.int64(25), assumed_tc_bps=np.float64(7.5),
                                      penalty_weight=np.float32(2.0))
    assert (objectives.max_cost_bps, objectives.assumed_tc_bps, objectives.penalty_weight) == (
        25.0, 7.5, 2.0)
    assert type(objectives.max_cost_bps) is float
