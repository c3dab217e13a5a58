"""The decision in words: the rule's mandate status and the short text every output leads with.

One place builds what the committee reads first, wherever the rule is shown: the
report's first lines, the PDF's title page, the `make run` summary and the first
metadata entry of report, charts, recommended_allocation and todays_allocation.
The figures come from the engine (engine.analysis.mandate); this module formats them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from dynalloc_dagster.partitions import scenario_label
from engine.analysis.mandate import limit_attainment, mandate_misses, mandate_status
from engine.market.legs import leg_label
from engine.objectives import InvestmentObjectives

DECISION_MAX_CHARS = 1000
"""Dagster's UI shows a markdown metadata entry inline up to about this length; the
decision text stays under it so it reads without a click."""

ASSET_WEIGHTS = "asset_weights_today"
"""recommended_allocation's column of a multi-asset portfolio: [{asset, label, weight}]
in the spec's order (absent in the two-asset study)."""

CHECK_NAMES = {
    "pass_vol": "vol", "pass_sharpe": "Sharpe", "pass_drawdown": "max drawdown",
    "pass_var95": "VaR95", "pass_cvar95": "CVaR95", "pass_cost": "cost drag",
}
"""How a missed mandate check is named in a status line."""


def format_figure(check: str, value: float | None) -> str:
    """A mandate figure as the committee reads it: Sharpe to 2 decimals, the rest in
    percent to 1 decimal (cost drag to 2)."""
    if value is None:
        return "undefined"
    if check == "pass_sharpe":
        return f"{value:.2f}"
    return f"{value:.2%}" if check == "pass_cost" else f"{value:.1%}"


def format_limit(check: str, low: float | None, high: float | None) -> str:
    """The limit a figure is judged against: a band, a minimum or a maximum."""
    if low is not None and high is not None:
        return f"band {format_figure(check, low)}-{format_figure(check, high)}"
    if low is not None:
        return f"min {format_figure(check, low)}"
    return f"max {format_figure(check, high)}"


@dataclass(frozen=True, slots=True)
class MandateSummary:
    """A config's standing against the mandate, ready to print.

    n_meeting / n_scenarios: scenarios where it meets every limit. misses: one phrase
    per missed limit, its worst realised value against the limit (``vol 4.1% in bear
    vs band 8.0%-12.0% (missed in 6 of 6)``). any_config_meets: some evaluated config
    meets the mandate in every scenario. unmet_limits: limits no config meets in every
    scenario, each with the best achievable worst-scenario value.
    """

    config_id: str
    n_meeting: int
    n_scenarios: int
    misses: tuple[str, ...]
    any_config_meets: bool
    unmet_limits: tuple[str, ...]

    @property
    def meets(self) -> bool:
        return self.n_meeting == self.n_scenarios and not self.misses

    def headline(self) -> str:
        """The first thing said about the rule."""
        if self.meets:
            return f"Meets the mandate in all {self.n_scenarios} scenarios."
        lead = "" if self.any_config_meets else (
            "No evaluated rule meets the mandate in every scenario; this is the closest"
            " (highest objective). ")
        return f"{lead}Meets the mandate in {self.n_meeting} of {self.n_scenarios} scenarios."

    def lines(self) -> list[str]:
        """Headline, then one line per missed limit, then the limits no rule meets."""
        out = [self.headline()]
        out += [f"Misses {miss}." for miss in self.misses]
        if self.unmet_limits:
            out.append("No rule meets: " + "; ".join(self.unmet_limits) + ".")
        return out


def mandate_summary(evaluations: pl.DataFrame, objectives: InvestmentObjectives,
                    config_id: str) -> MandateSummary:
    """The :class:`MandateSummary` of ``config_id`` among every config of ``evaluations``
    (the stacked strategy evaluations), judged against ``objectives``."""
    status = mandate_status(evaluations, objectives)
    row = status.filter(pl.col("config_id") == config_id)
    if row.height == 0:
        raise ValueError(f"config {config_id} has no evaluation to judge against the mandate")
    mine = row.row(0, named=True)
    misses = tuple(
        f"{CHECK_NAMES[m['check']]} {format_figure(m['check'], m['worst_value'])} in"
        f" {scenario_label(m['worst_scenario'])} vs"
        f" {format_limit(m['check'], m['low'], m['high'])}"
        f" (missed in {m['n_scenarios_missed']} of {mine['n_scenarios']})"
        for m in mandate_misses(evaluations.filter(pl.col("config_id") == config_id),
                                objectives).iter_rows(named=True)
    )
    unmet = tuple(
        f"{CHECK_NAMES[a['check']]} {format_limit(a['check'], a['low'], a['high'])}"
        f" (best achievable {format_figure(a['check'], a['best_value'])} in"
        f" {scenario_label(a['worst_scenario'])}, config {a['best_config_id']})"
        for a in limit_attainment(evaluations, objectives).iter_rows(named=True)
        if not a["met"] and a["best_config_id"] is not None
    )
    return MandateSummary(
        config_id=config_id, n_meeting=int(mine["n_scenarios_meeting"]),
        n_scenarios=int(mine["n_scenarios"]), misses=misses,
        any_config_meets=bool(status["meets_mandate"].any()), unmet_limits=unmet,
    )


def status_text(summary: MandateSummary) -> str:
    """The mandate status as one paragraph (for a table cell or a metadata string)."""
    return " ".join(summary.lines())


def weights_text(equity_weight: float, leg: str,
                 weights: Sequence[Mapping[str, Any]] | None = None) -> str:
    """Today's weights in words: ``equity 60.0%, government bonds 40.0%``, or for a
    multi-asset portfolio (``weights``: [{asset, weight}] in the spec's order) every
    asset's, ``us_equity 30.0%, europe_equity 12.5%, ...``."""
    if weights:
        return ", ".join(f"{w['asset']} {w['weight']:.1%}" for w in weights)
    return f"equity {equity_weight:.1%}, {leg_label(leg)} {1.0 - equity_weight:.1%}"


def decision_markdown(*, rule: str, config_id: str, equity_weight: float, leg: str,
                      as_of: str, data_source: str, status: str,
                      extra: Sequence[str] = (),
                      weights: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The short decision text an output leads with: status, rule, weights (every asset's
    for a multi-asset portfolio, :func:`weights_text`), data source.

    Kept under :data:`DECISION_MAX_CHARS` (the status is shortened with an ellipsis if
    it must be) so Dagster shows it inline.
    """
    head = [f"**Rule:** {rule} (config `{config_id}`)",
            f"**Today ({as_of}):** {weights_text(equity_weight, leg, weights)}",
            f"**Data:** {data_source}", *extra]
    fixed = len("\n\n".join(["**Mandate:** ", *head]))
    room = DECISION_MAX_CHARS - fixed
    if len(status) > room:
        status = status[: room - 1].rstrip() + "…"
    return "\n\n".join([f"**Mandate:** {status}", *head])
