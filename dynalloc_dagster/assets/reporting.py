"""Charts, the executive report and the recommended allocation rule.

No `from __future__ import annotations`: Dagster reads Config annotations at runtime."""

from pathlib import Path

import dagster as dg
import matplotlib
import polars as pl

from dynalloc_dagster.io_managers import atomic_write
from dynalloc_dagster.metadata import table_metadata
from dynalloc_dagster.resources import ArtifactStore
from engine.strategy import CONFIG_COLUMNS, StrategyConfig
from engine.strategy.backtest import todays_weight

matplotlib.use("Agg")
from matplotlib import pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages

OWNERS = ["team:quant-research"]


@dg.asset(group_name="reports", owners=OWNERS, kinds={"matplotlib", "pdf"}, code_version="1")
def charts(
    artifacts: ArtifactStore, strategy_evaluations: pl.DataFrame,
    robustness_leaderboard: pl.DataFrame,
) -> dg.MaterializeResult:
    """Sharpe by scenario for the top configs, robustness scores, and risk/return per
    scenario; each figure as PNG, all together in one PDF."""
    top = robustness_leaderboard.sort("rank").head(10)["config_id"].to_list()
    figures = {
        "sharpe_by_scenario": _sharpe_by_scenario(strategy_evaluations, top),
        "robustness_scores": _robustness_scores(robustness_leaderboard),
        "risk_return": _risk_return(strategy_evaluations),
    }
    files = []
    for name, fig in figures.items():
        path = artifacts.path(f"{name}.png")
        atomic_write(path, lambda tmp, f=fig: f.savefig(tmp, format="png", dpi=110))
        files.append(str(path))
    pdf_path = artifacts.path("charts.pdf")

    def write_pdf(tmp: Path) -> None:
        with PdfPages(tmp) as pdf:
            for fig in figures.values():
                pdf.savefig(fig)

    atomic_write(pdf_path, write_pdf)
    for fig in figures.values():
        plt.close(fig)
    table = pl.DataFrame({"chart": [*figures, "all"], "path": [*files, str(pdf_path)]})
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "pdf": dg.MetadataValue.path(str(pdf_path)),
    })


def _sharpe_by_scenario(evaluations: pl.DataFrame, config_ids: list[str]):
    fig, ax = plt.subplots(figsize=(9, 4.5))
    scenarios = sorted(evaluations["scenario"].unique())
    width = 0.8 / max(len(config_ids), 1)
    for i, cid in enumerate(config_ids):
        rows = evaluations.filter(pl.col("config_id") == cid).sort("scenario")
        xs = [scenarios.index(s) + i * width for s in rows["scenario"]]
        ax.bar(xs, rows["sharpe_mean"].to_list(), width=width, label=cid)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(scenarios))], scenarios)
    ax.set_ylabel("mean Sharpe across paths")
    ax.set_title("Top robust configs: Sharpe in every scenario")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def _robustness_scores(leaderboard: pl.DataFrame):
    fig, ax = plt.subplots(figsize=(9, 4))
    ordered = leaderboard.sort("rank")
    ax.plot(ordered["rank"].to_list(), ordered["robustness_score"].to_list(), marker=".")
    ax.axhline(0.8, color="grey", linestyle="--", label="robust threshold 0.80")
    ax.set_xlabel("rank")
    ax.set_ylabel("robustness score (min over scenarios)")
    ax.set_title("Robustness leaderboard")
    ax.legend()
    fig.tight_layout()
    return fig


def _risk_return(evaluations: pl.DataFrame):
    fig, ax = plt.subplots(figsize=(9, 5))
    for (scenario,), rows in evaluations.group_by("scenario", maintain_order=True):
        ax.scatter(rows["ann_vol_mean"].to_list(), rows["ann_return_mean"].to_list(), s=10,
                   label=scenario)
    ax.set_xlabel("annualised vol (mean across paths)")
    ax.set_ylabel("annualised return (mean across paths)")
    ax.set_title("Risk and return of every config, by scenario")
    ax.legend()
    fig.tight_layout()
    return fig


