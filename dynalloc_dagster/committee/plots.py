"""The report's figures, each a function of the tables it shows (matplotlib, Agg backend).

Written for a portfolio manager: rates on percent axes, configs named by their
parameters rather than their hash ids, the recommended config highlighted (black star or
heavy line) wherever it appears, the static benchmarks beside it, and a footnote naming
the data behind every chart (``note``: e.g. synthetic market data, paths per scenario).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

import matplotlib
import numpy as np
import polars as pl

matplotlib.use("Agg")
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

PROPOSER_COLOURS = {"lhs": "tab:blue", "tpe": "tab:orange", "bedrock": "tab:green"}
BENCHMARK_STYLE = {"60/40": ("s", "tab:purple"), "100% equity": ("^", "tab:red")}
RECOMMENDED = {"marker": "*", "s": 260, "color": "black", "zorder": 5}
PNG_DPI = 110
WIDE = (11, 5.2)


def rule_label(row: dict) -> str:
    """A config in words: '<weight fn>, target <tv>%, <n>m window[, risk aversion <k>]'
    (risk aversion only for the rules that use it: it is null for the inverse rules)."""
    text = (f"{row['weight_fn'].replace('_', ' ')}, target {row['target_vol']:.1%},"
            f" {row['vol_window_months']}m window")
    if row.get("risk_aversion") is not None:
        text += f", risk aversion {row['risk_aversion']:.2f}"
    return text


def efficient_frontier(vol: Sequence[float], ret: Sequence[float]) -> list[int]:
    """Indices of the upper-left envelope of (vol, return) points, by increasing vol.

    A point is on it when no other point has a lower or equal vol and a higher or equal
    return (and is not the same point): scanning by increasing vol (ties: higher return
    first), keep each point whose return beats every return kept before it. NaN points
    are skipped.
    """
    points = [(v, r, i) for i, (v, r) in enumerate(zip(vol, ret, strict=True))
              if not (math.isnan(v) or math.isnan(r))]
    points.sort(key=lambda p: (p[0], -p[1], p[2]))
    kept, best = [], -math.inf
    for _, r, i in points:
        if r > best:
            kept.append(i)
            best = r
    return kept


def _finish(fig: Figure, note: str, *, rect: tuple[float, float, float, float] | None = None
            ) -> Figure:
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="dimgrey", ha="left", va="bottom")
    fig.tight_layout(rect=rect or (0, 0.04 if note else 0, 1, 1))
    return fig


def _percent(ax: Axes, *, x: bool = False, y: bool = False, decimals: int | None = None) -> None:
    if x:
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))
    if y:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _legend_on_top(fig: Figure, ax: Axes, title: str, note: str, *, ncol: int) -> Figure:
    """A title, then the panels' shared legend under it, then the panels."""
    height = fig.get_figheight()
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / height)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=ncol, fontsize=8,
               bbox_to_anchor=(0.5, 1 - 0.3 / height), frameon=False)
    return _finish(fig, note, rect=(0, 0.3 / height if note else 0, 1, 1 - 0.6 / height))


def _panels(n: int, *, height: float = 3.4) -> tuple[Figure, list[Axes]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, height * rows + 0.6), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def summary_table(rows: list[list[str]], header: list[str], title: str, note: str = ""
                  ) -> Figure:
    """A table as a figure (the best-strategy summary): ``rows`` already formatted; the
    first row (the recommended rule) in bold."""
    fig, ax = plt.subplots(figsize=(11, 0.55 + 0.34 * (len(rows) + 1) + 0.5))
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=header, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.35)
    table.auto_set_column_width(list(range(len(header))))
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8e8e8")
    ax.set_title(title, fontsize=11)
    return _finish(fig, note)


