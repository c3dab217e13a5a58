"""InvestmentObjectives: defaults from DESIGN.md, validation, and the pass columns."""

from __future__ import annotations

import math

import polars as pl
import pytest

from engine.objectives import InvestmentObjectives
from engine.validation import ConfigError

ROW = {
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
    # DESIGN.md "Investment objectives": target vol 10%, Sharpe 1.5, drawdown 15%,
    # VaR95 5%, CVaR95 8%, cost budget 20 bp a year, robustness 80%.
    assert InvestmentObjectives().to_dict() == {
        "target_vol": 0.10, "vol_tolerance": 0.02, "min_sharpe": 1.5, "max_drawdown": 0.15,
        "max_var95": 0.05, "max_cvar95": 0.08, "max_cost_bps": 20.0,
        "robustness_threshold": 0.80,
    }


def test_a_row_inside_every_threshold_passes():
    assert all(_passes().values())


@pytest.mark.parametrize(
    ("column", "field", "value"),
    [
        ("pass_vol", "ann_vol_median", 0.125),
        ("pass_vol", "ann_vol_median", 0.075),
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


@pytest.mark.parametrize("field", sorted(ROW))
@pytest.mark.parametrize("missing", [None, math.nan])
def test_missing_or_nan_metric_fails(field, missing):
    # A metric undefined on every path (null, or NaN from a NaN median) cannot pass.
    result = _passes(**{field: missing})
    assert result["meets_objectives"] is False
    assert sum(not v for v in result.values()) == 2


def test_invalid_objective_names_field():
    with pytest.raises(ConfigError, match=r"InvestmentObjectives\.max_drawdown = 1\.5"):
        InvestmentObjectives(max_drawdown=1.5)
