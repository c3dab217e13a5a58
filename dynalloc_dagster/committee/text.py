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

from dynalloc_dagster.committee.plots import rule_label
from dynalloc_dagster.partitions import in_scenario_order, scenario_label
from engine.analysis.scoring import unmet_objectives
from engine.objectives import OBJECTIVE_CHECKS, InvestmentObjectives
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
    """The decision: rule, today's weights, what changed, whether it meets the objectives."""
    objectives, rec = inputs.objectives, inputs.recommended
    ranked = inputs.leaderboard.sort("rank")
    best = ranked.row(0, named=True)
    threshold = objectives.robustness_threshold
    n_robust = int(ranked["robust"].sum())
    equity = rec["equity_weight_today"]
    blocks: list[Block] = [
        f"**Recommended rule:** {rule_label(best)} (config `{best['config_id']}`), the top"
        f" of {ranked.height} configs ranked at {objectives.assumed_tc_bps:g} bp per unit"
        " traded.",
        f"**Today's target weights** (as of {rec['as_of']}): equity {equity:.1%}, government"
        f" bonds {1.0 - equity:.1%}; computed on {data_label(inputs.data_source)}.",
        "**Since the previous recommendation:** " + change_text(rec),
    ]
    ids = set(inputs.history["config_id"])
    unmet = unmet_objectives(inputs.evaluations.filter(pl.col("config_id").is_in(ids)),
                             objectives)
    rows = inputs.evaluations.filter(pl.col("config_id") == best["config_id"])
    meets = int(rows["meets_objectives"].sum())
    verdict = (f"**Objectives:** the rule meets every objective in {meets} of {rows.height}"
               " scenarios")
    verdict += "." if meets == rows.height else (
        f"; it misses at least one in {rows.height - meets} (see the benchmark table below).")
    if unmet:
        verdict += (" No config meets these in every scenario: "
                    + ", ".join(OBJECTIVE_CHECKS[c] for c in unmet) + ".")
    blocks.append(verdict)
    robust = (f"{n_robust} of {ranked.height} configs are robust."
              if n_robust else f"None of the {ranked.height} configs evaluated is robust, the"
              " recommended one included: the recommendation is the best compromise found,"
              " not a rule that holds up in every regime.")
    blocks.append(
        f"**Robustness:** in its worst scenario ({best['worst_scenario']}) the rule keeps"
        f" {_pct(best['robustness'])} of the best mean Sharpe found there; robust means at"
        f" least {threshold:.0%} in every scenario. {robust}")
    return Section("Decision", blocks)


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
                  "max drawdown (median)", "avg equity", "meets objectives"], rows,
                 highlight=tuple(range(0, len(rows), len(order))))


BENCHMARK_COLUMNS = ("benchmark", "scenario", "sharpe_mean", "ann_return_mean", "ann_vol_mean",
                     "max_drawdown_median", "avg_equity_weight_mean", "meets_objectives")


def leaderboard_table(leaderboard: pl.DataFrame, rows: int = LEADERBOARD_ROWS) -> Table:
    """The top configs with their parameters in words; risk aversion only where used."""
    body = []
    for r in leaderboard.sort("rank").head(rows).iter_rows(named=True):
        body.append([str(r["rank"]), r["weight_fn"].replace("_", " "), _pct(r["target_vol"]),
                     f"{r['vol_window_months']} months",
                     "not used" if r["risk_aversion"] is None else f"{r['risk_aversion']:.2f}",
                     _num(r["objective"], 3), _pct(r["robustness"]),
                     scenario_label(r["worst_scenario"]) if r["worst_scenario"] else "",
                     "yes" if r["robust"] else "no"])
    return Table(["rank", "weight function", "target vol", "vol window", "risk aversion",
                  "objective", "robustness", "worst scenario", "robust"], body,
                 highlight=(0,) if body else ())


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
        Section(f"Leaderboard (top {min(LEADERBOARD_ROWS, inputs.leaderboard.height)})", [
            "Ranked by objective (robustness minus penalties for missed objectives);"
            " robustness is the share of the best mean Sharpe a config keeps in its worst"
            " scenario. Risk aversion applies to the linear and sigmoid rules only.",
            leaderboard_table(inputs.leaderboard)]),
        Section("Optimisation", [
            f"{history.height} configs in {history['round'].n_unique()} rounds"
            f" ({', '.join(f'{n} by {p}' for p, n in by_proposer.iter_rows())}); stopped:"
            f" {history['stop_reason'][-1] or 'not stopped'}; best objective"
            f" {history['best_objective_so_far'][-1]:.3f}. Round by round (objectives"
            " rescored against every config evaluated):", rounds_table(history)]),
        Section(f"Cost sensitivity (worst-scenario mean Sharpe; ranked at"
                f" {inputs.objectives.assumed_tc_bps:g} bp)", [cost_table(inputs)]),
        Section("Charts", [Figure(r["chart"], r["caption"])
                           for r in inputs.charts.iter_rows(named=True)]),
    ]
    equity = inputs.recommended["equity_weight_today"]
    subtitle = (f"As of {inputs.recommended['as_of']}: equity {equity:.1%}, government bonds"
                f" {1 - equity:.1%}. {data_label(inputs.data_source).capitalize()}.")
    return ReportDocument(TITLE, subtitle, sections)


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