def scenario_comparison(comparison: pl.DataFrame, evaluations: pl.DataFrame,
                        benchmarks: pl.DataFrame, recommended: dict, note: str = "") -> Figure:
    """Mean Sharpe per scenario: the best, median and worst config, the recommended rule
    and the static benchmarks."""
    scenarios = comparison["scenario"].to_list()
    rec = dict(evaluations.filter(pl.col("config_id") == recommended["config_id"])
               .select("scenario", "sharpe_mean").iter_rows())
    series: list[tuple[str, list[float], dict]] = [
        ("best config", comparison["best_sharpe_mean"].to_list(), {"color": "tab:green"}),
        ("median config", comparison["median_sharpe_mean"].to_list(), {"color": "tab:grey"}),
        ("worst config", comparison["worst_sharpe_mean"].to_list(), {"color": "lightgrey"}),
        ("recommended: " + rule_label(recommended), [rec.get(s, np.nan) for s in scenarios],
         {"color": "black"}),
    ]
    for name in benchmarks["benchmark"].unique(maintain_order=True):
        values = dict(benchmarks.filter(pl.col("benchmark") == name)
                      .select("scenario", "sharpe_mean").iter_rows())
        series.append((f"benchmark {name}", [values.get(s, np.nan) for s in scenarios],
                       {"color": BENCHMARK_STYLE.get(name, ("o", "tab:brown"))[1]}))
    fig, ax = plt.subplots(figsize=WIDE)
    width = 0.8 / len(series)
    for i, (label, values, style) in enumerate(series):
        ax.bar([j + i * width for j in range(len(scenarios))], values, width=width,
               label=label, **style)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scenarios))], scenarios)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("mean Sharpe across paths")
    ax.set_title("Scenario comparison: the recommended rule against the configs and benchmarks")
    ax.legend(fontsize=7, ncol=2)
    return _finish(fig, note)


def sharpe_by_scenario(evaluations: pl.DataFrame, leaderboard: pl.DataFrame,
                       top: int = 5, note: str = "") -> Figure:
    """Mean Sharpe of the top configs in every scenario, the recommended one first."""
    ranked = leaderboard.sort("rank").head(top)
    scenarios = sorted(evaluations["scenario"].unique())
    fig, ax = plt.subplots(figsize=WIDE)
    width = 0.8 / max(ranked.height, 1)
    for i, row in enumerate(ranked.iter_rows(named=True)):
        rows = evaluations.filter(pl.col("config_id") == row["config_id"])
        sharpe = dict(zip(rows["scenario"], rows["sharpe_mean"], strict=True))
        xs = [j + i * width for j in range(len(scenarios))]
        ax.bar(xs, [sharpe.get(s, float("nan")) for s in scenarios], width=width,
               label=("recommended: " if i == 0 else f"#{row['rank']}: ") + rule_label(row),
               color="black" if i == 0 else None)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scenarios))], scenarios)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("mean Sharpe across paths")
    ax.set_title(f"Top {ranked.height} configs by objective: Sharpe in every scenario")
    ax.legend(fontsize=7, loc="best")
    return _finish(fig, note)


def robustness_ranking(leaderboard: pl.DataFrame, threshold: float, note: str = "") -> Figure:
    """Robustness and objective of every config by rank, with the robust threshold."""
    ordered = leaderboard.sort("rank")
    fig, ax = plt.subplots(figsize=WIDE)
    ax.plot(ordered["rank"].to_list(), ordered["robustness"].to_list(), marker=".",
            label="robustness (worst-scenario share of the best mean Sharpe)")
    ax.plot(ordered["rank"].to_list(), ordered["objective"].to_list(), marker=".",
            alpha=0.7, label="objective (robustness minus penalties)")
    ax.scatter([1], [ordered["robustness"][0]], **RECOMMENDED,
               label="recommended: " + rule_label(ordered.row(0, named=True)))
    ax.axhline(threshold, color="grey", linestyle="--", label=f"robust threshold {threshold:.0%}")
    ax.set_xlabel("rank by objective (1 = recommended)")
    _percent(ax, y=True, decimals=0)
    ax.set_title("Robustness and objective of every config")
    ax.legend(fontsize=8)
    return _finish(fig, note)


