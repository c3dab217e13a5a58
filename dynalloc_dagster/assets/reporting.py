"""The business outputs: the recommended allocation, cost sensitivity, charts, the
narrative (Bedrock or offline) with its grounding check, and the markdown report.

No `from __future__ import annotations`: Dagster reads resource annotations at runtime."""

import io
from collections.abc import Iterable

import dagster as dg
import polars as pl
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from dynalloc_dagster import plots
from dynalloc_dagster.bedrock.grounding import check_grounding
from dynalloc_dagster.bedrock.narrative import ReportTables
from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.metadata import table_metadata
from dynalloc_dagster.report_text import report_markdown
from dynalloc_dagster.resources import ArtifactStore, ObjectivesResource
from engine.analysis.costs import DEFAULT_COSTS_BPS
from engine.analysis.costs import cost_sensitivity as evaluate_costs
from engine.analysis.scoring import unmet_objectives
from engine.objectives import OBJECTIVE_CHECKS
from engine.strategy import CONFIG_COLUMNS, StrategyConfig
from engine.strategy.backtest import todays_weight

OWNERS = ["team:quant-research"]
COST_SENSITIVITY_TOP = 5


def _rule(row: dict) -> StrategyConfig:
    return StrategyConfig(**{k: row[k] for k in CONFIG_COLUMNS})


@dg.asset(group_name="reports", owners=OWNERS, kinds={"polars"}, code_version="2",
          tags={"dynalloc/output": "business"})
def recommended_allocation(
    robustness_leaderboard: pl.DataFrame, strategy_configs: pl.DataFrame,
    market_data: pl.DataFrame,
) -> dg.MaterializeResult:
    """The recommended allocation rule (the top of the leaderboard, by objective) and the
    equity and bond weights it sets today on the latest market data."""
    best_id = robustness_leaderboard.sort("rank")["config_id"][0]
    row = strategy_configs.filter(pl.col("config_id") == best_id).row(0, named=True)
    weight = todays_weight(market_data["close"], _rule(row))
    as_of = market_data["date"][-1]
    table = pl.DataFrame([{**row, "as_of": as_of, "equity_weight_today": weight,
                           "bond_weight_today": 1.0 - weight}])
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "config_id": best_id, "rule": plots.rule_label(row),
        "equity_weight_today": dg.MetadataValue.float(round(weight, 4)),
        "bond_weight_today": dg.MetadataValue.float(round(1.0 - weight, 4)),
        "as_of": str(as_of),
    })


@dg.asset(group_name="reports", owners=OWNERS, kinds={"polars", "parquet"}, code_version="1")
def cost_sensitivity(
    objectives: ObjectivesResource, robustness_leaderboard: pl.DataFrame,
    strategy_configs: pl.DataFrame, scenario_paths: dict,
) -> dg.MaterializeResult:
    """The top configs (ranked at the objectives' one cost assumption) re-evaluated at
    0, 5, 10, 15 and 20 bp per unit traded in every scenario: how much of a ranking is
    owed to the cost assumption."""
    top = robustness_leaderboard.sort("rank").head(COST_SENSITIVITY_TOP)["config_id"].to_list()
    rows = {r["config_id"]: r for r in strategy_configs.iter_rows(named=True)}
    table = evaluate_costs(scenario_paths, [_rule(rows[cid]) for cid in top], DEFAULT_COSTS_BPS,
                           objectives.objectives())
    worst = table.group_by("config_id", "tc_bps").agg(pl.col("worst_sharpe_mean").first())
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(worst.sort("config_id", "tc_bps"), preview_rows=25),
        "dagster/row_count": table.height, "configs": len(top),
        "costs_bps": ", ".join(f"{c:g}" for c in DEFAULT_COSTS_BPS),
    })


@dg.asset(group_name="reports", owners=OWNERS, kinds={"matplotlib", "pdf"}, code_version="2")
def charts(
    artifacts: ArtifactStore, objectives: ObjectivesResource,
    strategy_evaluations: pl.DataFrame, robustness_leaderboard: pl.DataFrame,
    optimisation_history: pl.DataFrame, cost_sensitivity: pl.DataFrame,
) -> dg.MaterializeResult:
    """The report's charts, each as PNG and all together in one PDF: Sharpe of the top
    configs by scenario, robustness by rank, risk and return, optimisation convergence
    and cost sensitivity."""
    judged_by = objectives.objectives()
    ids = set(optimisation_history["config_id"])
    evaluations = strategy_evaluations.filter(pl.col("config_id").is_in(ids))
    recommended_id = robustness_leaderboard.sort("rank")["config_id"][0]
    figures = {
        "sharpe_by_scenario": plots.sharpe_by_scenario(evaluations, robustness_leaderboard),
        "robustness_ranking": plots.robustness_ranking(robustness_leaderboard,
                                                       judged_by.robustness_threshold),
        "risk_return": plots.risk_return(evaluations, recommended_id),
        "optimisation_convergence": plots.optimisation_convergence(optimisation_history),
        "cost_sensitivity": plots.cost_sensitivity(cost_sensitivity, robustness_leaderboard,
                                                   judged_by.assumed_tc_bps),
    }
    uris = {f"{name}.png": artifacts.write(f"{name}.png", _png(fig))
            for name, fig in figures.items()}
    uris["charts.pdf"] = artifacts.write("charts.pdf", _pdf(figures.values()))
    plots.close(figures)
    table = pl.DataFrame({"chart": [*figures, "all"], "file": list(uris),
                          "uri": list(uris.values())})
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "pdf": dg.MetadataValue.url(uris["charts.pdf"]),
    })


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def _pdf(figures: Iterable[Figure]) -> bytes:
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"CreationDate": None, "Creator": None,
                                    "Producer": None}) as pdf:
        for fig in figures:
            pdf.savefig(fig)
    return buffer.getvalue()


