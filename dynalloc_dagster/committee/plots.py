"""The report's figures, each a function of the tables it shows (matplotlib, Agg backend).

Written for a portfolio manager: rates on percent axes, configs named by their
parameters rather than their hash ids, the recommended config highlighted (black star or
heavy line) wherever it appears, the static benchmarks beside it, and a footnote naming
the data behind every chart (``note``: e.g. synthetic market data, paths per scenario).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import matplotlib
import numpy as np
import polars as pl

matplotlib.use("Agg")
from matplotlib import pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator, NullLocator, PercentFormatter, StrMethodFormatter

from dynalloc_dagster.committee.decision import ASSET_WEIGHTS
from dynalloc_dagster.committee.png import compressed_scanlines, png_file
from dynalloc_dagster.partitions import in_scenario_order, scenario_label
from engine.objectives import InvestmentObjectives

PROPOSER_COLOURS = {"lhs": "tab:blue", "tpe": "tab:orange", "bedrock": "tab:green",
                    "trust_region": "tab:red"}
"""Each proposer's colour on every chart that shows who proposed what: the global
proposers and the trust region around the incumbents."""
BENCHMARK_STYLE = {"60/40": ("s", "tab:purple"), "100% equity": ("^", "tab:red")}
RECOMMENDED = {"marker": "*", "s": 260, "color": "black", "zorder": 5}
RECOMMENDED_ROW = "#fff2b3"
"""Background of the recommended rule's rows in a table figure."""
OTHER_SERIES = [("tab:blue", "s", "--"), ("tab:orange", "^", "-."), ("tab:green", "D", ":"),
                ("tab:red", "v", "--"), ("tab:purple", "P", "-."), ("tab:brown", "X", ":")]
"""Colour, marker and line style of the series beside the recommended rule's (black, solid,
round markers): lines that coincide stay told apart."""
MANDATE_BAND = {"color": "gold", "alpha": 0.25, "zorder": 0}
PNG_DPI = 100
WIDTH = 11.0
"""Inches: the width of a chart, and the most any chart may take. At :data:`PNG_DPI` it is
1100 pixels, the width of the Dagster UI's markdown dialog: no part of a chart is cut off
on the asset page."""
WIDE = (WIDTH, 5.2)
TITLE_Y = 1.0
"""Every axes title at the top of its axes, fixed: matplotlib's automatic placement (above
any tick labels on top; no chart has any) measures every tick label of the axes at each
drawing, a fifth of a panel chart's drawing time. Set for every figure drawn here."""
matplotlib.rcParams["axes.titley"] = TITLE_Y
TEXT_HINTING = "no_hinting"
"""Glyphs rendered from their outlines, without FreeType's hinting (matplotlib 3.11's
default runs each font's hinting program for every glyph drawn): text is some 40% of a
chart's drawing time, and unhinted text draws it in about a third less, at 100 dpi just
as legible. Set for every figure drawn here."""
matplotlib.rcParams["text.hinting"] = TEXT_HINTING


def rule_label(row: dict) -> str:
    """A config in words: '<weight fn>, target <tv>%, <n>m window[, risk aversion <k>]'
    (risk aversion only for the rules that use it: it is null for the inverse rules) and,
    for a multi-asset portfolio's row, '; equities <base mix>, defensive <base mix>'."""
    text = (f"{row['weight_fn'].replace('_', ' ')}, target {row['target_vol']:.1%},"
            f" {row['vol_window_months']}m window")
    if row.get("risk_aversion") is not None:
        text += f", risk aversion {row['risk_aversion']:.2f}"
    if row.get("risky_mix") is not None:
        text += (f"; equities {row['risky_mix'].replace('_', ' ')}, defensive"
                 f" {row['defensive_mix'].replace('_', ' ')}")
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


class Margins(NamedTuple):
    """A fixed layout: the space around the panels in inches (left, right, bottom, top:
    tick labels, axis labels, titles, the footnote) and between them (wspace, hspace:
    fractions of a panel's width and height, as in ``Figure.subplots_adjust``)."""

    left: float
    right: float
    bottom: float
    top: float
    wspace: float = 0.2
    hspace: float = 0.2


