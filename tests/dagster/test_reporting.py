"""The report's numbers against the tables they come from, its PDF, the charts, and the
per-key metadata of strategy_evaluations.

The tables are built with the engine (no Dagster run): a few configs evaluated on small
simulated scenarios, scored by the engine's optimisation history, ranked as the
leaderboard ranks them; the report is rendered from them and parsed back.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import fpdf.image_parsing
import numpy as np
import polars as pl
import pytest
from fpdf import FPDF
from matplotlib.colors import to_rgba
from PIL import Image

from dynalloc_dagster.assets.strategies import evaluation_metadata
from dynalloc_dagster.committee import plots
from dynalloc_dagster.committee.decision import mandate_summary, status_text
from dynalloc_dagster.committee.pdf import (
    HEADER_GREY,
    MARGIN_X,
    _Pages,
    _rgb,
    chart_page,
    pdf_of_pages,
    report_pdf,
)
from dynalloc_dagster.committee.png import COMPRESS_LEVEL, compressed_scanlines
from dynalloc_dagster.committee.text import (
    Figure,
    ReportDocument,
    ReportInputs,
    Section,
    Table,
    benchmark_table,
    build_report,
    leaderboard_table,
    to_markdown,
)
from dynalloc_dagster.partitions import in_scenario_order, scenario_label
from engine.analysis.allocation import weight_bands, weight_paths
from engine.analysis.benchmarks import evaluate_benchmarks
from engine.analysis.costs import cost_sensitivity
from engine.analysis.scoring import PENALTIES
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import PROPOSERS, AgentSettings, config_rows, optimisation_history
from engine.optimisation.trust_region import TrustRegionProposer
from engine.strategy import StrategyConfig, evaluate

SCENARIOS = ("base", "bear", "bull")
CONFIGS = [
    StrategyConfig(target_vol=0.08, weight_fn="inverse_vol", vol_window_months=3, tc_bps=10.0),
    StrategyConfig(target_vol=0.12, weight_fn="inverse_vol_squared", vol_window_months=6,
                   tc_bps=10.0),
    StrategyConfig(target_vol=0.10, weight_fn="linear", vol_window_months=4, risk_aversion=2.0,
                   tc_bps=10.0),
    StrategyConfig(target_vol=0.15, weight_fn="sigmoid", vol_window_months=5,
                   risk_aversion=3.5, tc_bps=10.0),
]
OBJECTIVES = InvestmentObjectives()


def _leaderboard(history: pl.DataFrame, evaluations: pl.DataFrame) -> pl.DataFrame:
    """The leaderboard's columns as the SQL model writes them (every config distinct here:
    no two share a weight function)."""
    meeting = evaluations.group_by("config_id").agg(
        pl.col("meets_objectives").sum().cast(pl.Int64).alias("n_scenarios_meeting"),
        pl.len().cast(pl.Int64).alias("n_scenarios"))
    return (history.sort("objective", "config_id", descending=[True, False], nulls_last=True)
            .with_row_index("rank", offset=1).with_columns(pl.col("rank").cast(pl.Int64))
            .join(meeting, on="config_id", maintain_order="left")
            .with_columns(pl.lit(None, dtype=pl.String).alias("near_duplicate_of"),
                          pl.lit(True).alias("best_of_weight_fn")))


@pytest.fixture(scope="module")
def built() -> tuple[ReportInputs, pl.DataFrame]:
    """The report's inputs and the recommended rule's weight bands."""
    paths = {s: simulate_scenario(REGIMES[s], n_paths=40, seed=11, warmup_months=6,
                                  horizon_years=1) for s in SCENARIOS}
    evaluations = pl.concat([evaluate(p, CONFIGS, OBJECTIVES) for p in paths.values()])
    history, _ = optimisation_history(config_rows(CONFIGS, round_index=0, proposer="lhs"),
                                      evaluations, OBJECTIVES, AgentSettings(max_configs=4),
                                      elapsed_s=1.0)
    leaderboard = _leaderboard(history, evaluations)
    best = leaderboard.row(0, named=True)
    rule = next(c for c in CONFIGS if c.config_id == best["config_id"])
    summary = mandate_summary(evaluations, OBJECTIVES, rule.config_id)
    recommended = {**rule.to_dict(), "config_id": rule.config_id, "rule": plots.rule_label(best),
                   "as_of": "2026-11-20", "equity_weight_today": 0.6604,
                   "defensive_weight_today": 0.3396, "defensive_leg": "bond",
                   "defensive_leg_label": "government bonds",
                   "mandate_status": status_text(summary), "previous_config_id": None}
    bands = pl.concat([weight_bands(weight_paths(p, rule)).select(
        pl.lit(s).alias("scenario"), pl.all()) for s, p in paths.items()])
    charts = pl.DataFrame({"chart": ["allocation_dynamics"], "caption": ["weights"]})
    inputs = ReportInputs(
        objectives=OBJECTIVES,
        narrative={"written_by": "offline", "narrative": "## Summary\n\nText."},
        recommended=recommended, leaderboard=leaderboard, evaluations=evaluations,
        history=history, costs=cost_sensitivity(paths, CONFIGS[:2], (0.0, 10.0), OBJECTIVES),
        benchmarks=evaluate_benchmarks(paths, OBJECTIVES), charts=charts,
        data_source="synthetic", run_config={"ops": {"scenario_paths": {"config": {
            "n_paths": 40}}}},
        code_version="dynalloc 0.1.0, git abc")
    return inputs, bands


@pytest.fixture(scope="module")
def inputs(built: tuple[ReportInputs, pl.DataFrame]) -> ReportInputs:
    return built[0]


def _tables(markdown: str, section: str) -> list[list[list[str]]]:
    """The markdown tables of one ``## section``, each a list of rows of cells."""
    body = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    tables, current = [], []
    for line in body.splitlines():
        if line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line):
                current.append([c.strip() for c in line.strip("|").split(" | ")])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def test_decision_comes_first_and_states_the_weights(inputs: ReportInputs) -> None:
    text = to_markdown(build_report(inputs))
    sections = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert sections[:3] == ["Decision", "Data, run config and code version", "Narrative"]
    decision = text.split("## Decision", 1)[1].split("\n## ", 1)[0]
    assert "equity 66.0%, government bonds 34.0%" in decision
    status = inputs.recommended["mandate_status"]
    assert decision.strip().startswith(f"**Mandate status:** {status}")
    assert "as of 2026-11-20" in decision
    assert "first recommendation" in decision
    assert "synthetic market data" in decision
    robust = int(inputs.leaderboard["robust"].sum())
    if robust == 0:
        assert f"None of the {len(CONFIGS)} configs evaluated is robust" in decision
    # the narrative's headings sit below the report's sections
    assert "\n### Summary\n" in text


