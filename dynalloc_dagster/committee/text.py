"""The investment-committee report as a document: sections of paragraphs, tables, code and
figures, built once from the tables it reports and rendered to markdown here and to PDF
by :mod:`dynalloc_dagster.committee.pdf`.

Order: the decision first (the rule in words, today's weights with their as-of date, what
changed since the previous recommendation, whether it meets the objectives), then the
data, run config and code version, the narrative, the rule against the static benchmarks
in every scenario, the leaderboard, the optimisation, the cost sensitivity, the
objectives and every chart. Every figure is formatted from the tables passed in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import yaml

from dynalloc_dagster.committee.decision import ASSET_WEIGHTS, weights_text
from dynalloc_dagster.committee.plots import rule_label
from dynalloc_dagster.partitions import in_scenario_order, scenario_label
from engine.analysis.scoring import PENALTIES
from engine.market.legs import leg_label
from engine.objectives import InvestmentObjectives
from engine.optimisation.landscape import search_rounds

TITLE = "dynalloc: volatility-targeting review"
LEADERBOARD_ROWS = 10
OBJECTIVE_NAMES = {
    "target_vol": "mandate target volatility", "vol_tolerance": "vol-targeting tolerance",
    "min_sharpe": "minimum Sharpe", "max_drawdown": "maximum drawdown",
    "max_var95": "maximum monthly VaR 95%", "max_cvar95": "maximum monthly CVaR 95%",
    "max_cost_bps": "cost budget (bp a year)", "robustness_threshold": "robustness threshold",
    "assumed_tc_bps": "assumed transaction cost (bp per unit traded)",
    "penalty_weight": "penalty weight of the objective",
}
_PERCENT_OBJECTIVES = {"target_vol", "vol_tolerance", "max_drawdown", "max_var95",
                       "max_cvar95", "robustness_threshold"}


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    highlight: tuple[int, ...] = ()
    """Indices of ``rows`` that are the recommended rule's (drawn highlighted)."""


@dataclass(frozen=True)
class Figure:
    name: str  # the chart's file stem, e.g. "risk_return" (file risk_return.png)
    caption: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Markdown:
    """Markdown written elsewhere (the narrative), rendered as is."""

    text: str


Block = str | Table | Figure | Code | Markdown


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class ReportDocument:
    title: str
    subtitle: str
    sections: list[Section]

    def section(self, title: str) -> Section:
        return next(s for s in self.sections if s.title == title)


@dataclass(frozen=True)
class ReportInputs:
    """What the report is written from: each a table of the asset graph (or a resource's
    setting), passed in whole so every figure can be traced to its table."""

    objectives: InvestmentObjectives
    narrative: dict[str, Any]  # bedrock_report's row: narrative, written_by
    recommended: dict[str, Any]  # recommended_allocation's row
    leaderboard: pl.DataFrame
    evaluations: pl.DataFrame
    history: pl.DataFrame
    costs: pl.DataFrame
    benchmarks: pl.DataFrame
    charts: pl.DataFrame  # chart, file, caption
    data_source: str  # the market_source resource's kind
    run_config: dict[str, Any] | None  # the pipeline run config, None outside a pipeline
    code_version: str
    backtest: pl.DataFrame | None = None  # historical_backtest: rule vs 60/40, buy-and-hold
    trades: pl.DataFrame | None = None  # todays_allocation: the trades to target
    regime: pl.DataFrame | None = None  # market_regime: today's nearest regime