ONE_PANEL = Margins(0.85, 0.15, 0.8, 0.36)
"""A chart of one panel with a title, axis labels and the footnote."""
PANEL_GRID = Margins(0.82, 0.3, 0.82, 1.24, wspace=0.32, hspace=0.31)
"""Scenario panels under a title and a shared legend (:func:`_legend_on_top`)."""


def _finish(fig: Figure, note: str, *, margins: Margins | None = None,
            rect: tuple[float, float, float, float] | None = None) -> Figure:
    """The footnote, then the layout: ``margins`` fixed, or else a tight layout within
    ``rect`` computed when the figure is drawn (for charts whose labels are the data's,
    e.g. asset names). A fixed layout spares the drawing of every text once more to
    measure it (a tight layout draws a chart twice)."""
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="dimgrey", ha="left", va="bottom")
    if margins is None:
        fig.set_layout_engine("tight", rect=rect or (0, 0.04 if note else 0, 1, 1))
        return fig
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=margins.left / width, right=1 - margins.right / width,
                        bottom=margins.bottom / height, top=1 - margins.top / height,
                        wspace=margins.wspace, hspace=margins.hspace)
    return fig


def _percent(ax: Axes, *, x: bool = False, y: bool = False, decimals: int | None = None) -> None:
    if x:
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))
    if y:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _legend_on_top(fig: Figure, handles: Sequence[Artist], title: str, note: str, *,
                   ncol: int, margins: Margins | None = PANEL_GRID,
                   fontsize: float = 8) -> Figure:
    """A title, then the panels' shared legend under it (``handles``, each with its
    label), then the panels."""
    height = fig.get_figheight()
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / height)
    fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=fontsize,
               bbox_to_anchor=(0.5, 1 - 0.3 / height), frameon=False)
    return _finish(fig, note, margins=margins,
                   rect=(0, 0.3 / height if note else 0, 1, 1 - 0.6 / height))


def _panels(n: int, *, height: float = 3.4) -> tuple[Figure, list[Axes]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, height * rows + 0.6), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


TABLE_ROW = 0.26
"""Height of a table figure's row in inches: the table fills the figure between its title
and its footnote, its columns as wide as their text and together the figure's width."""


def summary_table(rows: list[list[str]], header: list[str], title: str, note: str = "",
                  *, highlight: Sequence[int] = ()) -> Figure:
    """A table as a figure (the best-strategy summary): ``rows`` already formatted, the
    header in bold on grey, the rows whose indices are in ``highlight`` (the recommended
    rule's) in bold on :data:`RECOMMENDED_ROW`."""
    margins = Margins(0.25, 0.25, 0.45, 0.35)
    fig, ax = plt.subplots(figsize=(WIDTH, margins.bottom + TABLE_ROW * (len(rows) + 1)
                                    + margins.top))
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=header, bbox=(0, 0, 1, 1), cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(header))))
    marked = {i + 1 for i in highlight}  # row 0 of the drawn table is the header
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8e8e8")
        elif r in marked:
            cell.set_text_props(weight="bold")
            cell.set_facecolor(RECOMMENDED_ROW)
    ax.set_title(title, fontsize=11)
    return _finish(fig, note, margins=margins)


def _scenario_ticks(ax: Axes, scenarios: list[str], offset: float) -> None:
    ax.set_xticks([j + offset for j in range(len(scenarios))],
                  [scenario_label(s) for s in scenarios])


def scenario_comparison(comparison: pl.DataFrame, evaluations: pl.DataFrame,
                        benchmarks: pl.DataFrame, recommended: dict, note: str = "") -> Figure:
    """Mean Sharpe per scenario: the best, median and worst config, the recommended rule
    and the static benchmarks."""
    scenarios = in_scenario_order(comparison["scenario"])
    by_scenario = {row["scenario"]: row for row in comparison.iter_rows(named=True)}
    rec = dict(evaluations.filter(pl.col("config_id") == recommended["config_id"])
               .select("scenario", "sharpe_mean").iter_rows())
    series: list[tuple[str, list[float], dict]] = [
        (f"{which} config", [by_scenario[s][f"{which}_sharpe_mean"] for s in scenarios],
         {"color": colour})
        for which, colour in (("best", "tab:green"), ("median", "tab:grey"),
                              ("worst", "lightgrey"))]
    series.append(("recommended: " + rule_label(recommended),
                   [rec.get(s, np.nan) for s in scenarios], {"color": "black"}))
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
    _scenario_ticks(ax, scenarios, 0.4 - width / 2)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("mean Sharpe across paths")
    ax.set_title("Scenario comparison: the recommended rule against the configs and benchmarks")
    ax.legend(fontsize=7, ncol=2)
    return _finish(fig, note, margins=ONE_PANEL)