def risk_return(evaluations: pl.DataFrame, recommended: dict, benchmarks: pl.DataFrame,
                note: str = "") -> Figure:
    """One panel per scenario: annualised vol against return of every config, the
    efficient frontier (upper-left envelope of the configs), the recommended rule and the
    static benchmarks."""
    scenarios = sorted(evaluations["scenario"].unique())
    fig, axes = _panels(len(scenarios))
    for ax, scenario in zip(axes, scenarios, strict=True):
        rows = evaluations.filter(pl.col("scenario") == scenario)
        vol, ret = rows["ann_vol_mean"].to_list(), rows["ann_return_mean"].to_list()
        ax.scatter(vol, ret, s=12, color="tab:blue", alpha=0.5, label="configs")
        front = efficient_frontier(vol, ret)
        ax.plot([vol[i] for i in front], [ret[i] for i in front], color="tab:green",
                linewidth=1.5, label="efficient frontier")
        best = rows.filter(pl.col("config_id") == recommended["config_id"])
        ax.scatter(best["ann_vol_mean"].to_list(), best["ann_return_mean"].to_list(),
                   **RECOMMENDED, label="recommended rule")
        for name in benchmarks["benchmark"].unique(maintain_order=True):
            b = benchmarks.filter((pl.col("benchmark") == name) & (pl.col("scenario") == scenario))
            marker, colour = BENCHMARK_STYLE.get(name, ("o", "tab:brown"))
            ax.scatter(b["ann_vol_mean"].to_list(), b["ann_return_mean"].to_list(), s=70,
                       marker=marker, color=colour, label=name, zorder=4)
        _percent(ax, x=True, y=True)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("annualised volatility", fontsize=8)
        ax.set_ylabel("annualised return", fontsize=8)
        ax.tick_params(labelsize=7)
    return _legend_on_top(fig, axes[0], "Risk and return by scenario (means across paths);"
                          " recommended: " + rule_label(recommended), note, ncol=5)


def allocation_dynamics(bands: pl.DataFrame, recommended: dict, note: str = "") -> Figure:
    """The recommended rule's equity weight month by month in every scenario: the median
    across paths and the 5-95% band."""
    scenarios = bands["scenario"].unique(maintain_order=True).to_list()
    fig, axes = _panels(len(scenarios))
    for ax, scenario in zip(axes, scenarios, strict=True):
        rows = bands.filter(pl.col("scenario") == scenario).sort("month")
        months = rows["month"].to_list()
        ax.fill_between(months, rows["p5"].to_list(), rows["p95"].to_list(), color="tab:blue",
                        alpha=0.25, label="5-95% of paths")
        ax.plot(months, rows["p50"].to_list(), color="tab:blue", linewidth=2,
                label="median path")
        top = float(rows["p95"].max())
        ax.set_ylim(0.0, 1.02 if top <= 1.0 else top * 1.05)
        _percent(ax, y=True, decimals=0)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("month of the horizon", fontsize=8)
        ax.set_ylabel("equity weight", fontsize=8)
        ax.tick_params(labelsize=7)
    return _legend_on_top(fig, axes[0], "Allocation dynamics of the recommended rule: "
                          + rule_label(recommended), note, ncol=2)


def _heatmap(ax: Axes, values: np.ndarray, rows: list[str], cols: list[str], fmt: str,
             cmap: str, vmin: float | None = None, vmax: float | None = None) -> None:
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    finite = values[np.isfinite(values)]
    middle = (float(finite.min()) + float(finite.max())) / 2 if finite.size else 0.0
    for i in range(len(rows)):
        for j in range(len(cols)):
            value = values[i, j]
            text = "n/a" if not np.isfinite(value) else format(value, fmt)
            colour = "white" if np.isfinite(value) and value > middle and cmap != "RdYlGn" \
                else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    image.colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.8)


