"""The committee's charts cannot mislead: checked on the matplotlib objects each plotting
function returns (axes limits, lines, ticks, colour norms, table cells), on small literal
tables whose expected values are written next to them. No pixels are compared but a
PNG's with matplotlib's own savefig of the same chart."""

from __future__ import annotations

import datetime as dt
import io
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator

import numpy as np
import polars as pl
import pytest
from matplotlib import pyplot as plt
from matplotlib.artist import Artist
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter
from PIL import Image

from dynalloc_dagster.committee import plots, render
from dynalloc_dagster.committee.pdf import chart_page, png_and_page
from dynalloc_dagster.partitions import (
    SCENARIO_LABELS,
    SCENARIOS,
    in_scenario_order,
    scenario_label,
)
from engine.objectives import InvestmentObjectives

# alphabetical, as the SQL marts return them: the charts must reorder
SHUFFLED = sorted(SCENARIOS)
IN_ORDER = [SCENARIO_LABELS[s] for s in SCENARIOS]
OBJECTIVES = InvestmentObjectives(target_vol=0.10, vol_tolerance=0.02)


def _config(config_id: str, rank: int, weight_fn: str, target_vol: float, window: int,
            risk_aversion: float | None = None) -> dict:
    return {"config_id": config_id, "rank": rank, "weight_fn": weight_fn,
            "target_vol": target_vol, "vol_window_months": window,
            "risk_aversion": risk_aversion}


# c2 and c3 read the same in words (targets 8.01% and 8.04% both print 8.0%)
CONFIGS = [_config("c1", 1, "inverse_vol", 0.10, 12),
           _config("c2", 2, "linear", 0.0801, 6, 2.0),
           _config("c3", 3, "linear", 0.0804, 6, 2.0)]
RECOMMENDED = {**CONFIGS[0], "equity_weight_today": 0.37, "as_of": "2026-11-20"}


@pytest.fixture
def figures() -> Iterator[list[Figure]]:
    """Figures a test draws, closed after it."""
    drawn: list[Figure] = []
    yield drawn
    plots.close({str(i): fig for i, fig in enumerate(drawn)})


def _leaderboard(robustness: list[float | None], objective: list[float | None]
                 ) -> pl.DataFrame:
    rows = [CONFIGS[i % 3] | {"config_id": f"c{i + 1}", "rank": i + 1}
            for i in range(len(robustness))]
    return pl.DataFrame(rows, schema_overrides={"risk_aversion": pl.Float64}).with_columns(
        pl.Series("robustness", robustness, dtype=pl.Float64),
        pl.Series("objective", objective, dtype=pl.Float64))


def test_robustness_on_a_percent_axis_with_its_threshold_and_the_objective_apart(
        figures: list[Figure]) -> None:
    # rank 3 is below 0% (-140%), rank 4 above 100% (a rule beating the in-band best),
    # rank 5 unscored
    board = _leaderboard([0.85, 0.40, -1.4, 1.2, None], [0.85, 0.10, -2.6, -3.0, None])
    fig = plots.robustness_ranking(board, threshold=0.8)
    figures.append(fig)
    top, bottom = fig.axes
    assert top.get_ylim() == (0.0, 1.0)
    assert isinstance(top.yaxis.get_major_formatter(), PercentFormatter)
    threshold = [line for line in top.get_lines() if list(line.get_ydata()) == [0.8, 0.8]]
    assert len(threshold) == 1 and "80%" in threshold[0].get_label()
    points = {line.get_marker(): (list(line.get_xdata()), list(line.get_ydata()))
              for line in top.get_lines() if line.get_linestyle() == "None"}
    assert points["o"] == ([1.0, 2.0], [0.85, 0.40])
    assert points["v"] == ([3.0], [0.0])  # drawn on the axis floor, counted in its label
    assert points["^"] == ([4.0], [1.0])
    # the objective is unitless, on its own axis, with every value as it is
    assert not isinstance(bottom.yaxis.get_major_formatter(), PercentFormatter)
    (objective,) = [line for line in bottom.get_lines() if line.get_marker() == "."]
    np.testing.assert_array_equal(objective.get_ydata(), [0.85, 0.10, -2.6, -3.0, np.nan])
    assert bottom.get_ylim()[0] <= -3.0
    assert all("objective" not in line.get_label() for line in top.get_lines())