def sharpe_by_scenario(evaluations: pl.DataFrame, leaderboard: pl.DataFrame,
                       top: int = 5, note: str = "") -> Figure:
    """Mean Sharpe of the top configs in every scenario, the recommended one first."""
    ranked = leaderboard.sort("rank").head(top)
    scenarios = in_scenario_order(evaluations["scenario"])
    fig, ax = plt.subplots(figsize=WIDE)
    width = 0.8 / max(ranked.height, 1)
    for i, row in enumerate(ranked.iter_rows(named=True)):
        rows = evaluations.filter(pl.col("config_id") == row["config_id"])
        sharpe = dict(zip(rows["scenario"], rows["sharpe_mean"], strict=True))
        xs = [j + i * width for j in range(len(scenarios))]
        ax.bar(xs, [sharpe.get(s, float("nan")) for s in scenarios], width=width,
               label=("recommended: " if i == 0 else f"#{row['rank']}: ") + rule_label(row),
               color="black" if i == 0 else None)
    _scenario_ticks(ax, scenarios, 0.4 - width / 2)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("mean Sharpe across paths")
    ax.set_title(f"Top {ranked.height} configs by objective: Sharpe in every scenario")
    ax.legend(fontsize=7, loc="best")
    return _finish(fig, note, margins=ONE_PANEL)


