"""Investment objectives (the mandate's defaults), the pass/fail checks and their labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import polars as pl

from engine.validation import check_range

OBJECTIVE_CHECKS: Final[Mapping[str, str]] = {
    "pass_vol": "annualised vol within the tolerance of the mandate's target vol",
    "pass_vol_own_target": "annualised vol within the tolerance of the config's own target vol",
    "pass_sharpe": "Sharpe at least the minimum",
    "pass_drawdown": "max drawdown within the tolerance",
    "pass_var95": "monthly VaR95 within the limit",
    "pass_cvar95": "monthly CVaR95 within the limit",
    "pass_cost": "cost drag within the annual cost budget",
}
"""Every pass column of :meth:`InvestmentObjectives.pass_columns`, in table order, and its
label: the one list reports, SQL docs and checks take the columns from."""

MANDATE_CHECKS: Final[tuple[str, ...]] = (
    "pass_vol", "pass_sharpe", "pass_drawdown", "pass_var95", "pass_cvar95", "pass_cost",
)
"""The mandate's checks: ``meets_objectives`` is their conjunction. pass_vol_own_target
(the rule's accuracy at its own target) is reported but is not part of the mandate."""

MANDATE_FIGURES: Final[Mapping[str, str]] = {
    "pass_vol": "ann_vol_median",
    "pass_sharpe": "sharpe_median",
    "pass_drawdown": "max_drawdown_median",
    "pass_var95": "var95_median",
    "pass_cvar95": "cvar95_median",
    "pass_cost": "cost_drag_median",
}
"""The median-path figure each mandate check reads (evaluate() column names)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """One mandate check as an interval: the figure passes when low <= figure <= high.

    ``low`` or ``high`` is None where the limit is one-sided. Every value is a decimal
    in the figure's unit (vol and cost a year, drawdown and VaR/CVaR fractions of NAV,
    Sharpe annualised).
    """

    check: str
    figure: str
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class InvestmentObjectives:
    """The mandate a config is judged by, on the median path of each scenario.

    Parameters
    ----------
    target_vol : the MANDATE's annualised vol target, in [0, 1] (0.10).
    vol_tolerance : allowed |ann_vol_median - target| for both vol checks, in (0, 1] (0.02).
    min_sharpe : minimum median Sharpe, in [-5, 10] (1.5).
    max_drawdown : maximum median max drawdown, a positive fraction, in (0, 1] (0.15).
    max_var95, max_cvar95 : maximum median monthly VaR95 / CVaR95 (positive losses), in
        (0, 1] (0.05, 0.08).
    max_cost_bps : annual cost budget in basis points of NAV, in (0, 1000] (20).
    robustness_threshold : the robustness (engine.analysis.robustness) a config needs to
        count as robust, in [0, 1] (0.80).
    assumed_tc_bps : the one transaction-cost assumption every config is ranked at, in
        basis points per unit of weight traded, in [0, 500] (10).
    penalty_weight : lambda of the agent's objective (engine.analysis.scoring), in
        [0, 100] (1).

    Notes
    -----
    The limits that scale a penalty (vol_tolerance, max_drawdown, max_var95, max_cvar95,
    max_cost_bps) must be positive: a violation is measured as a fraction of its limit.
    """

    target_vol: float = 0.10
    vol_tolerance: float = 0.02
    min_sharpe: float = 1.5
    max_drawdown: float = 0.15
    max_var95: float = 0.05
    max_cvar95: float = 0.08
    max_cost_bps: float = 20.0
    robustness_threshold: float = 0.80
    assumed_tc_bps: float = 10.0
    penalty_weight: float = 1.0

    def __post_init__(self) -> None:
        owner = "InvestmentObjectives"
        # field: (low, high, low inclusive)
        ranges = {
            "target_vol": (0.0, 1.0, True),
            "vol_tolerance": (0.0, 1.0, False),
            "min_sharpe": (-5.0, 10.0, True),
            "max_drawdown": (0.0, 1.0, False),
            "max_var95": (0.0, 1.0, False),
            "max_cvar95": (0.0, 1.0, False),
            "max_cost_bps": (0.0, 1000.0, False),
            "robustness_threshold": (0.0, 1.0, True),
            "assumed_tc_bps": (0.0, 500.0, True),
            "penalty_weight": (0.0, 100.0, True),
        }
        for field, (low, high, low_inclusive) in ranges.items():
            value = check_range(owner, field, getattr(self, field), low, high,
                                low_inclusive=low_inclusive)
            object.__setattr__(self, field, value)

    @property
    def vol_band(self) -> tuple[float, float]:
        """The mandate's vol band [max(0, target_vol - vol_tolerance), target_vol +
        vol_tolerance], annualised; a realised vol in it meets the mandate's vol. The
        edges are rounded to 12 decimals (0.1 + 0.02 is 0.12, not 0.12000000000000001)."""
        low = max(0.0, self.target_vol - self.vol_tolerance)
        return round(low, 12), round(self.target_vol + self.vol_tolerance, 12)

    def limits(self) -> dict[str, Limit]:
        """Each of :data:`MANDATE_CHECKS` as a :class:`Limit` on its
        :data:`MANDATE_FIGURES` column: the one statement of the mandate's thresholds
        that the pass columns, the penalties and the mandate status all read."""
        low, high = self.vol_band
        bounds = {
            "pass_vol": (low, high),
            "pass_sharpe": (self.min_sharpe, None),
            "pass_drawdown": (None, self.max_drawdown),
            "pass_var95": (None, self.max_var95),
            "pass_cvar95": (None, self.max_cvar95),
            "pass_cost": (None, self.max_cost_bps / 1e4),
        }
        return {check: Limit(check, MANDATE_FIGURES[check], *bounds[check])
                for check in MANDATE_CHECKS}

    def pass_columns(self) -> list[pl.Expr]:
        """The boolean columns of :data:`OBJECTIVE_CHECKS` and ``meets_objectives``.

        Needs the median metrics and the config's own ``target_vol`` column (an evaluate
        table has both). pass_vol compares the vol with the mandate's target_vol,
        pass_vol_own_target with the config's; meets_objectives is all of
        :data:`MANDATE_CHECKS`. A null or NaN metric (undefined on every path) fails its
        check: polars orders NaN above every number, so NaN becomes null before comparing.
        """

        def col(name: str) -> pl.Expr:
            return pl.col(name).fill_nan(None)

        checks = {check: within(col(limit.figure), limit)
                  for check, limit in self.limits().items()}
        own_miss = (col("ann_vol_median") - pl.col("target_vol")).abs()
        checks["pass_vol_own_target"] = own_miss <= self.vol_tolerance
        exprs = {name: checks[name].fill_null(False) for name in OBJECTIVE_CHECKS}
        return [
            *(expr.alias(name) for name, expr in exprs.items()),
            pl.all_horizontal(*(exprs[name] for name in MANDATE_CHECKS)).alias("meets_objectives"),
        ]

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def within(value: pl.Expr, limit: Limit) -> pl.Expr:
    """True where ``value`` lies in [limit.low, limit.high] (null where value is null)."""
    expr = pl.lit(True)
    if limit.low is not None:
        expr = expr & (value >= limit.low)
    if limit.high is not None:
        expr = expr & (value <= limit.high)
    return expr