@dg.asset(group_name="reports", owners=OWNERS, kinds={"markdown"}, code_version="1")
def report(
    artifacts: ArtifactStore, robustness_leaderboard: pl.DataFrame,
    strategy_evaluations: pl.DataFrame, charts: pl.DataFrame,
) -> dg.MaterializeResult:
    """Markdown executive summary built from the tables (the Bedrock-written version
    replaces the narrative in a later issue)."""
    text = executive_summary(robustness_leaderboard, strategy_evaluations, charts)
    path = artifacts.path("report.md")
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    table = pl.DataFrame({"path": [str(path)], "markdown": [text]})
    return dg.MaterializeResult(value=table, metadata={
        "report": dg.MetadataValue.md(text), "path": dg.MetadataValue.path(str(path)),
    })


def executive_summary(
    leaderboard: pl.DataFrame, evaluations: pl.DataFrame, charts: pl.DataFrame
) -> str:
    """The report's markdown: the recommendation, the leaderboard, the scenarios."""
    ranked = leaderboard.sort("rank")
    best = ranked.row(0, named=True)
    params = evaluations.filter(pl.col("config_id") == best["config_id"]).sort("scenario")
    first = params.row(0, named=True)
    n_robust = int(ranked["robust"].sum())
    lines = [
        "# dynalloc: volatility-targeting review",
        "",
        f"Configurations evaluated: {ranked.height} across"
        f" {evaluations['scenario'].n_unique()} scenarios; robust (>= 80% of the best Sharpe"
        f" in every scenario): {n_robust}.",
        "",
        "## Recommendation",
        "",
        f"Config `{best['config_id']}`: {first['weight_fn']}, target vol"
        f" {first['target_vol']:.1%}, {first['vol_window_months']}-month window, risk"
        f" aversion {first['risk_aversion']:.2f}, {first['tc_bps']:.1f} bp costs;"
        f" robustness score {best['robustness_score']:.2f} (worst scenario:"
        f" {best['worst_scenario']}).",
        "",
        "| scenario | Sharpe | ann. return | ann. vol | max drawdown (median) | meets objectives |",
        "|---|---|---|---|---|---|",
    ]
    for row in params.iter_rows(named=True):
        lines.append(
            f"| {row['scenario']} | {row['sharpe_mean']:.2f} | {row['ann_return_mean']:.1%} |"
            f" {row['ann_vol_mean']:.1%} | {row['max_drawdown_median']:.1%} |"
            f" {'yes' if row['meets_objectives'] else 'no'} |"
        )
    lines += ["", "## Leaderboard (top 5)", "", "| rank | config | score | worst scenario |",
              "|---|---|---|---|"]
    for row in ranked.head(5).iter_rows(named=True):
        lines.append(f"| {row['rank']} | {row['config_id']} | {row['robustness_score']:.2f} |"
                     f" {row['worst_scenario']} |")
    lines += ["", "## Charts", ""]
    lines += [f"- {row['chart']}: `{row['path']}`" for row in charts.iter_rows(named=True)]
    return "\n".join(lines) + "\n"


@dg.asset(group_name="reports", owners=OWNERS, kinds={"polars"}, code_version="1",
          deps=[report])
def recommended_allocation(
    robustness_leaderboard: pl.DataFrame, strategy_configs: pl.DataFrame,
    market_data: pl.DataFrame,
) -> dg.MaterializeResult:
    """The top-ranked config as the allocation rule, with the equity weight it sets
    today on the latest market data; comes after the report that argues for it."""
    best_id = robustness_leaderboard.sort("rank")["config_id"][0]
    row = strategy_configs.filter(pl.col("config_id") == best_id).row(0, named=True)
    rule = StrategyConfig(**{k: row[k] for k in CONFIG_COLUMNS})
    weight = todays_weight(market_data["close"], rule)
    as_of = market_data["date"][-1]
    table = pl.DataFrame([{**row, "as_of": as_of, "equity_weight_today": weight,
                           "bond_weight_today": 1.0 - weight}])
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "config_id": best_id, "equity_weight_today": weight,
        "as_of": str(as_of),
    })