def _costs(levels: dict[str, list[float]], costs: list[float]) -> pl.DataFrame:
    """Two scenarios per (config, cost); worst_sharpe_mean repeated on both, as the engine
    writes it."""
    rows = [{"config_id": cid, "tc_bps": cost, "scenario": scenario,
             "worst_sharpe_mean": value}
            for cid, values in levels.items() for cost, value in zip(costs, values, strict=True)
            for scenario in ("base", "bear")]
    return pl.DataFrame(rows)


def test_cost_sensitivity_is_the_change_against_0_bp_at_the_costs_evaluated(
        figures: list[Figure]) -> None:
    costs = [0.0, 5.0, 10.0, 20.0]  # not evenly spaced: ticks must sit on these
    # listed out of rank order; c2 and c3 both flat and at the same change
    levels = {"c3": [0.50, 0.50, 0.50, 0.50], "c1": [0.30, 0.28, 0.25, 0.19],
              "c2": [0.90, 0.90, 0.90, 0.90]}
    board = pl.DataFrame(CONFIGS, schema_overrides={"risk_aversion": pl.Float64})
    fig = plots.cost_sensitivity(_costs(levels, costs), board, assumed_tc_bps=10.0)
    figures.append(fig)
    (ax,) = fig.axes
    assert list(ax.get_xticks()) == costs
    series = [line for line in ax.get_lines() if len(line.get_xdata()) == len(costs)]
    assert [line.get_label().split(":")[0] for line in series] == ["recommended", "#2", "#3"]
    expected = {"recommended": [0.0, -0.02, -0.05, -0.11], "#2": [0.0] * 4, "#3": [0.0] * 4}
    for line in series:
        assert list(line.get_xdata()) == costs
        np.testing.assert_allclose(line.get_ydata(), expected[line.get_label().split(":")[0]],
                                   atol=1e-12)
    labels = [line.get_label() for line in series]
    assert len(set(labels)) == 3
    assert "(0.30 at 0 bp)" in labels[0] and "(0.90 at 0 bp)" in labels[1]
    # coinciding lines (#2 and #3 here) stay told apart: colour, marker and dash differ
    for style in (lambda line: to_rgba(line.get_color()), Line2D.get_marker,
                  Line2D.get_linestyle):
        assert len({style(line) for line in series}) == 3
    assert to_rgba(series[0].get_color()) == to_rgba("black")
    assert "0 bp" in ax.get_ylabel()
    assumed = [line for line in ax.get_lines() if list(line.get_xdata()) == [10.0, 10.0]]
    assert len(assumed) == 1


def _interaction() -> pl.DataFrame:
    """Bear all negative and small, bull large: per-panel scales would paint -0.1 in bear
    the same colour as 1.6 in bull."""
    values = {"bull": [1.6, 1.2, 0.9, 1.4], "bear": [-0.1, -0.3, -0.2, -0.05],
              "base": [0.5, 0.4, 0.6, 0.3]}
    cells = [("inverse_vol", "6-11m"), ("inverse_vol", "12-17m"), ("linear", "6-11m"),
             ("linear", "18-24m")]
    return pl.DataFrame([{"scenario": s, "weight_fn": w, "vol_window_band": b,
                          "mean_sharpe_mean": v, "n_configs": 1}
                         for s, vs in values.items() for (w, b), v in zip(cells, vs, strict=True)])