def robustness_ranking(leaderboard: pl.DataFrame, threshold: float, note: str = "") -> Figure:
    """Two panels by rank: robustness on a 0-100% axis with the robust threshold (a value
    outside the axis is drawn on its edge as a triangle pointing out of it), and the
    objective, unitless, on its own axis."""
    ordered = leaderboard.sort("rank")
    ranks = np.asarray(ordered["rank"].to_list(), dtype=float)
    robustness = ordered["robustness"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    objective = ordered["objective"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(WIDTH, 6.6), sharex=True,
                                      gridspec_kw={"height_ratios": (3, 2)})
    inside = (robustness >= 0.0) & (robustness <= 1.0)
    top.plot(ranks[inside], robustness[inside], linestyle="none", marker="o", markersize=4,
             color="tab:blue", label="robustness (worst-scenario share of the best mean"
             " Sharpe)")
    for mask, edge, marker, side in ((robustness < 0.0, 0.0, "v", "below 0%"),
                                     (robustness > 1.0, 1.0, "^", "above 100%")):
        if mask.any():
            top.plot(ranks[mask], np.full(mask.sum(), edge), linestyle="none", marker=marker,
                     markersize=6, color="tab:red", clip_on=False,
                     label=f"robustness {side}: {int(mask.sum())} configs, drawn on the edge")
    top.axhline(threshold, color="grey", linestyle="--",
                label=f"robust threshold {threshold:.0%}")
    top.scatter([ranks[0]], [min(max(robustness[0], 0.0), 1.0)], **RECOMMENDED, clip_on=False,
                label="recommended: " + rule_label(ordered.row(0, named=True)))
    top.set_ylim(0.0, 1.0)
    _percent(top, y=True, decimals=0)
    top.set_ylabel("robustness")
    top.set_title("Robustness and objective of every config, by rank")
    top.legend(fontsize=7, loc="lower left")
    bottom.plot(ranks, objective, marker=".", color="tab:orange",
                label="objective (robustness minus the penalty weight x penalties)")
    bottom.scatter([ranks[0]], [objective[0]], **RECOMMENDED)
    bottom.axhline(0.0, color="grey", linewidth=0.8)
    bottom.set_ylabel("objective (unitless)")
    bottom.set_xlabel("rank by objective (1 = recommended)")
    bottom.legend(fontsize=7, loc="lower left")
    return _finish(fig, note, margins=Margins(0.85, 0.15, 0.85, 0.36, hspace=0.1))


def risk_return(evaluations: pl.DataFrame, recommended: dict, benchmarks: pl.DataFrame,
                objectives: InvestmentObjectives, note: str = "") -> Figure:
    """One panel per scenario: annualised vol against return of every config, the
    efficient frontier (upper-left envelope of the configs), the recommended rule, the
    static benchmarks and the mandate's vol band (target_vol +- vol_tolerance; the span
    takes part in autoscaling, so it is inside every panel)."""
    scenarios = in_scenario_order(evaluations["scenario"])
    low, high = objectives.vol_band
    band = f"mandate vol {objectives.target_vol:.0%} \u00b1 {objectives.vol_tolerance:.0%}"
    fig, axes = _panels(len(scenarios))
    for ax, scenario in zip(axes, scenarios, strict=True):
        rows = evaluations.filter(pl.col("scenario") == scenario)
        vol, ret = rows["ann_vol_mean"].to_list(), rows["ann_return_mean"].to_list()
        ax.axvspan(low, high, **MANDATE_BAND, label=band)
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
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        _percent(ax, x=True, y=True)
        ax.set_title(scenario_label(scenario), fontsize=10)
        ax.set_xlabel("annualised volatility", fontsize=8)
        ax.set_ylabel("annualised return", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, _ = axes[0].get_legend_handles_labels()
    return _legend_on_top(fig, handles, "Risk and return by scenario (means across paths);"
                          " recommended: " + rule_label(recommended), note, ncol=6)


def allocation_dynamics(bands: pl.DataFrame, recommended: dict, note: str = "") -> Figure:
    """The recommended rule's equity weight month by month in every scenario: the median
    across paths and the 5-95% band, beside the weight it sets today (dashed). Bands with
    an ``asset`` column (a multi-asset portfolio): :func:`asset_allocation_dynamics`."""
    if "asset" in bands.columns:
        return asset_allocation_dynamics(bands, recommended, note)
    scenarios = in_scenario_order(bands["scenario"])
    today = float(recommended["equity_weight_today"])
    fig, axes = _panels(len(scenarios))
    for ax, scenario in zip(axes, scenarios, strict=True):
        rows = bands.filter(pl.col("scenario") == scenario).sort("month")
        months = rows["month"].to_list()
        ax.fill_between(months, rows["p5"].to_list(), rows["p95"].to_list(), color="tab:blue",
                        alpha=0.25, label="5-95% of paths")
        ax.plot(months, rows["p50"].to_list(), color="tab:blue", linewidth=2,
                label="median path")
        ax.axhline(today, color="black", linestyle="--", linewidth=1.2,
                   label=f"today's weight {today:.1%} (as of {recommended['as_of']})")
        top = max(float(rows["p95"].max()), today)
        ax.set_ylim(0.0, 1.02 if top <= 1.0 else top * 1.05)
        _weight_panel(ax, scenario, "equity weight")
    handles, _ = axes[0].get_legend_handles_labels()
    return _legend_on_top(fig, handles, "Allocation dynamics of the recommended rule: "
                          + rule_label(recommended), note, ncol=3)


def _weight_panel(ax: Axes, scenario: str, ylabel: str) -> None:
    """A weight-over-the-horizon panel's axes: percent y, the scenario as title."""
    _percent(ax, y=True, decimals=0)
    ax.set_title(scenario_label(scenario), fontsize=10)
    ax.set_xlabel("month of the horizon", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def asset_allocation_dynamics(bands: pl.DataFrame, recommended: dict, note: str = ""
                              ) -> Figure:
    """Every asset's mean weight across paths month by month in every scenario, stacked
    in the order of the bands' ``asset`` column (the spec's: equities first, so the top
    of the equities is the equity sleeve's weight), each labelled by its asset and its
    weight today; today's equity-sleeve weight dashed."""
    assets = bands["asset"].unique(maintain_order=True).to_list()
    today = {i["asset"]: float(i["weight"]) for i in recommended.get(ASSET_WEIGHTS)
             or []}
    sleeve = float(recommended["equity_weight_today"])
    colours = plt.get_cmap("tab10").colors
    scenarios = in_scenario_order(bands["scenario"])
    fig, axes = _panels(len(scenarios))
    for ax, scenario in zip(axes, scenarios, strict=True):
        rows = bands.filter(pl.col("scenario") == scenario)
        months = rows.filter(pl.col("asset") == assets[0]).sort("month")["month"].to_list()
        means = [rows.filter(pl.col("asset") == a).sort("month")["mean"].to_list()
                 for a in assets]
        labels = [f"{a} (today {today[a]:.1%})" if a in today else a for a in assets]
        ax.stackplot(months, means, labels=labels, colors=colours[:len(assets)], alpha=0.85)
        ax.axhline(sleeve, color="black", linestyle="--", linewidth=1.2,
                   label=f"equity sleeve today {sleeve:.1%} (as of {recommended['as_of']})")
        ax.set_ylim(0.0, 1.0)
        ax.set_xlim(months[0], months[-1])
        _weight_panel(ax, scenario, "mean weight across paths")
    handles, _ = axes[0].get_legend_handles_labels()
    return _legend_on_top(fig, handles, "Allocation dynamics of the recommended rule, every"
                          " asset: " + rule_label(recommended), note,
                          ncol=min(len(assets) + 1, 4), margins=None)


def _heatmap(ax: Axes, values: np.ndarray, rows: list[str], cols: list[str], fmt: str,
             cmap: str, norm: Normalize) -> AxesImage:
    image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    middle = (norm.vmin + norm.vmax) / 2
    for i in range(len(rows)):
        for j in range(len(cols)):
            value = values[i, j]
            text = "n/a" if not np.isfinite(value) else format(value, fmt)
            colour = "white" if np.isfinite(value) and value > middle and cmap != "RdYlGn" \
                else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    return image


def parameter_sensitivity(sensitivity: pl.DataFrame, note: str = "") -> Figure:
    """Main-effect share (eta^2) of mean-Sharpe variance, per hyperparameter and scenario:
    how much each parameter matters in each regime."""
    scenarios = in_scenario_order(sensitivity["scenario"])
    parameters = sensitivity["parameter"].unique(maintain_order=True).to_list()
    values = np.full((len(parameters), len(scenarios)), np.nan)
    for row in sensitivity.iter_rows(named=True):
        values[parameters.index(row["parameter"]), scenarios.index(row["scenario"])] = \
            row["main_effect_share"]
    fig, ax = plt.subplots(figsize=(WIDTH, 1.4 + 0.7 * len(parameters)))
    image = _heatmap(ax, values, [p.replace("_", " ") for p in parameters],
                     [scenario_label(s) for s in scenarios], ".0%", "Blues", Normalize(0.0, 1.0))
    bar = fig.colorbar(image, ax=ax, shrink=0.8, format=PercentFormatter(1.0, decimals=0))
    bar.set_label("share of variance", fontsize=8)
    ax.set_title("Hyperparameter sensitivity: share of mean-Sharpe variance explained"
                 " (eta squared; risk aversion over linear and sigmoid rules only)", fontsize=10)
    return _finish(fig, note, margins=Margins(1.4, 0.15, 0.55, 0.34))


def weight_window_interaction(interaction: pl.DataFrame, recommended: dict, note: str = ""
                              ) -> Figure:
    """Mean Sharpe by weight function x vol-window band, one panel per scenario, all on
    one colour scale symmetric about 0 (red below, green above) with one colour bar; the
    recommended rule's cell framed."""
    scenarios = in_scenario_order(interaction["scenario"])
    weight_fns = sorted(interaction["weight_fn"].unique())
    bands = sorted(interaction["vol_window_band"].unique(), key=lambda b: int(b.split("-")[0]))
    finite = interaction["mean_sharpe_mean"].drop_nulls().drop_nans()
    reach = float(finite.abs().max()) if finite.len() and finite.abs().max() > 0 else 1.0
    norm = Normalize(-reach, reach)
    fig, axes = _panels(len(scenarios), height=3.0)
    window = recommended["vol_window_months"]
    rec_band = next((b for b in bands if int(b.split("-")[0]) <= window
                     <= int(b.split("-")[1].rstrip("m"))), None)
    image = None
    for ax, scenario in zip(axes, scenarios, strict=True):
        values = np.full((len(weight_fns), len(bands)), np.nan)
        for row in interaction.filter(pl.col("scenario") == scenario).iter_rows(named=True):
            values[weight_fns.index(row["weight_fn"]), bands.index(row["vol_window_band"])] = \
                row["mean_sharpe_mean"]
        image = _heatmap(ax, values, [w.replace("_", " ") for w in weight_fns], bands, ".2f",
                         "RdYlGn", norm)
        if rec_band is not None and recommended["weight_fn"] in weight_fns:
            i, j = weight_fns.index(recommended["weight_fn"]), bands.index(rec_band)
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, linewidth=2.5,
                                       edgecolor="black"))
        ax.set_title(scenario_label(scenario), fontsize=10)
    fig.suptitle("Weight function x vol window: mean Sharpe of the configs in each cell"
                 " (framed: the recommended rule's cell)", fontsize=10, y=0.995)
    _finish(fig, note, margins=Margins(1.37, 1.25, 0.56, 0.97, wspace=0.74, hspace=0.25))
    bar = fig.colorbar(image, cax=fig.add_axes((0.92, 0.12, 0.015, 0.75)))
    bar.set_label("mean Sharpe (one scale for every panel)", fontsize=8)
    return fig


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
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _finish(fig, note, margins=ONE_PANEL._replace(right=2.6))


def cost_sensitivity(costs: pl.DataFrame, leaderboard: pl.DataFrame,
                     assumed_tc_bps: float, note: str = "") -> Figure:
    """How the worst-scenario mean Sharpe of the top configs moves with the cost: its
    change against the lowest cost evaluated (0 bp), one tick per cost evaluated, each
    config's level at that cost in its label, the configs in rank order."""
    by_id = {row["config_id"]: row for row in leaderboard.iter_rows(named=True)}
    worst = costs.group_by("config_id", "tc_bps").agg(pl.col("worst_sharpe_mean").first())
    evaluated = sorted(worst["tc_bps"].unique().to_list())
    base = evaluated[0]
    fig, ax = plt.subplots(figsize=WIDE)
    others = iter(OTHER_SERIES * len(by_id))
    for config_id in sorted(worst["config_id"].unique(), key=lambda c: by_id[c]["rank"]):
        value = dict(worst.filter(pl.col("config_id") == config_id)
                     .select("tc_bps", "worst_sharpe_mean").iter_rows())
        level = value.get(base, np.nan)
        row = by_id[config_id]
        first = row["rank"] == 1
        colour, marker, style = ("black", "o", "-") if first else next(others)
        ax.plot(evaluated, [value.get(c, np.nan) - level for c in evaluated], color=colour,
                marker=marker, linestyle=style, linewidth=2.5 if first else 1.3,
                zorder=3 if first else 2,
                label=(("recommended: " if first else f"#{row['rank']}: ") + rule_label(row)
                       + f" ({level:.2f} at {base:g} bp)"))
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.axvline(assumed_tc_bps, color="grey", linestyle="--",
               label=f"ranking assumption {assumed_tc_bps:g} bp")
    ax.set_xticks(evaluated, [f"{c:g}" for c in evaluated])
    ax.set_xlabel("transaction cost, bp per unit of weight traded (the costs evaluated)")
    ax.set_ylabel(f"change in worst-scenario mean Sharpe\nagainst {base:g} bp")
    ax.set_title(f"Cost sensitivity of the top configs: worst-scenario mean Sharpe at each"
                 f" cost minus at {base:g} bp")
    ax.legend(fontsize=7, loc="lower left")
    return _finish(fig, note, margins=ONE_PANEL._replace(left=1.2))


def rgb_pixels(fig: Figure) -> np.ndarray:
    """The figure drawn (Agg, at :data:`PNG_DPI`) as RGB pixels, (height, width, 3) uint8:
    a view of the canvas (valid until the figure is drawn again), its alpha left out: a
    chart's background is opaque, so its alpha says nothing. ValueError, naming the
    figure's title, for a figure with a pixel that is not opaque (dropping its alpha
    would change it)."""
    fig.set_dpi(PNG_DPI)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    if not (rgba[..., 3] == 255).all():
        title = fig.get_suptitle() or next((ax.get_title() for ax in fig.axes), "")
        raise ValueError(f"figure {title!r} has pixels that are not opaque: a chart's PNG"
                         " is RGB, its background must be opaque")
    return rgba[..., :3]


def png_bytes(fig: Figure) -> bytes:
    """The figure as an RGB PNG at :data:`PNG_DPI` (:func:`rgb_pixels`, written by
    :mod:`~dynalloc_dagster.committee.png`)."""
    pixels = rgb_pixels(fig)
    height, width, _ = pixels.shape
    return png_file(width, height, compressed_scanlines(pixels), PNG_DPI)


def close(figures: dict[str, Figure]) -> None:
    for fig in figures.values():
        plt.close(fig)


def _strategy_styles(strategies: list[str], recommended: str) -> dict[str, dict]:
    """The recommended rule black and heavy, every other strategy its own colour, marker
    and dash, so strategies whose lines coincide stay told apart."""
    others = iter(OTHER_SERIES * len(strategies))
    styles = {}
    for name in strategies:
        if name == recommended:
            styles[name] = {"color": "black", "linewidth": 2.4, "linestyle": "-", "zorder": 3}
        else:
            colour, marker, dash = next(others)
            styles[name] = {"color": colour, "linewidth": 1.1, "linestyle": dash,
                            "marker": marker, "markevery": 12, "markersize": 4}
    return styles


def backtest_nav(paths: pl.DataFrame, recommended: str, note: str = "") -> Figure:
    """NAV of each backtested strategy on the market history (log scale labelled in plain
    numbers, 1 at the start), the strategy ``recommended`` black and heavy."""
    strategies = paths["strategy"].unique(maintain_order=True).to_list()
    styles = _strategy_styles(strategies, recommended)
    fig, ax = plt.subplots(figsize=(10, 4.8))
    for (strategy,), rows in paths.group_by("strategy", maintain_order=True):
        ax.plot(rows["date"].to_list(), rows["nav"].to_list(), label=strategy,
                **styles[strategy])
    ax.set_yscale("log")
    low, high = float(paths["nav"].min()), float(paths["nav"].max())
    if high < 10 * low:  # under a decade a log axis has too few ticks to read
        ax.yaxis.set_major_locator(MaxNLocator(nbins=8))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.3g}"))
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_ylabel("NAV (log scale, 1 at the start)")
    ax.set_title("Historical backtest: the recommended rule, the next configs, 60/40 and"
                 " buy-and-hold equity")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _finish(fig, note, margins=Margins(0.85, 1.5, 0.6, 0.36))