def test_benchmark_table_numbers_are_the_tables_numbers(inputs: ReportInputs) -> None:
    text = to_markdown(build_report(inputs))
    (table,) = _tables(text, "The recommended rule against static benchmarks")
    header, rows = table[0], table[1:]
    assert header[:3] == ["scenario", "portfolio", "mean Sharpe"]
    assert len(rows) == len(SCENARIOS) * 3
    rec_id = inputs.leaderboard["config_id"][0]
    by_label = {scenario_label(s): s for s in SCENARIOS}
    assert [r[0] for r in rows[::3]] == [scenario_label(s) for s in in_scenario_order(SCENARIOS)]
    for label, portfolio, sharpe, ret, vol, drawdown, equity, meets in rows:
        scenario = by_label[label]
        if portfolio == "recommended rule":
            source = inputs.evaluations.filter((pl.col("config_id") == rec_id)
                                               & (pl.col("scenario") == scenario))
        else:
            source = inputs.benchmarks.filter((pl.col("benchmark") == portfolio)
                                              & (pl.col("scenario") == scenario))
        row = source.row(0, named=True)
        np.testing.assert_allclose(float(sharpe), row["sharpe_mean"], atol=0.005)
        np.testing.assert_allclose(_percent(ret), row["ann_return_mean"], atol=0.0005)
        np.testing.assert_allclose(_percent(vol), row["ann_vol_mean"], atol=0.0005)
        np.testing.assert_allclose(_percent(drawdown), row["max_drawdown_median"], atol=0.0005)
        np.testing.assert_allclose(_percent(equity), row["avg_equity_weight_mean"], atol=0.005)
        assert meets == ("yes" if row["meets_objectives"] else "no")
    sixty = [r for r in rows if r[1] == "60/40"]
    assert {r[6] for r in sixty} == {"60%"}