def test_heatmap_panels_share_one_colour_scale_symmetric_about_zero(
        figures: list[Figure]) -> None:
    fig = plots.weight_window_interaction(_interaction(), RECOMMENDED)
    figures.append(fig)
    images = [image for ax in fig.axes for image in ax.images]
    assert len(images) == 3
    assert {(image.norm.vmin, image.norm.vmax) for image in images} == {(-1.6, 1.6)}
    panels = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == len(panels) + 1  # one colour bar, for every panel
    # the recommended rule (inverse vol, 12m window) framed in the 12-17m column
    for ax in panels:
        (frame,) = [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
        assert frame.get_xy() == (1 - 0.5, 0 - 0.5)


def _evaluations() -> pl.DataFrame:
    """Vol far above the mandate's band in high_vol, below it in low_vol."""
    rows = []
    for s in SHUFFLED:
        vols = {"high_vol": (0.30, 0.40), "low_vol": (0.02, 0.04)}.get(s, (0.05, 0.15))
        for cid, vol in zip(("c1", "c2"), vols, strict=True):
            rows.append({"config_id": cid, "scenario": s, "ann_vol_mean": vol,
                         "ann_return_mean": vol / 2, "sharpe_mean": 0.5})
    return pl.DataFrame(rows)


def _benchmarks() -> pl.DataFrame:
    return pl.DataFrame([{"benchmark": name, "scenario": s, "ann_vol_mean": vol,
                          "ann_return_mean": 0.05, "sharpe_mean": 0.3}
                         for s in SHUFFLED for name, vol in (("60/40", 0.09), ("100% equity",
                                                                                 0.16))])


def test_risk_return_shows_the_mandate_vol_band_in_every_panel(figures: list[Figure]) -> None:
    fig = plots.risk_return(_evaluations(), RECOMMENDED, _benchmarks(), OBJECTIVES)
    figures.append(fig)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == IN_ORDER
    for ax in panels:
        (band,) = [p for p in ax.patches if p.get_label().startswith("mandate vol")]
        np.testing.assert_allclose([band.get_x(), band.get_x() + band.get_width()],
                                   [0.08, 0.12], atol=1e-12)
        left, right = ax.get_xlim()
        assert left < 0.08 and right > 0.12, ax.get_title()
    assert "10% \u00b1 2%" in band.get_label()


def _bands() -> pl.DataFrame:
    return pl.DataFrame([{"scenario": s, "month": m, "mean": 0.5, "p5": 0.2, "p50": 0.5,
                          "p95": 0.8} for s in SHUFFLED for m in (1, 2, 3)])


def test_allocation_dynamics_shows_todays_weight_in_every_panel(figures: list[Figure]) -> None:
    fig = plots.allocation_dynamics(_bands(), RECOMMENDED)
    figures.append(fig)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == IN_ORDER
    for ax in panels:
        (today,) = [line for line in ax.get_lines() if "today" in line.get_label()]
        assert list(today.get_ydata()) == [0.37, 0.37]
        assert "37.0%" in today.get_label() and "2026-11-20" in today.get_label()
        assert ax.get_ylim() == (0.0, 1.02)


ASSETS = {"sp500": 0.3, "nasdaq": 0.1, "cash": 0.6}


def _asset_bands() -> pl.DataFrame:
    return pl.DataFrame([{"scenario": s, "asset": a, "month": m, "mean": w, "p5": w, "p50": w,
                          "p95": w} for s in SHUFFLED for a, w in ASSETS.items()
                         for m in (1, 2, 3)])


def test_a_portfolios_allocation_dynamics_stacks_every_asset_by_name(
        figures: list[Figure]) -> None:
    """Bands with an asset column: every asset a stacked area named in the legend with its
    weight today, the stack's top at 100%, today's equity sleeve dashed."""
    recommended = {**RECOMMENDED, "equity_weight_today": 0.4, "asset_weights_today": [
        {"asset": a, "label": a, "weight": w} for a, w in ASSETS.items()]}
    fig = plots.allocation_dynamics(_asset_bands(), recommended)
    figures.append(fig)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "sp500 (today 30.0%)", "nasdaq (today 10.0%)", "cash (today 60.0%)",
        "equity sleeve today 40.0% (as of 2026-11-20)"]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == IN_ORDER
    for ax in panels:
        areas = ax.collections
        assert [a.get_label() for a in areas] == [t.get_text() for t in legend.get_texts()][:3]
        top = areas[-1].get_paths()[0].vertices[:, 1].max()
        assert top == pytest.approx(1.0, abs=1e-12)
        assert ax.get_ylabel() == "mean weight across paths"


def test_a_portfolios_backtest_weight_chart_says_equity_sleeve(figures: list[Figure]) -> None:
    fig = plots.backtest_equity_weight(_backtest_paths(), "recommended", sleeve=True)
    figures.append(fig)
    assert fig.axes[0].get_ylabel() == "equity sleeve weight"
    assert "every equity together" in fig.axes[0].get_title()
    plain = plots.backtest_equity_weight(_backtest_paths(), "recommended")
    figures.append(plain)
    assert plain.axes[0].get_ylabel() == "equity weight"