def report_tables(
    objectives: ObjectivesResource, robustness_leaderboard: pl.DataFrame,
    scenario_comparison: pl.DataFrame, parameter_sensitivity: pl.DataFrame,
    optimisation_history: pl.DataFrame, constraint_compliance: pl.DataFrame,
    strategy_evaluations: pl.DataFrame, recommended_allocation: pl.DataFrame,
) -> ReportTables:
    """What the narrative is written from and checked against."""
    judged_by = objectives.objectives()
    ids = set(optimisation_history["config_id"])
    recommended = recommended_allocation.row(0, named=True)
    return ReportTables(
        leaderboard=robustness_leaderboard.sort("rank"),
        scenario_comparison=scenario_comparison,
        parameter_sensitivity=parameter_sensitivity,
        optimisation_history=optimisation_history,
        constraint_compliance=constraint_compliance.filter(pl.col("config_id").is_in(ids)),
        objectives=judged_by.to_dict(),
        unmet_objectives=[OBJECTIVE_CHECKS[column] for column in unmet_objectives(
            strategy_evaluations.filter(pl.col("config_id").is_in(ids)), judged_by)],
        recommended={
            **{k: recommended[k] for k in ("config_id", "weight_fn", "target_vol",
                                           "vol_window_months", "risk_aversion")},
            "equity_weight": recommended["equity_weight_today"],
            "as_of": str(recommended["as_of"]),
        },
    )


@dg.asset(
    group_name="reports", owners=OWNERS, kinds={"bedrock", "markdown"}, code_version="1",
    tags={"dynalloc/output": "business"},
    check_specs=[dg.AssetCheckSpec(
        "narrative_grounding", asset="bedrock_report",
        description="Every number in the narrative is found in the tables it was written from"
        " (within the rounding shown); a number that is not is listed (a warning).")],
)
def bedrock_report(
    bedrock: BedrockResource, objectives: ObjectivesResource,
    robustness_leaderboard: pl.DataFrame, scenario_comparison: pl.DataFrame,
    parameter_sensitivity: pl.DataFrame, optimisation_history: pl.DataFrame,
    constraint_compliance: pl.DataFrame, strategy_evaluations: pl.DataFrame,
    recommended_allocation: pl.DataFrame,
):
    """The investment-committee narrative: an executive summary, the recommended rule and
    why each parameter makes sense, regime notes, risks and limits. Written by Amazon
    Bedrock (Converse, a Claude model) in the aws setting, or deterministically from the
    same tables offline (labelled as such); its numbers are checked against the tables."""
    tables = report_tables(objectives, robustness_leaderboard, scenario_comparison,
                           parameter_sensitivity, optimisation_history, constraint_compliance,
                           strategy_evaluations, recommended_allocation)
    narrative = bedrock.write_narrative(tables)
    grounding = check_grounding(narrative.text, tables)
    table = pl.DataFrame([{
        "narrative": narrative.text, "written_by": narrative.written_by,
        "model_id": narrative.model_id, "input_tokens": narrative.input_tokens,
        "output_tokens": narrative.output_tokens, "latency_ms": narrative.latency_ms,
        "cost_usd": narrative.cost_usd,
    }])
    yield dg.Output(table, metadata={
        "narrative": dg.MetadataValue.md(narrative.text),
        "written_by": narrative.written_by,
        "model_id": narrative.model_id or "",
        "input_tokens": narrative.input_tokens,
        "output_tokens": narrative.output_tokens,
        "latency_ms": dg.MetadataValue.float(float(narrative.latency_ms)),
        "estimated_cost_usd": dg.MetadataValue.float(float(narrative.cost_usd)),
    })
    yield dg.AssetCheckResult(
        check_name="narrative_grounding",
        passed=not grounding.unmatched,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"numbers_checked": grounding.numbers_checked,
                  "unmatched": len(grounding.unmatched),
                  "unmatched_numbers": ", ".join(grounding.unmatched[:50])},
    )


@dg.asset(group_name="reports", owners=OWNERS, kinds={"markdown"}, code_version="2",
          tags={"dynalloc/output": "business"})
def report(
    artifacts: ArtifactStore, objectives: ObjectivesResource,
    bedrock_report: pl.DataFrame, recommended_allocation: pl.DataFrame,
    robustness_leaderboard: pl.DataFrame, strategy_evaluations: pl.DataFrame,
    optimisation_history: pl.DataFrame, cost_sensitivity: pl.DataFrame, charts: pl.DataFrame,
) -> dg.MaterializeResult:
    """The investment-committee report in markdown: the decision, the narrative, the
    leaderboard, the recommended rule in every scenario, the optimisation and the cost
    sensitivity, with the charts beside it."""
    text = report_markdown(
        objectives=objectives.objectives(), narrative=bedrock_report.row(0, named=True),
        recommended=recommended_allocation.row(0, named=True),
        leaderboard=robustness_leaderboard, evaluations=strategy_evaluations,
        history=optimisation_history, costs=cost_sensitivity, charts=charts,
    )
    uri = artifacts.write("report.md", text.encode("utf-8"))
    table = pl.DataFrame({"file": ["report.md"], "uri": [uri], "markdown": [text]})
    return dg.MaterializeResult(value=table, metadata={
        "report": dg.MetadataValue.md(text), "uri": dg.MetadataValue.url(uri),
    })