def test_leaderboard_numbers_and_parameters_in_words(inputs: ReportInputs) -> None:
    text = to_markdown(build_report(inputs))
    (table,) = _tables(text, "Leaderboard")
    header, rows = table[0], table[1:]
    assert header == ["rank", "weight function", "target vol", "vol window", "risk aversion",
                      "objective", "robustness", "penalty vol", "penalty drawdown",
                      "penalty VaR95", "penalty CVaR95", "penalty cost", "meets mandate",
                      "worst scenario"]
    board = inputs.leaderboard.sort("rank")
    assert len(rows) == board.height
    for cells, row in zip(rows, board.iter_rows(named=True), strict=True):
        assert int(cells[0]) == row["rank"]
        assert cells[1] == row["weight_fn"].replace("_", " ")
        np.testing.assert_allclose(_percent(cells[2]), row["target_vol"], atol=0.0005)
        assert cells[3] == f"{row['vol_window_months']} months"
        if row["weight_fn"] in ("inverse_vol", "inverse_vol_squared"):
            assert cells[4] == "not used"
        else:
            np.testing.assert_allclose(float(cells[4]), row["risk_aversion"], atol=0.005)
        np.testing.assert_allclose(float(cells[5]), row["objective"], atol=0.0005)
        np.testing.assert_allclose(_percent(cells[6]), row["robustness"], atol=0.0005)
        np.testing.assert_allclose([float(c) for c in cells[7:12]],
                                   [row[f"penalty_{n}"] for n in PENALTIES], atol=0.005)
        assert cells[12] == f"{row['n_scenarios_meeting']} of {row['n_scenarios']}"
        assert cells[13] == scenario_label(row["worst_scenario"])


def test_leaderboard_shows_distinct_alternatives_and_each_weight_functions_best(
        inputs: ReportInputs) -> None:
    board = inputs.leaderboard.sort("rank")
    # rank 2 is a near duplicate of rank 1; rows=2 shows the distinct top two (1 and 3)
    # and rank 4 as the best of its weight function
    ids = board["config_id"].to_list()
    marked = board.with_columns(
        pl.when(pl.col("rank") == 2).then(pl.lit(ids[0])).otherwise(None)
        .alias("near_duplicate_of"),
        pl.col("rank").is_in([1, 4]).alias("best_of_weight_fn"))
    table = leaderboard_table(marked, rows=2)
    assert [row[0] for row in table.rows] == ["1", "3", "4"]
    assert [row[0] for row in leaderboard_table(marked, rows=10).rows] == ["1", "3", "4"]


def test_the_decision_names_the_worst_scenario_as_every_table_does(
        inputs: ReportInputs) -> None:
    """Its label (e.g. 'Bear market'), not its key ('bear'), as in the report's tables."""
    worst = inputs.leaderboard.sort("rank")["worst_scenario"][0]
    assert scenario_label(worst) != worst
    text = to_markdown(build_report(inputs))
    assert f"**Robustness:** in its worst scenario ({scenario_label(worst)}) the rule" in text


def test_cost_table_is_the_worst_scenario_sharpe(inputs: ReportInputs) -> None:
    text = to_markdown(build_report(inputs))
    (table,) = _tables(text, "Cost sensitivity")
    assert table[0] == ["rule", "0 bp", "10 bp"]
    for cells in table[1:]:
        rank = int(cells[0].split()[0].lstrip("#"))
        config_id = inputs.leaderboard.filter(pl.col("rank") == rank)["config_id"][0]
        for cost, cell in zip((0.0, 10.0), cells[1:], strict=True):
            expected = inputs.costs.filter((pl.col("config_id") == config_id)
                                           & (pl.col("tc_bps") == cost))["sharpe_mean"].min()
            np.testing.assert_allclose(float(cell), expected, atol=0.005)


def test_change_since_the_previous_recommendation(inputs: ReportInputs) -> None:
    previous = {**inputs.recommended, "previous_config_id": "0123456789",
                "previous_rule": "inverse vol, target 9.0%, 12m window",
                "previous_equity_weight": 0.5, "previous_as_of": "2026-11-13"}
    text = to_markdown(build_report(dataclasses.replace(inputs, recommended=previous)))
    assert ("a new rule (previously config `0123456789`: inverse vol, target 9.0%, 12m"
            " window); equity weight 50.0% as of 2026-11-13 -> 66.0% as of 2026-11-20"
            " (+16.0 percentage points)") in text


def test_efficient_frontier_is_the_upper_left_envelope() -> None:
    vol = [0.10, 0.05, 0.08, 0.12, 0.08, 0.20, float("nan")]
    ret = [0.06, 0.03, 0.07, 0.05, 0.02, 0.09, 0.5]
    # by vol: 0.05 (0.03) kept, 0.08 (0.07) kept, 0.08 (0.02) dominated, 0.10 (0.06)
    # below 0.07, 0.12 (0.05) below, 0.20 (0.09) kept; NaN skipped
    assert plots.efficient_frontier(vol, ret) == [1, 2, 5]