def test_summary_table_highlights_the_recommended_rows(figures: list[Figure]) -> None:
    rows = [[label, portfolio, "0.5"] for label in ("Base case", "Bull market")
            for portfolio in ("recommended rule", "60/40", "100% equity")]
    fig = plots.summary_table(rows, ["scenario", "portfolio", "mean Sharpe"], "summary",
                              highlight=(0, 3))
    figures.append(fig)
    (table,) = fig.axes[0].tables
    cells = table.get_celld()
    for (r, c), cell in cells.items():
        marked = r in (1, 4)  # table row 0 is the header
        assert (to_rgba(cell.get_facecolor()) == to_rgba(plots.RECOMMENDED_ROW)) == marked
        weight = cell.get_text().get_fontweight()
        assert (weight == "bold") == (marked or r == 0), (r, c)


def test_the_summary_table_fills_its_figure_between_title_and_footnote(
        figures: list[Figure]) -> None:
    """No band of empty figure above or below the table: its rows fill the axes, whose
    height is the rows' (TABLE_ROW each); its columns span the figure's width."""
    rows = [[f"scenario {i}", "60/40", f"{i / 10:.2f}"] for i in range(18)]
    fig = plots.summary_table(rows, ["scenario", "portfolio", "mean Sharpe"], "summary",
                              "a footnote")
    figures.append(fig)
    fig.canvas.draw()
    (table,) = fig.axes[0].tables
    box, axes = table.get_window_extent(), fig.axes[0].get_window_extent()
    assert box.y0 == pytest.approx(axes.y0, abs=1) and box.y1 == pytest.approx(axes.y1, abs=1)
    assert box.x0 == pytest.approx(axes.x0, abs=1) and box.x1 == pytest.approx(axes.x1, abs=1)
    assert axes.height == pytest.approx(19 * plots.TABLE_ROW * fig.dpi, abs=1)


def test_scenarios_read_in_one_order_with_human_names_on_every_chart(
        figures: list[Figure]) -> None:
    evaluations = _evaluations()
    comparison = pl.DataFrame([{"scenario": s, "best_sharpe_mean": 1.0,
                                "median_sharpe_mean": 0.5, "worst_sharpe_mean": 0.1}
                               for s in SHUFFLED])
    board = pl.DataFrame(CONFIGS[:2], schema_overrides={"risk_aversion": pl.Float64})
    sensitivity = pl.DataFrame([{"scenario": s, "parameter": p, "main_effect_share": 0.3}
                                for s in SHUFFLED for p in ("weight_fn", "target_vol")])
    bar_charts = [plots.scenario_comparison(comparison, evaluations, _benchmarks(),
                                            RECOMMENDED),
                  plots.sharpe_by_scenario(evaluations, board),
                  plots.parameter_sensitivity(sensitivity)]
    figures.extend(bar_charts)
    for fig in bar_charts:
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == IN_ORDER
    interaction = _interaction()
    fig = plots.weight_window_interaction(interaction, RECOMMENDED)
    figures.append(fig)
    assert [ax.get_title() for ax in fig.axes if ax.images] == [
        scenario_label(s) for s in ("base", "bull", "bear")]


def test_scenario_order_and_labels() -> None:
    assert in_scenario_order(["calibrated", "zeta", "bear", "alpha", "base", "bear"]) == [
        "base", "bear", "calibrated", "alpha", "zeta"]
    assert scenario_label("high_vol") == "High volatility"
    assert scenario_label("my_regime") == "my regime"
    assert set(SCENARIO_LABELS) == set(SCENARIOS)


def _backtest_paths() -> pl.DataFrame:
    dates = [dt.date(2020, m, 28) for m in range(1, 13)]
    strategies = {"recommended": 0.004, "#2": 0.006, "#3": 0.006, "60/40": 0.003,
                  "100% equity": 0.008}
    return pl.DataFrame([{"date": d, "strategy": name, "portfolio_return": r,
                          "equity_weight": 1.0 if name == "100% equity" else 0.4,
                          "nav": (1 + r) ** (i + 1)}
                         for name, r in strategies.items() for i, d in enumerate(dates)])