def data_label(kind: str) -> str:
    """The data source in words; synthetic data says so."""
    if kind == "synthetic":
        return "synthetic market data: a seeded simulation, not market history"
    return f"{kind} market data"


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def decision_section(inputs: ReportInputs) -> Section:
    """The decision: the mandate status first, then the rule, today's weights, what
    changed, and whether the optimum sits on the edge of the searched ranges."""
    objectives, rec = inputs.objectives, inputs.recommended
    ranked = inputs.leaderboard.sort("rank")
    best = ranked.row(0, named=True)
    threshold = objectives.robustness_threshold
    n_robust = int(ranked["robust"].sum())
    equity = rec["equity_weight_today"]
    blocks: list[Block] = [
        f"**Mandate status:** {rec['mandate_status']}",
        f"**Recommended rule:** {rule_label(best)} (config `{best['config_id']}`), the top"
        f" of {ranked.height} configs ranked at {objectives.assumed_tc_bps:g} bp per unit"
        " traded.",
        f"**Today's target weights** (as of {rec['as_of']}):"
        f" {weights_text(equity, rec['defensive_leg'], rec.get(ASSET_WEIGHTS))}; computed on"
        f" {data_label(inputs.data_source)}. {assets_sentence(rec)}",
        "**Since the previous recommendation:** " + change_text(rec),
    ]
    edge = inputs.history["optimum_at_edge"][-1] if "optimum_at_edge" in \
        inputs.history.columns else None
    if edge:
        blocks.append(f"**Optimum at the edge of the search:** {edge}. The best rule may lie"
                      " beyond the range searched; widen it in the search space to look.")
    robust = (f"{n_robust} of {ranked.height} configs are robust."
              if n_robust else f"None of the {ranked.height} configs evaluated is robust, the"
              " recommended one included: the recommendation is the best compromise found,"
              " not a rule that holds up in every regime.")
    blocks.append(
        f"**Robustness:** in its worst scenario ({scenario_label(best['worst_scenario'])})"
        f" the rule keeps {_pct(best['robustness'])} of the best mean Sharpe among the rules"
        f" within the mandate's vol band there; robust means at least {threshold:.0%} in every"
        f" scenario. {robust}")
    return Section("Decision", blocks)


def assets_sentence(rec: dict[str, Any]) -> str:
    """What the assets are and where their data comes from: the non-equity leg of the
    two-asset study (:func:`leg_sentence`), or every asset of a portfolio."""
    if not rec.get(ASSET_WEIGHTS):
        return leg_sentence(rec["defensive_leg"])
    return ("The assets, in the scenarios and live: "
            + "; ".join(w["label"] for w in rec[ASSET_WEIGHTS]) + ".")


def leg_sentence(leg: str) -> str:
    """What the non-equity leg is, in simulation and live."""
    if leg == "bond":
        return ("The non-equity leg is the government bond index, in the scenarios and"
                " live.")
    return ("The market data has no bond index: the non-equity leg is cash at the"
            " risk-free rate, in the scenarios and live.")


def change_text(rec: dict[str, Any]) -> str:
    """What changed against the previous materialization of recommended_allocation."""
    previous_id = rec.get("previous_config_id")
    if not previous_id:
        return "none: this is the first recommendation recorded on this Dagster instance."
    previous_weight = rec["previous_equity_weight"]
    move = rec["equity_weight_today"] - previous_weight
    rule = ("the same rule" if previous_id == rec["config_id"]
            else f"a new rule (previously config `{previous_id}`: {rec['previous_rule']})")
    return (f"{rule}; equity weight {previous_weight:.1%} as of {rec['previous_as_of']} ->"
            f" {rec['equity_weight_today']:.1%} as of {rec['as_of']}"
            f" ({move * 100:+.1f} percentage points).")


def data_section(inputs: ReportInputs) -> Section:
    """Where the numbers come from: data, simulation, search, objectives, code."""
    history, evaluations = inputs.history, inputs.evaluations
    by_proposer = history.group_by("proposer").len().sort("proposer")
    facts = [
        ["market data", data_label(inputs.data_source)],
        ["non-equity leg", leg_label(inputs.recommended["defensive_leg"])],
        ["as of", str(inputs.recommended["as_of"])],
        ["scenarios", ", ".join(scenario_label(s)
                                for s in in_scenario_order(evaluations["scenario"]))],
        ["paths per scenario", str(int(evaluations["n_paths"].max()))],
        ["configs evaluated", f"{history.height} in {history['round'].n_unique()} rounds ("
         + ", ".join(f"{n} by {p}" for p, n in by_proposer.iter_rows()) + ")"],
        ["stop reason", str(history["stop_reason"][-1] or "not stopped")],
        ["code version", inputs.code_version],
    ]
    blocks: list[Block] = [Table(["", ""], facts)]
    if inputs.run_config:
        blocks += ["Run config of the pipeline run (every stage ran with it):",
                   Code(yaml.safe_dump(inputs.run_config, sort_keys=True).strip())]
    elif inputs.run_config is not None:
        blocks.append("Run config: the defaults (a pipeline run with no overrides).")
    else:
        blocks.append("Run config: the defaults (materialized outside a pipeline run).")
    blocks += ["Investment objectives the configs are judged by:", objectives_table(inputs)]
    return Section("Data, run config and code version", blocks)


def objectives_table(inputs: ReportInputs) -> Table:
    rows = []
    for name, value in inputs.objectives.to_dict().items():
        text = f"{value:.0%}" if name in _PERCENT_OBJECTIVES else f"{value:g}"
        rows.append([OBJECTIVE_NAMES.get(name, name), text])
    return Table(["objective", "value"], rows)