def _two_round_history() -> pl.DataFrame:
    """A hand history: round 0 (lhs) sets 0.4, round 1's trust_region config 0.6."""
    rows = pl.concat([config_rows(CONFIGS[:2], round_index=0, proposer="lhs"),
                      config_rows(CONFIGS[2:3], round_index=1, proposer="tpe"),
                      config_rows(CONFIGS[3:], round_index=1, proposer="trust_region")])
    return rows.with_columns(
        pl.int_range(1, 5).alias("evaluation_index"),
        pl.Series("objective", [0.2, 0.4, 0.3, 0.6]),
        pl.Series("best_objective_so_far", [0.2, 0.4, 0.4, 0.6]),
        pl.Series("improved", [True, True, False, True]),
        pl.Series("round_best_objective", [0.4, 0.4, 0.6, 0.6]),
        pl.lit("converged").alias("stop_reason"),
    )


def test_every_proposer_has_a_colour_of_its_own() -> None:
    trust_region = next(field.default for field in dataclasses.fields(TrustRegionProposer)
                        if field.name == "name")
    names = {*PROPOSERS, trust_region}
    assert names <= set(plots.PROPOSER_COLOURS)
    colours = [to_rgba(plots.PROPOSER_COLOURS[name]) for name in names]
    assert len(set(colours)) == len(names)


def test_the_convergence_chart_tells_each_proposer_apart_its_legend_beside_the_data() -> None:
    """lhs, tpe and the trust region: each its own colour (the trust region's was the
    default blue of lhs); the legend outside the axes, over no point."""
    fig = plots.optimisation_convergence(_two_round_history(), note="synthetic")
    (ax,) = fig.axes
    dots = {c.get_label(): to_rgba(c.get_facecolor()[0], alpha=1) for c in ax.collections}
    assert dots == {f"{p} proposal": to_rgba(plots.PROPOSER_COLOURS[p])
                    for p in ("lhs", "tpe", "trust_region")}
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    plots.close({"f": fig})


def test_search_progress_shows_the_rounds_improvements_and_where_configs_lie() -> None:
    history = _two_round_history()
    fig = plots.search_progress(history, note="synthetic")
    progress, *panels = fig.axes
    assert [ax.get_title().split(" (")[0] for ax in panels] == sorted(
        {c.weight_fn for c in CONFIGS})
    (line,) = progress.get_lines()
    assert list(line.get_ydata()) == [0.4, 0.6]  # the best at the end of rounds 0 and 1
    gains = {c.get_label(): c.get_offsets().tolist() for c in progress.collections}
    assert gains == {"improvement by trust_region": [[1, 0.6]]}  # after round 0
    sigmoid = next(ax for ax in panels if ax.get_title().startswith("sigmoid"))
    assert sigmoid.collections[0].get_offsets().tolist() == [
        [CONFIGS[3].target_vol, CONFIGS[3].vol_window_months]]
    assert len(sigmoid.collections) == 3  # its config, ringed (a new best), starred (the best)
    assert fig.get_figwidth() <= plots.WIDTH  # wider is cut off in the UI's dialog
    assert plots.png_bytes(fig).startswith(b"\x89PNG")
    plots.close({"f": fig})


def test_the_report_tells_the_search_round_by_round(inputs: ReportInputs) -> None:
    text = to_markdown(build_report(dataclasses.replace(inputs, history=_two_round_history())))
    (table,) = _tables(text, "Optimisation")
    assert table == [
        ["round", "configs", "proposed by", "best objective", "new bests", "new bests by"],
        ["0", "2", "lhs 2", "0.400", "2", "lhs 2"],
        ["1", "2", "tpe 1, trust_region 1", "0.600", "1", "trust_region 1"],
    ]


def test_pdf_has_a_title_page_and_renders(
    built: tuple[ReportInputs, pl.DataFrame], tmp_path: Path
) -> None:
    inputs, bands = built
    fig = plots.allocation_dynamics(bands, inputs.recommended, note="synthetic")
    png = plots.png_bytes(fig)
    plots.close({"f": fig})
    document = build_report(inputs)
    pdf = report_pdf(document, {"allocation_dynamics": png}, footer="dynalloc",
                     title_facts=["Recommended rule: x"])
    assert pdf.startswith(b"%PDF")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages >= 4  # title, decision and data, narrative and tables, the chart
    assert pdf == report_pdf(document, {"allocation_dynamics": png}, footer="dynalloc",
                             title_facts=["Recommended rule: x"])  # no timestamps
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: pages not rendered")
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "report.pdf"),
                    str(tmp_path / "page")], check=True, timeout=120)
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == pages
    assert all(p.stat().st_size > 1000 for p in rendered)


