"""Investment objectives (DESIGN.md defaults) and the pass/fail test of a config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import polars as pl

from engine.validation import check_range


@dataclass(frozen=True, slots=True)
class InvestmentObjectives:
    """Thresholds a config must meet, judged on the median path of a scenario.

    A config passes when |ann_vol_median - target_vol| <= vol_tolerance,
    sharpe_median >= min_sharpe, max_drawdown_median <= max_drawdown,
    var95_median <= max_var95, cvar95_median <= max_cvar95 and
    cost_drag_median <= max_cost_bps / 1e4. ``robustness_threshold`` is the minimum
    robustness score (engine.analysis.robustness) for a config to count as robust.
    """

    target_vol: float = 0.10
    vol_tolerance: float = 0.02
    min_sharpe: float = 1.5
    max_drawdown: float = 0.15
    max_var95: float = 0.05
    max_cvar95: float = 0.08
    max_cost_bps: float = 20.0
    robustness_threshold: float = 0.80

    def __post_init__(self) -> None:
        owner = "InvestmentObjectives"
        ranges = {
            "target_vol": (0.0, 1.0),
            "vol_tolerance": (0.0, 1.0),
            "min_sharpe": (-5.0, 10.0),
            "max_drawdown": (0.0, 1.0),
            "max_var95": (0.0, 1.0),
            "max_cvar95": (0.0, 1.0),
            "max_cost_bps": (0.0, 1000.0),
            "robustness_threshold": (0.0, 1.0),
        }
        for field, (low, high) in ranges.items():
            object.__setattr__(
                self, field, check_range(owner, field, getattr(self, field), low, high)
            )

    def pass_columns(self) -> list[pl.Expr]:
        """Boolean columns pass_vol ... pass_cost and meets_objectives for a metrics table.

        A null or NaN metric (undefined on every path) fails its check: polars orders NaN
        above every number, so NaN is turned into null before comparing.
        """

        def col(name: str) -> pl.Expr:
            return pl.col(name).fill_nan(None)

        checks = {
            "pass_vol": (col("ann_vol_median") - self.target_vol).abs() <= self.vol_tolerance,
            "pass_sharpe": col("sharpe_median") >= self.min_sharpe,
            "pass_drawdown": col("max_drawdown_median") <= self.max_drawdown,
            "pass_var95": col("var95_median") <= self.max_var95,
            "pass_cvar95": col("cvar95_median") <= self.max_cvar95,
            "pass_cost": col("cost_drag_median") <= self.max_cost_bps / 1e4,
        }
        exprs = {name: expr.fill_null(False) for name, expr in checks.items()}
        return [
            *(expr.alias(name) for name, expr in exprs.items()),
            pl.all_horizontal(*exprs.values()).alias("meets_objectives"),
        ]

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)