def benchmark_table(inputs: ReportInputs) -> Table:
    """The recommended rule beside the static benchmarks, scenario by scenario."""
    rec_id = inputs.leaderboard.sort("rank")["config_id"][0]
    rule = inputs.evaluations.filter(pl.col("config_id") == rec_id).with_columns(
        pl.lit("recommended rule").alias("benchmark"))
    stacked = pl.concat([rule.select(*BENCHMARK_COLUMNS),
                         inputs.benchmarks.select(*BENCHMARK_COLUMNS)])
    order = ["recommended rule", *inputs.benchmarks["benchmark"].unique(maintain_order=True)]
    rows = []
    for scenario in in_scenario_order(stacked["scenario"]):
        for name in order:
            (r,) = stacked.filter((pl.col("scenario") == scenario)
                                  & (pl.col("benchmark") == name)).iter_rows(named=True)
            rows.append([scenario_label(scenario), name, _num(r["sharpe_mean"]),
                         _pct(r["ann_return_mean"]),
                         _pct(r["ann_vol_mean"]), _pct(r["max_drawdown_median"]),
                         _pct(r["avg_equity_weight_mean"], 0),
                         "yes" if r["meets_objectives"] else "no"])
    return Table(["scenario", "portfolio", "mean Sharpe", "ann. return", "ann. vol",
                  "max drawdown (median)",
                  "avg equity sleeve" if inputs.recommended.get(ASSET_WEIGHTS) else "avg equity",
                  "meets objectives"], rows,
                 highlight=tuple(range(0, len(rows), len(order))))


BENCHMARK_COLUMNS = ("benchmark", "scenario", "sharpe_mean", "ann_return_mean", "ann_vol_mean",
                     "max_drawdown_median", "avg_equity_weight_mean", "meets_objectives")


def leaderboard_table(leaderboard: pl.DataFrame, rows: int = LEADERBOARD_ROWS) -> Table:
    """The distinct alternatives: the top configs that are not near-duplicates of a
    better one, plus the best config of each weight function, with their parameters in
    words (risk aversion only where used), the penalty of each limit and the scenarios
    where they meet the mandate."""
    ranked = leaderboard.sort("rank")
    distinct = ranked.filter(pl.col("near_duplicate_of").is_null())
    shown = set(distinct.head(rows)["config_id"]) | set(
        ranked.filter(pl.col("best_of_weight_fn"))["config_id"])
    body = []
    for r in ranked.filter(pl.col("config_id").is_in(shown)).iter_rows(named=True):
        body.append([str(r["rank"]), r["weight_fn"].replace("_", " "), _pct(r["target_vol"]),
                     f"{r['vol_window_months']} months",
                     "not used" if r["risk_aversion"] is None else f"{r['risk_aversion']:.2f}",
                     _num(r["objective"], 3), _pct(r["robustness"]),
                     *(_num(r[f"penalty_{name}"], 2) for name in PENALTIES),
                     f"{r['n_scenarios_meeting']} of {r['n_scenarios']}",
                     scenario_label(r["worst_scenario"]) if r["worst_scenario"] else ""])
    return Table(["rank", "weight function", "target vol", "vol window", "risk aversion",
                  "objective", "robustness", *(f"penalty {PENALTY_NAMES[n]}" for n in PENALTIES),
                  "meets mandate", "worst scenario"], body,
                 highlight=(0,) if body else ())


PENALTY_NAMES = {"vol": "vol", "drawdown": "drawdown", "var95": "VaR95", "cvar95": "CVaR95",
                 "cost": "cost"}


def cost_table(inputs: ReportInputs) -> Table:
    costs, ranked = inputs.costs, inputs.leaderboard.sort("rank")
    worst = costs.group_by("config_id", "tc_bps").agg(pl.col("worst_sharpe_mean").first())
    costs_bps = sorted(worst["tc_bps"].unique())
    rows = []
    for row in ranked.filter(pl.col("config_id").is_in(set(costs["config_id"]))).iter_rows(
            named=True):
        values = dict(worst.filter(pl.col("config_id") == row["config_id"])
                      .select("tc_bps", "worst_sharpe_mean").iter_rows())
        rows.append([f"#{row['rank']} {rule_label(row)}",
                     *(_num(values[c]) for c in costs_bps)])
    return Table(["rule", *(f"{c:g} bp" for c in costs_bps)], rows)