def test_the_charts_pdf_holds_each_pngs_pixels_on_a_page_of_its_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pictures = [rng.integers(0, 256, (40, 70, 3), dtype=np.uint8),
                rng.integers(0, 256, (25, 50, 3), dtype=np.uint8)]
    pngs = []
    for picture in pictures:
        buffer = io.BytesIO()
        Image.fromarray(picture).convert("RGBA").save(buffer, "png")
        pngs.append(buffer.getvalue())
    pdf = pdf_of_pages([chart_page(png) for png in pngs], dpi=100)
    assert pdf.startswith(b"%PDF") and pdf == pdf_of_pages(map(chart_page, pngs), dpi=100)
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert [(float(w), float(h)) for w, h in boxes] == [(50.4, 28.8), (36.0, 18.0)]  # px * 0.72
    streams = re.findall(rb"/Width (\d+) /Height (\d+) .*?/DecodeParms << /Predictor 15"
                         rb" /Colors 3 /BitsPerComponent 8 /Columns (\d+) >> /Length (\d+) >>"
                         rb"\nstream\n", pdf)
    assert [(int(w), int(h), int(c)) for w, h, c, _ in streams] == [(70, 40, 70), (50, 25, 50)]
    starts = [m.end() for m in re.finditer(rb"/Columns \d+ >> /Length \d+ >>\nstream\n", pdf)]
    for picture, start, (*_, length) in zip(pictures, starts, streams, strict=True):
        rows = zlib.decompress(pdf[start:start + int(length)])  # each row after a filter byte
        assert rows == b"".join(b"\0" + row.tobytes() for row in picture)
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", pdf)]
    assert all(pdf[o:].startswith(f"{i} 0 obj".encode()) for i, o in enumerate(offsets, 1))
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: pages not rendered")
    (tmp_path / "charts.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(tmp_path / "charts.pdf"),
                    str(tmp_path / "page")], check=True, timeout=60)
    rendered = [Image.open(p).size for p in sorted(tmp_path.glob("page-*.png"))]
    assert rendered == [(70, 40), (50, 25)]
    subprocess.run(["pdfimages", "-png", str(tmp_path / "charts.pdf"), str(tmp_path / "im")],
                   check=True, timeout=60)  # each page's image as a PDF reader decodes it
    decoded = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(tmp_path.glob("im-*"))]
    assert len(decoded) == len(pictures)
    for picture, image in zip(pictures, decoded, strict=True):
        assert np.array_equal(image, picture)


def test_each_evaluation_key_has_its_own_metadata(inputs: ReportInputs) -> None:
    for scenario in SCENARIOS:
        table = inputs.evaluations.filter(pl.col("scenario") == scenario)
        metadata = evaluation_metadata(table)
        assert metadata["dagster/row_count"] == len(CONFIGS)
        schema = metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == table.columns
        np.testing.assert_allclose(metadata["best_sharpe_mean"].value,
                                   table["sharpe_mean"].max(), rtol=1e-12)
        assert metadata["best_config_id"] == table.sort(
            "sharpe_mean", descending=True)["config_id"][0]
        assert metadata["meeting_objectives"] == (
            f"{int(table['meets_objectives'].sum())} of {len(CONFIGS)}")


def _live(inputs: ReportInputs) -> dict[str, pl.DataFrame]:
    """Live tables as historical_backtest, todays_allocation and market_regime write them."""
    rec_id = inputs.recommended["config_id"]
    backtest = pl.DataFrame([
        {"strategy": name, "config_id": rec_id if name == "recommended" else None,
         "period": period, "start": start, "end": "2018-11-30", "sharpe": sharpe,
         "ann_return": ret, "ann_vol": vol, "max_drawdown": dd, "turnover": 0.4}
        for name, period, start, sharpe, ret, vol, dd in [
            ("recommended", "full", "2001-01-31", 0.45, 0.051, 0.082, 0.21),
            ("60/40", "full", "2001-01-31", 0.38, 0.047, 0.096, 0.31),
            ("100% equity", "full", "2001-01-31", 0.27, 0.052, 0.151, 0.55),
            ("recommended", "last_year", "2017-11-30", -2.0, -0.03, 0.07, 0.08)]])
    trades = pl.DataFrame({
        "as_of": ["2018-11-30"] * 2, "config_id": [rec_id] * 2, "asset": ["equity", "bond"],
        "current_weight": [0.6, 0.4], "target_weight": [0.66, 0.34], "new_weight": [0.66, 0.34],
        "weight_change": [0.06, -0.06], "value_change": [0.06, -0.06],
        "units_change": [None, None], "cost": [120.0, 0.0], "nav": [1_000_000.0] * 2,
        "asset_label": ["equity", "cash"],
        "trade": ["buy equity"] * 2, "illustrative": [True] * 2,
        "illustrative_reason": ["the shipped sample's holdings are an illustrative portfolio"] * 2,
        "data_source": ["files market data"] * 2,
        "holdings_source": ["the shipped sample's holdings.csv"] * 2,
        "code_version": ["dynalloc 0.1.0, git abc"] * 2})
    regime = pl.DataFrame({"regime": ["bear", "base", "bull"], "distance": [0.5, 1.5, 2.5],
                           "nearest": [True, False, False],
                           "previous_regime": ["base"] * 3, "as_of": ["2018-11-30"] * 3})
    return {"backtest": backtest, "trades": trades, "regime": regime}