def test_backtest_charts_tell_every_strategy_apart(figures: list[Figure]) -> None:
    paths = _backtest_paths()
    nav = plots.backtest_nav(paths, "recommended", note="Data: sample")
    weight = plots.backtest_equity_weight(paths, "recommended")
    figures.extend([nav, weight])
    for fig in (nav, weight):
        lines = {line.get_label(): line for line in fig.axes[0].get_lines()
                 if not line.get_label().startswith("_")}
        assert list(lines) == ["recommended", "#2", "#3", "60/40", "100% equity"]
        assert to_rgba(lines["recommended"].get_color()) == to_rgba("black")
        assert lines["recommended"].get_linewidth() > max(
            line.get_linewidth() for name, line in lines.items() if name != "recommended")
        # #2 and #3 coincide: still a different colour and marker each, and a dash
        # unlike the recommended rule's solid line
        others = [line for name, line in lines.items() if name != "recommended"]
        assert len({to_rgba(line.get_color()) for line in lines.values()}) == len(lines)
        assert len({line.get_marker() for line in others}) == len(others)
        assert all(line.get_linestyle() != "-" for line in others)
    # the NAV's log axis reads in plain numbers, with ticks inside the data's range
    nav.canvas.draw()
    low, high = nav.axes[0].get_ylim()
    ticks = [t.get_text() for t in nav.axes[0].get_yticklabels()
             if t.get_text() and low <= t.get_position()[1] <= high]
    assert len(ticks) >= 3 and not any("10^" in t or "times" in t for t in ticks), ticks
    assert weight.axes[0].get_ylim() == (0.0, 1.02)
    assert any(t.get_text() == "Data: sample" for t in nav.texts)


def test_the_new_layouts_render_to_the_same_bytes_twice(figures: list[Figure]) -> None:
    board = _leaderboard([0.85, 0.40, -1.4], [0.85, 0.10, -2.6])

    def draw() -> list[bytes]:
        drawn = [plots.robustness_ranking(board, 0.8),
                 plots.weight_window_interaction(_interaction(), RECOMMENDED)]
        figures.extend(drawn)
        return [plots.png_bytes(fig) for fig in drawn]

    assert draw() == draw()


def test_a_charts_png_is_the_rgb_of_the_pixels_matplotlib_saves(figures: list[Figure]
                                                                ) -> None:
    """The PNG is drawn from the canvas, not by savefig: its pixels are savefig's (at the
    PNG resolution, alpha dropped), and it says its resolution."""
    board = _leaderboard([0.85, 0.40, -1.4], [0.85, 0.10, -2.6])
    ours, theirs = plots.robustness_ranking(board, 0.8), plots.robustness_ranking(board, 0.8)
    figures.extend([ours, theirs])
    saved = io.BytesIO()
    theirs.savefig(saved, format="png", dpi=plots.PNG_DPI)
    picture = Image.open(io.BytesIO(plots.png_bytes(ours)))
    reference = Image.open(saved)
    assert picture.mode == "RGB" and reference.mode == "RGBA"
    assert picture.size == reference.size == (1100, 660)  # 11 x 6.6 inches at 100 dpi
    assert np.array_equal(np.asarray(picture), np.asarray(reference)[..., :3])
    # PNG keeps whole pixels per metre: 100 dpi is 3937 per metre, 99.9998 dpi
    assert picture.info["dpi"] == pytest.approx((plots.PNG_DPI, plots.PNG_DPI), abs=1e-3)


def test_a_figure_that_is_not_opaque_is_refused_naming_it(figures: list[Figure]) -> None:
    fig = plt.figure(facecolor="none")
    fig.suptitle("Glass chart")
    figures.append(fig)
    with pytest.raises(ValueError, match="'Glass chart' has pixels that are not opaque"):
        plots.png_bytes(fig)


def _charts() -> dict[str, Callable[[], Figure]]:
    """Builders of three charts of different layouts (one drawn on its own here)."""
    board = _leaderboard([0.85, 0.40, -1.4], [0.85, 0.10, -2.6])
    return {"robustness_ranking": lambda: plots.robustness_ranking(board, 0.8, "note"),
            "weight_window_interaction": lambda: plots.weight_window_interaction(
                _interaction(), RECOMMENDED, "note"),
            "backtest_nav": lambda: plots.backtest_nav(_backtest_paths(), "recommended")}


def _unparsable() -> Figure:
    """A figure that builds but fails when drawn (a mathtext error at draw time)."""
    fig = plt.figure()
    fig.text(0.5, 0.5, r"$\notacommand{x}$")
    return fig


def test_charts_drawn_by_the_workers_are_the_bytes_drawn_here() -> None:
    open_before = plt.get_fignums()
    serial = render.render_charts(_charts(), workers=1)
    forked = render.render_charts(_charts(), workers=2)
    assert list(forked) == list(_charts())
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in forked.values())
    assert forked == serial
    assert plt.get_fignums() == open_before  # every figure closed