def rounds_table(history: pl.DataFrame) -> Table:
    """The search round by round: configs and their proposers, the best objective at the
    end of the round, and which proposers found the improvements."""
    rows = [[str(r["round"]), str(r["configs"]), r["proposers"], _num(r["best_objective"], 3),
             str(r["improvements"]), r["improved_by"] or "-"]
            for r in search_rounds(history).iter_rows(named=True)]
    return Table(["round", "configs", "proposed by", "best objective", "new bests",
                  "new bests by"], rows)


def build_report(inputs: ReportInputs) -> ReportDocument:
    """The whole report as a document."""
    history = inputs.history
    by_proposer = history.group_by("proposer").len().sort("proposer")
    sections = [
        decision_section(inputs),
        data_section(inputs),
        Section("Narrative", [f"*Written by {inputs.narrative['written_by']}.*",
                              Markdown(inputs.narrative["narrative"].strip())]),
        Section("The recommended rule against static benchmarks", [
            "Mean Sharpe, annualised return and volatility are means across paths; the"
            " drawdown is the median path's. The benchmarks hold a constant equity weight,"
            " rebalanced monthly at the same cost, on the same paths.",
            benchmark_table(inputs)]),
        Section("Leaderboard: distinct alternatives", [
            "Ranked by objective (robustness minus penalties for missed limits); robustness"
            " is the share of the best in-band mean Sharpe a config keeps in its worst"
            " scenario; each penalty is the worst scenario's miss of that limit as a"
            " fraction of the limit. Near-duplicates of a better config (same weight"
            " function, target within 0.5 points, window within a month, risk aversion"
            " within 0.25) are left out; the best config of every weight function is shown."
            " Risk aversion applies to the linear and sigmoid rules only.",
            leaderboard_table(inputs.leaderboard)]),
        Section("Optimisation", [
            f"{history.height} configs in {history['round'].n_unique()} rounds"
            f" ({', '.join(f'{n} by {p}' for p, n in by_proposer.iter_rows())}); stopped:"
            f" {history['stop_reason'][-1] or 'not stopped'}; best objective"
            f" {history['best_objective_so_far'][-1]:.3f}. Round by round (objectives"
            " rescored against every config evaluated):", rounds_table(history)]),
        *live_sections(inputs),
        Section(f"Cost sensitivity (worst-scenario mean Sharpe; ranked at"
                f" {inputs.objectives.assumed_tc_bps:g} bp)", [cost_table(inputs)]),
        Section("Charts", [Figure(r["chart"], r["caption"])
                           for r in inputs.charts.iter_rows(named=True)]),
    ]
    rec = inputs.recommended
    today = weights_text(rec["equity_weight_today"], rec["defensive_leg"], rec.get(ASSET_WEIGHTS))
    subtitle = f"As of {rec['as_of']}: {today}. {data_label(inputs.data_source).capitalize()}."
    return ReportDocument(TITLE, subtitle, sections)


BACKTEST_STRATEGIES = ("recommended", "60/40", "100% equity")
"""The live evidence compares the recommended rule with 60/40 and buy-and-hold."""
BACKTEST_NAMES = {"recommended": "recommended rule", "60/40": "60/40",
                  "100% equity": "buy-and-hold (100% equity)"}


def live_sections(inputs: ReportInputs) -> list[Section]:
    """The live evidence: the rule on the market history against 60/40 and buy-and-hold,
    the trades to today's target, and the regime today looks like with its checks.
    Empty when the report is built without the live tables."""
    sections = []
    if inputs.backtest is not None:
        sections.append(Section("The rule on the market history", [
            backtest_caveat(inputs),
            backtest_table(inputs.backtest)]))
    if inputs.trades is not None:
        sections.append(Section("Trades to today's target", [
            trades_caveat(inputs.trades), trades_table(inputs.trades)]))
    if inputs.regime is not None and inputs.regime.height:
        sections.append(Section("Today's regime and its checks", regime_blocks(inputs)))
    return sections


def backtest_caveat(inputs: ReportInputs) -> str:
    real = inputs.data_source != "synthetic"
    kind = ("real market history" if real
            else "synthetic data (a seeded simulation, not market history)")
    return (f"Monthly rebalancing at {inputs.objectives.assumed_tc_bps:g} bp per unit traded"
            f" on {kind}; every strategy starts on the same month. The non-equity leg is"
            f" {leg_label(inputs.recommended['defensive_leg'])}. Return, vol and drawdown in"
            " percent; turnover is the yearly sum of equity weight changes.")