def test_the_report_carries_the_live_evidence(inputs: ReportInputs) -> None:
    cash = {**inputs.recommended, "defensive_leg": "cash", "defensive_leg_label": "cash"}
    report = dataclasses.replace(inputs, recommended=cash, data_source="files",
                                 **_live(inputs))
    text = to_markdown(build_report(report))
    assert "government bonds" not in text.split("## Narrative")[0]
    assert "equity 66.0%, cash 34.0%" in text
    assert "no bond index: the non-equity leg is cash" in text
    (table,) = _tables(text, "The rule on the market history")
    assert table[0] == ["strategy", "period", "ann. return", "ann. vol", "Sharpe",
                        "max drawdown", "turnover"]
    assert table[1] == ["recommended rule", "2001-01-31 to 2018-11-30", "5.1%", "8.2%", "0.45",
                        "21.0%", "40%"]
    assert [row[0] for row in table[1:]] == ["recommended rule", "60/40",
                                              "buy-and-hold (100% equity)", "recommended rule"]
    assert "real market history" in text.split("## The rule on the market history")[1]
    trades_part = text.split("## Trades to today's target")[1].split("\n## ")[0]
    assert "**Illustrative:** the shipped sample's holdings" in trades_part
    (trades,) = _tables(text, "Trades to today's target")
    # cost 120 on a NAV of 1,000,000: 0.012% of NAV
    assert trades[1] == ["equity", "60.0%", "66.0%", "66.0%", "+6.0 pp", "0.012%"]
    assert trades[2][0] == "cash"
    regime_part = text.split("## Today's regime and its checks")[1].split("\n## ")[0]
    assert "most like the **Bear market** regime" in regime_part  # named as every table does
    assert "changed from Base case (a warning)" in regime_part
    regimes = _tables(text, "Today's regime and its checks")[0]
    assert [row[0] for row in regimes[1:]] == [
        scenario_label(r) for r in report.regime.sort("distance")["regime"]]
    # last 12 months' Sharpe -2.00 against the simulated p5 of the rule in bear
    p5 = inputs.evaluations.filter((pl.col("config_id") == inputs.recommended["config_id"])
                                   & (pl.col("scenario") == "bear"))["sharpe_p5"][0]
    verdict = "passes" if -2.0 >= p5 else "below it (a warning)"
    assert (f"Sharpe -2.00 against the simulated 5th percentile {p5:.2f} in Bear market:"
            f" {verdict}") in regime_part


def test_the_run_config_line_of_a_pipeline_run_with_the_defaults(inputs: ReportInputs) -> None:
    text = to_markdown(build_report(dataclasses.replace(inputs, run_config={})))
    assert "Run config: the defaults (a pipeline run with no overrides)." in text
    text = to_markdown(build_report(dataclasses.replace(inputs, run_config=None)))
    assert "materialized outside a pipeline run" in text


def test_an_optimum_at_the_edge_is_reported(inputs: ReportInputs) -> None:
    edge = "target_vol 0.05 at the lower bound 0.05 of [0.05, 0.2]"
    history = inputs.history.with_columns(pl.lit(edge).alias("optimum_at_edge"))
    text = to_markdown(build_report(dataclasses.replace(inputs, history=history)))
    assert f"**Optimum at the edge of the search:** {edge}." in text
    inside = inputs.history.with_columns(pl.lit(None, dtype=pl.String).alias("optimum_at_edge"))
    assert "Optimum at the edge" not in to_markdown(
        build_report(dataclasses.replace(inputs, history=inside)))