def backtest_equity_weight(paths: pl.DataFrame, recommended: str, note: str = "", *,
                           sleeve: bool = False) -> Figure:
    """The equity weight each rule held month by month on the market history (0-100%), the
    strategy ``recommended`` black and heavy; with ``sleeve`` (a multi-asset portfolio)
    the equity sleeve's, every equity together, and the axis and title say so."""
    strategies = paths["strategy"].unique(maintain_order=True).to_list()
    styles = _strategy_styles(strategies, recommended)
    fig, ax = plt.subplots(figsize=(10, 4))
    for (strategy,), rows in paths.group_by("strategy", maintain_order=True):
        ax.step(rows["date"].to_list(), rows["equity_weight"].to_list(), where="post",
                label=strategy, **styles[strategy])
    top = float(paths["equity_weight"].max())
    ax.set_ylim(0.0, 1.02 if top <= 1.0 else top * 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    what = "equity sleeve weight" if sleeve else "equity weight"
    ax.set_ylabel(what)
    ax.set_title(what.capitalize() + " held on the history"
                 + (" (every equity together)" if sleeve else ""))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _finish(fig, note, margins=Margins(0.85, 1.5, 0.6, 0.36))


def search_progress(history: pl.DataFrame, note: str = "") -> Figure:
    """How the search went: the best objective at the end of each round with the proposer
    of each improvement after round 0 (left), and where the evaluated configs lie in
    target vol x vol window, one marker per config coloured by its proposer, the
    improvements ringed and the final best starred (one panel per weight function)."""
    ordered = history.sort("evaluation_index")
    fns = ordered["weight_fn"].unique(maintain_order=True).sort().to_list()
    fig = plt.figure(figsize=(WIDTH, 6.6))
    grid = fig.add_gridspec(2, 1 + math.ceil(len(fns) / 2), width_ratios=[1.4]
                            + [1] * math.ceil(len(fns) / 2))
    ax = fig.add_subplot(grid[:, 0])
    per_round = ordered.group_by("round", maintain_order=True).agg(
        pl.col("round_best_objective").last(), pl.len().alias("configs"))
    ax.step(per_round["round"].to_list(), per_round["round_best_objective"].to_list(),
            where="post", color="black", linewidth=2, label="best objective so far")
    gains = ordered.filter(pl.col("improved") & (pl.col("round") > 0))
    for (proposer,), rows in gains.group_by("proposer", maintain_order=True):
        ax.scatter(rows["round"].to_list(), rows["best_objective_so_far"].to_list(), s=40,
                   color=PROPOSER_COLOURS.get(proposer), edgecolor="black", zorder=3,
                   label=f"improvement by {proposer}")
    ax.set_xlabel("round (configs per round in the labels)")
    ax.set_xticks(per_round["round"].to_list(),
                  [f"{r}\n{n}" for r, n in per_round.select("round", "configs").iter_rows()],
                  fontsize=7)
    ax.set_ylabel("best objective at the end of the round")
    ax.legend(fontsize=7, loc="lower right")
    best = ordered.sort("objective", descending=True, nulls_last=True).row(0, named=True)
    for k, fn in enumerate(fns):
        panel = fig.add_subplot(grid[k % 2, 1 + k // 2])
        rows = ordered.filter(pl.col("weight_fn") == fn)
        for (proposer,), part in rows.group_by("proposer", maintain_order=True):
            panel.scatter(part["target_vol"].to_list(), part["vol_window_months"].to_list(),
                          s=14, alpha=0.6, color=PROPOSER_COLOURS.get(proposer), label=proposer)
        ringed = rows.filter(pl.col("improved"))
        panel.scatter(ringed["target_vol"].to_list(), ringed["vol_window_months"].to_list(),
                      s=60, facecolor="none", edgecolor="black", linewidth=0.8)
        if best["weight_fn"] == fn:
            panel.scatter([best["target_vol"]], [best["vol_window_months"]], **RECOMMENDED)
        panel.set_title(f"{fn} ({rows.height} configs)", fontsize=9)
        _percent(panel, x=True, decimals=0)
        panel.tick_params(labelsize=7)
        panel.set_xlabel("target vol", fontsize=8)
        panel.set_ylabel("vol window (months)", fontsize=8)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=p)
               for p, c in PROPOSER_COLOURS.items() if p in set(ordered["proposer"])]
    return _legend_on_top(
        fig, handles, f"Search progress: {ordered.height} configs in {per_round.height}"
        " rounds; ringed: a new best when evaluated, star: the final best", note,
        ncol=len(handles), fontsize=7,
        margins=Margins(0.85, 0.19, 0.87, 0.95, wspace=0.19, hspace=0.39))


def asset_weights(items: Sequence[dict], title: str, note: str = "") -> Figure:
    """Today's weight of every asset of a portfolio, one horizontal bar each, labelled
    with its weight; the y labels say what each asset is and where its data comes from
    (``items``: [{asset, label, weight}] in the spec's order, equities first)."""
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(items) + 1.6))
    rows = list(reversed(items))
    weights = [float(i["weight"]) for i in rows]
    colours = ["tab:red" if "equity index" in i["label"] else "tab:blue" for i in rows]
    ax.barh(range(len(rows)), weights, color=colours)
    ax.set_yticks(range(len(rows)), [i["label"] for i in rows], fontsize=8)
    for y, w in enumerate(weights):
        ax.text(w, y, f" {w:.1%}", va="center", fontsize=8)
    ax.set_xlim(0.0, max(1e-9, max(weights)) * 1.2)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("weight today (of NAV)")
    ax.set_title(title)
    return _finish(fig, note)