def backtest_table(backtest: pl.DataFrame) -> Table:
    rows = []
    for period in ("full", "last_year"):
        for name in BACKTEST_STRATEGIES:
            found = backtest.filter((pl.col("strategy") == name) & (pl.col("period") == period))
            if found.height == 0:
                continue
            r = found.row(0, named=True)
            rows.append([BACKTEST_NAMES[name], f"{r['start']} to {r['end']}",
                         _pct(r["ann_return"]), _pct(r["ann_vol"]), _num(r["sharpe"]),
                         _pct(r["max_drawdown"]), _pct(r["turnover"], 0)])
    return Table(["strategy", "period", "ann. return", "ann. vol", "Sharpe", "max drawdown",
                  "turnover"], rows)


def trades_caveat(trades: pl.DataFrame) -> str:
    row = trades.row(0, named=True)
    text = (f"As of {row['as_of']}, holdings from {row['holdings_source']}, data from"
            f" {row['data_source']}.")
    if row["illustrative"]:
        text += f" **Illustrative:** {row['illustrative_reason']}; not an order to execute."
    return text


def trades_table(trades: pl.DataFrame) -> Table:
    rows = [[r["asset_label"], _pct(r["current_weight"]), _pct(r["target_weight"]),
             _pct(r["new_weight"]), f"{r['weight_change'] * 100:+.1f} pp",
             _pct(r["cost"] / r["nav"], 3)] for r in trades.iter_rows(named=True)]
    return Table(["asset", "current", "target", "after trading", "change",
                  "cost (share of NAV)"], rows)


def regime_blocks(inputs: ReportInputs) -> list[Block]:
    regime = inputs.regime
    nearest = regime.filter(pl.col("nearest")).row(0, named=True)
    blocks: list[Block] = [
        f"The last year of {data_label(inputs.data_source)} (as of {nearest['as_of']}) looks"
        f" most like the **{scenario_label(nearest['regime'])}** regime (standardised distance"
        f" {nearest['distance']:.2f}).",
        Table(["regime", "distance", "nearest"],
              [[scenario_label(r["regime"]), f"{r['distance']:.2f}",
                "yes" if r["nearest"] else ""]
               for r in regime.sort("distance").iter_rows(named=True)]),
    ]
    previous = nearest.get("previous_regime")
    shift = ("first classification on this instance" if not previous
             else "unchanged" if previous == nearest["regime"]
             else f"changed from {scenario_label(previous)} (a warning)")
    checks = [["regime shift", shift]]
    if inputs.backtest is not None:
        recent = inputs.backtest.filter((pl.col("strategy") == "recommended")
                                        & (pl.col("period") == "last_year"))
        expected = inputs.evaluations.filter(
            (pl.col("config_id") == inputs.recommended["config_id"])
            & (pl.col("scenario") == nearest["regime"]))
        if recent.height and expected.height:
            realised, p5 = float(recent["sharpe"][0]), float(expected["sharpe_p5"][0])
            verdict = "passes" if realised >= p5 else "below it (a warning)"
            checks.append(["rule underperformance",
                           f"last 12 months' Sharpe {realised:.2f} against the simulated 5th"
                           f" percentile {p5:.2f} in {scenario_label(nearest['regime'])}:"
                           f" {verdict}"])
    blocks.append(Table(["check", "result"], checks))
    return blocks


def to_markdown(document: ReportDocument, *, image_src: dict[str, str] | None = None) -> str:
    """The document as markdown; figures link ``<name>.png`` (the files beside the
    report) unless ``image_src`` maps a figure's name to another source (a data URI)."""
    lines = [f"# {document.title}", "", f"*{document.subtitle}*", ""]
    for section in document.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _markdown_block(block, image_src or {})
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_block(block: Block, image_src: dict[str, str]) -> list[str]:
    match block:
        case str():
            return [block]
        case Markdown():
            # a level below the report's sections: its '## Summary' becomes '### Summary'
            return ["#" + line if line.startswith("#") else line
                    for line in block.text.splitlines()]
        case Code():
            return ["```yaml", block.text, "```"]
        case Table():
            return markdown_table(block.header, block.rows)
        case Figure():
            src = image_src.get(block.name, f"{block.name}.png")
            return [f"![{block.name}]({src})", "", f"*{block.caption}*"]
    raise TypeError(f"unknown report block {block!r}")


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    return ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)]


def run_config_from_tag(tag: str | None) -> dict[str, Any] | None:
    """The pipeline run config carried by a run's tag (JSON), or None."""
    return json.loads(tag) if tag else None