def test_a_narrative_with_dollar_amounts_is_set_as_text(
    built: tuple[ReportInputs, pl.DataFrame],
) -> None:
    """A line with two dollar amounts is a mathtext formula to matplotlib: "$5.2m (down
    10% ...) to $4.1m" does not parse (a ValueError ended the report stage); the PDF sets
    it as written."""
    inputs, bands = built
    fig = plots.allocation_dynamics(bands, inputs.recommended, note="synthetic")
    png = plots.png_bytes(fig)
    plots.close({"f": fig})
    narrative = {"written_by": "bedrock", "narrative": "## Summary\n\nTrading costs fell"
                 " from $5.2m (down 10% on the year) to $4.1m.\n\n- #2 cost: $0.3m vs $0.2m"
                 "\n- beyond Latin-1: \u20ac0.1m \u2265 \u03b7\u00b2 \u2014 \u2713"}
    document = build_report(dataclasses.replace(inputs, narrative=narrative))
    pdf = report_pdf(document, {"allocation_dynamics": png}, footer="costs in $ (USD)",
                     title_facts=["Fees: $1 (#1) & $2"])
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: text not extracted")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                          check=True, timeout=60).stdout.decode("utf-8")
    assert "from $5.2m (down 10% on the year) to $4.1m" in " ".join(text.split())
    assert "\u20ac0.1m \u2265 \u03b7\u00b2 \u2014 \u2713" in text
    assert "Fees: $1 (#1) & $2" in text


def test_recommended_rows_are_highlighted_in_the_pdf_tables_across_page_breaks(
        inputs: ReportInputs, monkeypatch: pytest.MonkeyPatch) -> None:
    table = benchmark_table(inputs)
    # the recommended rule's row comes first in each scenario's group of three
    assert [table.rows[i][1] for i in table.highlight] == ["recommended rule"] * len(SCENARIOS)
    assert leaderboard_table(inputs.leaderboard).highlight == (0,)

    # what the PDF writer is asked to draw: filled boxes (page, box, colour) and texts
    boxes: list[tuple[int, tuple[float, float, float, float], tuple[float, ...]]] = []
    texts: list[tuple[int, float, float, str]] = []
    rect, multi_cell, cell = FPDF.rect, FPDF.multi_cell, FPDF.cell

    def spy_rect(self: FPDF, x: float, y: float, w: float, h: float, style=None, **kw):
        if style == "DF":
            boxes.append((self.page, (x, y, x + w, y + h), tuple(self.fill_color.colors)))
        return rect(self, x, y, w, h, style, **kw)

    dry_runs = []  # a dry run (measuring) calls multi_cell again, drawing nothing

    def spy_cell(self: FPDF, w: float, h: float | None = None, text: str = "", **kw):
        if kw.get("dry_run"):
            dry_runs.append(text)
            try:
                return multi_cell(self, w, h, text, **kw)
            finally:
                dry_runs.pop()
        if not dry_runs:
            texts.append((self.page, self.get_x(), self.get_y(), text))
        dry_runs.append(None)  # what multi_cell draws through cell is drawn once
        try:
            return multi_cell(self, w, h, text, **kw)
        finally:
            dry_runs.pop()

    def spy_one_line(self: FPDF, w: float | None = None, h: float | None = None,
                     text: str = "", **kw):
        if not dry_runs and not self.in_footer:
            texts.append((self.page, self.get_x(), self.get_y(), text))
        return cell(self, w, h, text, **kw)

    monkeypatch.setattr(FPDF, "rect", spy_rect)
    monkeypatch.setattr(FPDF, "multi_cell", spy_cell)
    monkeypatch.setattr(FPDF, "cell", spy_one_line)
    long = Table(["n", "x"], [[str(i), "x"] for i in range(120)], highlight=(0, 57, 119))
    pages = _Pages(footer="f")
    pages.table(long)
    assert pages.number >= 2  # the table runs over a page break
    highlight = tuple(round(c / 255, 3) for c in _rgb(plots.RECOMMENDED_ROW))

    def on(page: int, x: float, y: float, colour: tuple[float, ...]) -> bool:
        return any(p == page and left <= x < right and top <= y < bottom
                   and tuple(round(c, 3) for c in fill) == colour
                   for p, (left, top, right, bottom), fill in boxes)

    first = [(page, x, y, text) for page, x, y, text in texts if x == MARGIN_X]
    marked = [text for page, x, y, text in first if on(page, x + 1, y + 1, highlight)]
    assert marked == ["0", "57", "119"]
    # the header, bold on grey, opens every page the table runs over
    grey = tuple(round(c / 255, 3) for c in HEADER_GREY)
    headers = [page for page, x, y, text in first if text == "n" and on(page, x + 1, y + 1, grey)]
    assert headers == list(range(1, pages.number + 1))
    assert [text for _, _, _, text in first if text not in ("n",)] == [str(i) for i in range(120)]