def test_the_workers_encode_each_charts_own_pdf_page_as_drawn_here() -> None:
    """Drawn with png_and_page, a worker sends back the chart's PNG (the bytes drawn to
    PNG alone) and the charts.pdf page of that same PNG, as drawn here."""
    pngs = render.render_charts(_charts(), workers=1)
    forked = render.render_charts(_charts(), workers=2, draw=png_and_page)
    assert list(forked) == list(pngs)
    assert {name: png for name, (png, _) in forked.items()} == pngs
    assert {name: page for name, (_, page) in forked.items()} == {
        name: chart_page(png) for name, png in pngs.items()}
    assert forked == render.render_charts(_charts(), workers=1, draw=png_and_page)
    assert plt.get_fignums() == []


@pytest.mark.parametrize("workers", [1, 2])
def test_a_chart_failing_to_draw_fails_the_call_and_names_it(workers: int) -> None:
    builders = {**_charts(), "broken": _unparsable}
    with pytest.raises(render.ChartError, match="chart 'broken' failed while being drawn"):
        render.render_charts(builders, workers=workers)
    assert plt.get_fignums() == []


def test_a_chart_failing_to_build_names_it_and_closes_the_built_ones() -> None:
    def broken() -> Figure:
        raise KeyError("scenario")

    builders = {**_charts(), "broken": broken}
    with pytest.raises(render.ChartError, match="chart 'broken' failed while being built:"
                       " KeyError"):
        render.render_charts(builders, workers=2)
    assert plt.get_fignums() == []


class _Exit(Artist):
    """An artist whose drawing ends its process, as a worker killed mid-chart would."""

    def draw(self, renderer) -> None:
        os._exit(3)


def _dying() -> Figure:
    fig = plt.figure()
    fig.add_artist(_Exit())
    return fig


def test_a_worker_dying_mid_chart_names_the_chart() -> None:
    with pytest.raises(render.ChartError, match="chart 'dying' failed while being drawn"
                       r" \(its worker process died\)"):
        render.render_charts({"dying": _dying, **_charts()}, workers=2)
    assert plt.get_fignums() == []


class _Hung(Exception):
    pass


def _hung(signum, frame) -> None:
    raise _Hung


def test_a_worker_dying_ends_the_call_when_the_process_catches_sigterm() -> None:
    """A Dagster run worker catches SIGTERM (it records the interrupt); the pool's other
    workers, forked from it, must still end when the pool terminates them after one died,
    or the call waits for them forever. An alarm turns such a hang into a failure."""
    caught: list[int] = []
    before_term = signal.signal(signal.SIGTERM, lambda signum, frame: caught.append(signum))
    before_alarm = signal.signal(signal.SIGALRM, _hung)
    slow = {f"slow_{i}": _charts()["backtest_nav"] for i in range(6)}
    signal.alarm(60)
    try:
        with pytest.raises(render.ChartError, match="chart 'dying' failed while being drawn"
                           r" \(its worker process died\)"):
            render.render_charts({**slow, "dying": _dying}, workers=2)
    except _Hung:
        for worker in multiprocessing.active_children():
            worker.kill()
        pytest.fail("render_charts still waiting for its workers 60 s after one died")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before_alarm)
        signal.signal(signal.SIGTERM, before_term)
    assert caught == []
    assert plt.get_fignums() == []


class _ExitOnce(Artist):
    """An artist whose first drawing ends its process (a worker killed once, as memory
    pressure would), leaving ``marker`` behind; later drawings draw nothing."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def draw(self, renderer) -> None:
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(9)


def test_a_worker_dying_once_leaves_every_chart_drawn(tmp_path) -> None:
    """The charts a dead worker left undrawn are drawn again, each alone: when the death
    does not recur, every chart comes back, the same bytes as drawn here."""
    def once() -> Figure:
        fig = plt.figure()
        fig.add_artist(_ExitOnce(str(tmp_path / "died")))
        return fig

    builders = {**_charts(), "once": once}
    forked = render.render_charts(builders, workers=2)
    assert (tmp_path / "died").exists()
    assert list(forked) == list(builders)
    assert forked == render.render_charts(builders, workers=1)
    assert plt.get_fignums() == []
