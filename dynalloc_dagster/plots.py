"""The report's figures, each a function of the tables it shows (matplotlib, Agg backend).

Axes in percent where the quantity is a rate, configs named by their parameters rather
than their hash ids, and the recommended config highlighted where it appears.
"""

from __future__ import annotations

import matplotlib
import polars as pl

matplotlib.use("Agg")
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

PROPOSER_COLOURS = {"lhs": "tab:blue", "tpe": "tab:orange", "bedrock": "tab:green"}


def rule_label(row: dict) -> str:
    """A config in words: '<weight fn>, target <tv>%, <n>m window[, risk aversion <k>]'."""
    text = (f"{row['weight_fn'].replace('_', ' ')}, target {row['target_vol']:.1%},"
            f" {row['vol_window_months']}m window")
    if row.get("risk_aversion") is not None:
        text += f", risk aversion {row['risk_aversion']:.2f}"
    return text


def sharpe_by_scenario(evaluations: pl.DataFrame, leaderboard: pl.DataFrame,
                       top: int = 5) -> Figure:
    """Mean Sharpe of the top configs in every scenario, the recommended one first."""
    ranked = leaderboard.sort("rank").head(top)
    scenarios = sorted(evaluations["scenario"].unique())
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / max(ranked.height, 1)
    for i, row in enumerate(ranked.iter_rows(named=True)):
        rows = evaluations.filter(pl.col("config_id") == row["config_id"])
        sharpe = dict(zip(rows["scenario"], rows["sharpe_mean"], strict=True))
        xs = [j + i * width for j in range(len(scenarios))]
        ax.bar(xs, [sharpe.get(s, float("nan")) for s in scenarios], width=width,
               label=("recommended: " if i == 0 else f"#{row['rank']}: ") + rule_label(row),
               edgecolor="black" if i == 0 else None, linewidth=1.5 if i == 0 else 0)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scenarios))], scenarios)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("mean Sharpe across paths")
    ax.set_title("Top configs: Sharpe in every scenario")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def robustness_ranking(leaderboard: pl.DataFrame, threshold: float) -> Figure:
    """Robustness of every config by rank, with the objectives' robust threshold."""
    ordered = leaderboard.sort("rank")
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(ordered["rank"].to_list(), ordered["robustness"].to_list(), marker=".",
            label="robustness (worst-scenario share of the best Sharpe)")
    ax.plot(ordered["rank"].to_list(), ordered["objective"].to_list(), marker=".",
            alpha=0.7, label="objective (robustness minus penalties)")
    ax.axhline(threshold, color="grey", linestyle="--", label=f"robust threshold {threshold:.0%}")
    ax.set_xlabel("rank by objective")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Robustness and objective of every config")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def risk_return(evaluations: pl.DataFrame, recommended_id: str) -> Figure:
    """Annualised vol against return of every config in every scenario."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for (scenario,), rows in evaluations.sort("scenario").group_by("scenario",
                                                                   maintain_order=True):
        ax.scatter(rows["ann_vol_mean"].to_list(), rows["ann_return_mean"].to_list(), s=12,
                   alpha=0.6, label=scenario)
    best = evaluations.filter(pl.col("config_id") == recommended_id)
    ax.scatter(best["ann_vol_mean"].to_list(), best["ann_return_mean"].to_list(), s=120,
               marker="*", color="black", label="recommended config")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("annualised volatility (mean across paths)")
    ax.set_ylabel("annualised return (mean across paths)")
    ax.set_title("Risk and return of every config, by scenario")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def optimisation_convergence(history: pl.DataFrame) -> Figure:
    """Best objective so far against configs evaluated, each config coloured by proposer."""
    ordered = history.sort("evaluation_index")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.step(ordered["evaluation_index"].to_list(), ordered["best_objective_so_far"].to_list(),
            where="post", color="black", label="best objective so far")
    for (proposer,), rows in ordered.group_by("proposer", maintain_order=True):
        ax.scatter(rows["evaluation_index"].to_list(), rows["objective"].to_list(), s=14,
                   color=PROPOSER_COLOURS.get(proposer), alpha=0.7, label=f"{proposer} proposal")
    for boundary in ordered.group_by("round").agg(pl.col("evaluation_index").min())[
            "evaluation_index"].sort().to_list()[1:]:
        ax.axvline(boundary - 0.5, color="grey", linewidth=0.5, linestyle=":")
    ax.set_xlabel("configs evaluated (dotted lines: rounds)")
    ax.set_ylabel("objective")
    reason = ordered["stop_reason"][-1]
    ax.set_title(f"Optimisation convergence ({reason or 'not stopped'})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cost_sensitivity(costs: pl.DataFrame, leaderboard: pl.DataFrame,
                     assumed_tc_bps: float) -> Figure:
    """Worst-scenario Sharpe of the top configs across cost assumptions."""
    labels = {row["config_id"]: row for row in leaderboard.iter_rows(named=True)}
    worst = costs.group_by("config_id", "tc_bps").agg(pl.col("worst_sharpe_mean").first())
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for config_id in costs["config_id"].unique(maintain_order=True):
        rows = worst.filter(pl.col("config_id") == config_id).sort("tc_bps")
        row = labels[config_id]
        ax.plot(rows["tc_bps"].to_list(), rows["worst_sharpe_mean"].to_list(), marker="o",
                linewidth=2.5 if row["rank"] == 1 else 1.2,
                label=f"#{row['rank']}: {rule_label(row)}")
    ax.axvline(assumed_tc_bps, color="grey", linestyle="--",
               label=f"ranking assumption {assumed_tc_bps:g} bp")
    ax.set_xlabel("transaction cost, bp per unit of weight traded")
    ax.set_ylabel("worst-scenario mean Sharpe")
    ax.set_title("Cost sensitivity of the top configs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def close(figures: dict[str, Figure]) -> None:
    for fig in figures.values():
        plt.close(fig)