@pytest.mark.parametrize("bold", [False, True])
def test_a_rows_lines_without_the_line_breaker_are_the_line_breakers(bold: bool) -> None:
    """A row taken as one line by its string widths wraps to the same number of lines as
    the line breaker says, for cells just narrower and just wider than their text."""
    pages = _Pages(footer="f")
    pages.new_page()
    pdf = pages.pdf
    texts = ["", "x", "60/40", "linear, target 10.0%, 12m window", "a b c d e f g h",
             "Wide\nheader", "\u2022 risk aversion 2.50; equities us_large, defensive gilts"]
    size = 7.0
    for text in texts:
        pdf.set_font("sans", "B" if bold else "", size)
        natural = pdf.get_string_width(text) + 2 * pdf.c_margin
        for width in (natural - 1.0, natural - 0.02, natural - 1e-9, natural, natural + 0.02,
                      natural + 1.0, natural / 2):
            if width < 2 * pdf.c_margin + 8:  # no room for a character
                continue
            cells, widths = [text, "y"], [width, 40.0]
            breaker = max(len(pdf.multi_cell(w, size, c, dry_run=True, output="LINES"))
                          for c, w in zip(cells, widths, strict=True))
            assert pages._lines(cells, widths, size, bold=bold) == breaker, (text, width)


@pytest.mark.skipif(shutil.which("pdfimages") is None,
                    reason="pdfimages (poppler-utils) is not installed")
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_the_report_pdf_places_each_charts_own_pixels(tmp_path: Path, mode: str) -> None:
    """Each figure of the document shows its own chart's pixels, in the document's order
    (not the charts' order): an RGB PNG's image data placed as it is, its rows filtered as
    Pillow filters them (read with PNG predictors), any other PNG decoded and compressed
    again as charts.pdf compresses its pages."""
    rng = np.random.default_rng(5)
    pictures = {name: rng.integers(0, 256, (30 + 10 * i, 60, 3), dtype=np.uint8)
                for i, name in enumerate(("first", "second", "third"))}
    pngs = {}
    for name, picture in pictures.items():
        buffer = io.BytesIO()
        Image.fromarray(picture).convert(mode).save(buffer, "png")
        pngs[name] = buffer.getvalue()
    order = ["third", "first", "second"]
    document = ReportDocument("t", "s", [Section("Charts", [Figure(name, f"caption {name}")
                                                            for name in order])])
    pdf = report_pdf(document, pngs, footer="f", title_facts=[])
    for name, picture in pictures.items():
        placed = (_idat(pngs[name]) if mode == "RGB"
                  else compressed_scanlines(picture))
        assert placed in pdf, name
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run(["pdfimages", "-png", str(tmp_path / "report.pdf"), str(tmp_path / "im")],
                   check=True, timeout=60)
    placed = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(tmp_path.glob("im-*"))]
    assert len(placed) == len(order)
    for name, image in zip(order, placed, strict=True):
        assert np.array_equal(image, pictures[name]), name


def _idat(png: bytes) -> bytes:
    """A small PNG's one IDAT chunk's data, found by its type."""
    at = png.index(b"IDAT")
    return png[at + 4:at + 4 + int.from_bytes(png[at - 4:at], "big")]


def test_the_report_pdf_embeds_a_chart_as_fpdf2_embeds_its_picture(
        built: tuple[ReportInputs, pl.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """A chart's PNG data handed to fpdf2 as it is makes the PDF fpdf2 makes of the decoded
    picture (its own parsing, at the charts' zlib level), byte for byte."""
    inputs, bands = built
    fig = plots.allocation_dynamics(bands, inputs.recommended, note="synthetic")
    png = plots.png_bytes(fig)
    plots.close({"f": fig})
    document = build_report(inputs)
    twice = ReportDocument("t", "s", [Section("Charts", [
        Figure("allocation_dynamics", "once"), Figure("allocation_dynamics", "twice")])])
    ours = [report_pdf(doc, {"allocation_dynamics": png}, footer="f", title_facts=["x"])
            for doc in (document, twice)]
    assert ours[1].count(b"/Subtype /Image") == 1  # a chart placed twice is stored once
    monkeypatch.setattr(fpdf.image_parsing.SETTINGS, "compression_level", COMPRESS_LEVEL)
    monkeypatch.setattr(_Pages, "_cached", lambda self, page: Image.open(io.BytesIO(png)))
    assert ours == [report_pdf(doc, {"allocation_dynamics": png}, footer="f",
                               title_facts=["x"]) for doc in (document, twice)]