def parameter_sensitivity(sensitivity: pl.DataFrame, note: str = "") -> Figure:
    """Main-effect share (eta^2) of mean-Sharpe variance, per hyperparameter and scenario:
    how much each parameter matters in each regime."""
    scenarios = sorted(sensitivity["scenario"].unique())
    parameters = sensitivity["parameter"].unique(maintain_order=True).to_list()
    values = np.full((len(parameters), len(scenarios)), np.nan)
    for row in sensitivity.iter_rows(named=True):
        values[parameters.index(row["parameter"]), scenarios.index(row["scenario"])] = \
            row["main_effect_share"]
    fig, ax = plt.subplots(figsize=(11, 1.4 + 0.7 * len(parameters)))
    _heatmap(ax, values, [p.replace("_", " ") for p in parameters], scenarios, ".0%",
             "Blues", 0.0, 1.0)
    ax.set_title("Hyperparameter sensitivity: share of mean-Sharpe variance explained"
                 " (eta squared; risk aversion over linear and sigmoid rules only)", fontsize=10)
    return _finish(fig, note)


def weight_window_interaction(interaction: pl.DataFrame, recommended: dict, note: str = ""
                              ) -> Figure:
    """Mean Sharpe by weight function x vol-window band, one panel per scenario; the
    recommended rule's cell framed."""
    scenarios = sorted(interaction["scenario"].unique())
    weight_fns = sorted(interaction["weight_fn"].unique())
    bands = sorted(interaction["vol_window_band"].unique(), key=lambda b: int(b.split("-")[0]))
    fig, axes = _panels(len(scenarios), height=3.0)
    window = recommended["vol_window_months"]
    rec_band = next((b for b in bands if int(b.split("-")[0]) <= window
                     <= int(b.split("-")[1].rstrip("m"))), None)
    for ax, scenario in zip(axes, scenarios, strict=True):
        values = np.full((len(weight_fns), len(bands)), np.nan)
        for row in interaction.filter(pl.col("scenario") == scenario).iter_rows(named=True):
            values[weight_fns.index(row["weight_fn"]), bands.index(row["vol_window_band"])] = \
                row["mean_sharpe_mean"]
        _heatmap(ax, values, [w.replace("_", " ") for w in weight_fns], bands, ".2f", "RdYlGn")
        if rec_band is not None and recommended["weight_fn"] in weight_fns:
            i, j = weight_fns.index(recommended["weight_fn"]), bands.index(rec_band)
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, linewidth=2.5,
                                       edgecolor="black"))
        ax.set_title(scenario, fontsize=10)
        ax.images[-1].colorbar.set_label("mean Sharpe", fontsize=8)
    fig.suptitle("Weight function x vol window: mean Sharpe of the configs in each cell"
                 " (framed: the recommended rule's cell)", fontsize=10, y=0.995)
    return _finish(fig, note, rect=(0, 0.03, 1, 0.95))


def optimisation_convergence(history: pl.DataFrame, note: str = "") -> Figure:
    """Best objective so far against configs evaluated, overall and per proposer, with
    each config's objective coloured by the proposer that suggested it."""
    ordered = history.sort("evaluation_index")
    fig, ax = plt.subplots(figsize=WIDE)
    ax.step(ordered["evaluation_index"].to_list(), ordered["best_objective_so_far"].to_list(),
            where="post", color="black", linewidth=2, label="best objective so far (all)")
    for (proposer,), rows in ordered.group_by("proposer", maintain_order=True):
        colour = PROPOSER_COLOURS.get(proposer)
        objective = rows["objective"].fill_null(float("nan")).to_numpy()
        running = np.fmax.accumulate(objective)
        ax.step(rows["evaluation_index"].to_list(), running, where="post", color=colour,
                linewidth=1.2, linestyle="--", label=f"best so far among {proposer} proposals")
        ax.scatter(rows["evaluation_index"].to_list(), objective, s=16, color=colour,
                   alpha=0.7, label=f"{proposer} proposal")
    for boundary in ordered.group_by("round").agg(pl.col("evaluation_index").min())[
            "evaluation_index"].sort().to_list()[1:]:
        ax.axvline(boundary - 0.5, color="grey", linewidth=0.5, linestyle=":")
    best = ordered["best_objective_so_far"].drop_nulls()
    if best.len():
        # a config with a large penalty would squash the curve that matters: show down to
        # a little below the median objective
        low = min(float(ordered["objective"].median()), float(best.min()))
        top = float(best.max())
        ax.set_ylim(low - 0.1 * (abs(top - low) + 0.1), top + 0.1 * (abs(top - low) + 0.1))
    ax.set_xlabel("configs evaluated (dotted lines: rounds)")
    ax.set_ylabel("objective (robustness minus penalties)")
    reason = ordered["stop_reason"][-1]
    ax.set_title(f"Optimisation convergence: {ordered.height} configs in"
                 f" {ordered['round'].n_unique()} rounds, stopped: {reason or 'not stopped'}")
    ax.legend(fontsize=7, loc="lower right")
    return _finish(fig, note)


