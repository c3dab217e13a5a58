"""The investment-committee report as markdown, built from the tables it reports."""

from __future__ import annotations

from typing import Any

import polars as pl

from dynalloc_dagster.plots import rule_label
from engine.analysis.scoring import unmet_objectives
from engine.objectives import OBJECTIVE_CHECKS, InvestmentObjectives

_LABELS = dict(OBJECTIVE_CHECKS)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def report_markdown(
    *, objectives: InvestmentObjectives, narrative: dict[str, Any], recommended: dict[str, Any],
    leaderboard: pl.DataFrame, evaluations: pl.DataFrame, history: pl.DataFrame,
    costs: pl.DataFrame, charts: pl.DataFrame,
) -> str:
    """The report: the decision first, then the narrative, the leaderboard, the
    recommended rule by scenario, the optimisation, the cost sensitivity and the charts.
    Every figure is formatted from the tables passed in."""
    ranked = leaderboard.sort("rank")
    best = ranked.row(0, named=True)
    threshold = objectives.robustness_threshold
    n_robust = int(ranked["robust"].sum())
    equity = recommended["equity_weight_today"]
    lines = [
        "# dynalloc: volatility-targeting review",
        "",
        "## Decision",
        "",
        f"**Recommended rule:** {rule_label(best)} (config `{best['config_id']}`), ranked at"
        f" {objectives.assumed_tc_bps:g} bp per unit traded.",
        "",
        f"**Today's target weights** (as of {recommended['as_of']}): equity {equity:.1%},"
        f" government bonds {1.0 - equity:.1%}.",
        "",
        f"**Robustness:** in its worst scenario ({best['worst_scenario']}) the rule keeps"
        f" {best['robustness']:.1%} of the best mean Sharpe found there; robust means at least"
        f" {threshold:.0%} in every scenario. "
        + (f"{n_robust} of {ranked.height} configs are robust."
           if n_robust else f"None of the {ranked.height} configs evaluated is robust."),
        "",
    ]
    unmet = unmet_objectives(
        evaluations.filter(pl.col("config_id").is_in(set(history["config_id"]))), objectives)
    if unmet:
        labels = ", ".join(_LABELS[column] for column in unmet)
        lines += [f"**Objectives no config meets in every scenario:** {labels}.", ""]
    lines += ["## Narrative", "", f"*Written by {narrative['written_by']}.*", "",
              narrative["narrative"].strip(), "", "## Leaderboard (top 10)", ""]
    lines += _table(
        ["rank", "rule", "objective", "robustness", "worst scenario", "robust"],
        [[str(r["rank"]), rule_label(r), f"{r['objective']:.3f}", f"{r['robustness']:.1%}",
          r["worst_scenario"], "yes" if r["robust"] else "no"]
         for r in ranked.head(10).iter_rows(named=True)])
    lines += ["", "## The recommended rule in every scenario", ""]
    rows = evaluations.filter(pl.col("config_id") == best["config_id"]).sort("scenario")
    lines += _table(
        ["scenario", "mean Sharpe", "ann. return", "ann. vol", "max drawdown (median)",
         "meets objectives"],
        [[r["scenario"], f"{r['sharpe_mean']:.2f}", f"{r['ann_return_mean']:.1%}",
          f"{r['ann_vol_mean']:.1%}", f"{r['max_drawdown_median']:.1%}",
          "yes" if r["meets_objectives"] else "no"] for r in rows.iter_rows(named=True)])
    lines += ["", "## Optimisation", ""]
    by_proposer = history.group_by("proposer").len().sort("proposer")
    lines.append(
        f"{history.height} configs in {history['round'].n_unique()} rounds"
        f" ({', '.join(f'{n} by {p}' for p, n in by_proposer.iter_rows())}); stopped:"
        f" {history['stop_reason'][-1] or 'not stopped'}; best objective"
        f" {history['best_objective_so_far'][-1]:.3f}.")
    lines += ["", f"## Cost sensitivity (worst-scenario mean Sharpe; ranked at"
              f" {objectives.assumed_tc_bps:g} bp)", ""]
    worst = costs.group_by("config_id", "tc_bps").agg(pl.col("worst_sharpe_mean").first())
    costs_bps = sorted(worst["tc_bps"].unique())
    cost_rows = []
    for row in ranked.filter(pl.col("config_id").is_in(set(costs["config_id"]))).iter_rows(
            named=True):
        values = dict(worst.filter(pl.col("config_id") == row["config_id"])
                      .select("tc_bps", "worst_sharpe_mean").iter_rows())
        cost_rows.append([f"#{row['rank']} {rule_label(row)}",
                          *(f"{values[c]:.2f}" for c in costs_bps)])
    lines += _table(["rule", *(f"{c:g} bp" for c in costs_bps)], cost_rows)
    lines += ["", "## Objectives", ""]
    lines += _table(["objective", "value"],
                    [[name, f"{value:g}"] for name, value in objectives.to_dict().items()])
    lines += ["", "## Charts", ""]
    lines += [f"![{row['chart']}]({row['file']})" for row in charts.iter_rows(named=True)
              if row["file"].endswith(".png")]
    return "\n".join(lines) + "\n"