def cost_sensitivity(costs: pl.DataFrame, leaderboard: pl.DataFrame,
                     assumed_tc_bps: float, note: str = "") -> Figure:
    """Worst-scenario mean Sharpe of the top configs across cost assumptions."""
    labels = {row["config_id"]: row for row in leaderboard.iter_rows(named=True)}
    worst = costs.group_by("config_id", "tc_bps").agg(pl.col("worst_sharpe_mean").first())
    fig, ax = plt.subplots(figsize=WIDE)
    for config_id in costs["config_id"].unique(maintain_order=True):
        rows = worst.filter(pl.col("config_id") == config_id).sort("tc_bps")
        row = labels[config_id]
        first = row["rank"] == 1
        ax.plot(rows["tc_bps"].to_list(), rows["worst_sharpe_mean"].to_list(), marker="o",
                linewidth=2.5 if first else 1.2, color="black" if first else None,
                label=("recommended: " if first else f"#{row['rank']}: ") + rule_label(row))
    ax.axvline(assumed_tc_bps, color="grey", linestyle="--",
               label=f"ranking assumption {assumed_tc_bps:g} bp")
    ax.set_xlabel("transaction cost, bp per unit of weight traded")
    ax.set_ylabel("worst-scenario mean Sharpe")
    ax.set_title("Cost sensitivity of the top configs")
    ax.legend(fontsize=7)
    return _finish(fig, note)


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG, without a timestamp or software tag (identical runs, same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return buffer.getvalue()


def pdf_bytes(figures: Iterable[Figure]) -> bytes:
    """The figures as one PDF, one page each, without creation date or producer."""
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"CreationDate": None, "Creator": None,
                                    "Producer": None}) as pdf:
        for fig in figures:
            pdf.savefig(fig)
    return buffer.getvalue()


def close(figures: dict[str, Figure]) -> None:
    for fig in figures.values():
        plt.close(fig)


def backtest_nav(paths: pl.DataFrame) -> Figure:
    """NAV of each backtested strategy on the real history (log scale, 1 at the start),
    the recommended rule drawn thickest."""
    fig, ax = plt.subplots(figsize=(10, 4.8))
    for (strategy,), rows in paths.group_by("strategy", maintain_order=True):
        ax.plot(rows["date"].to_list(), rows["nav"].to_list(), label=strategy,
                linewidth=2.4 if strategy == "recommended" else 1.0)
    ax.set_yscale("log")
    ax.set_ylabel("NAV (log scale, 1 at the start)")
    ax.set_title("Historical backtest: the recommended rule, the next configs, 60/40 and"
                 " buy-and-hold equity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def backtest_equity_weight(paths: pl.DataFrame) -> Figure:
    """The equity weight each rule held month by month on the real history."""
    fig, ax = plt.subplots(figsize=(10, 4))
    for (strategy,), rows in paths.group_by("strategy", maintain_order=True):
        ax.step(rows["date"].to_list(), rows["equity_weight"].to_list(), where="post",
                label=strategy, linewidth=2.0 if strategy == "recommended" else 0.8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("equity weight")
    ax.set_title("Equity weight held on the real history")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
