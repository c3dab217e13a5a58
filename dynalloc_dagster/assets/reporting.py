"""The business outputs: the recommended allocation, the static benchmarks and the
recommended rule's allocation paths, cost sensitivity, charts, the narrative (Bedrock or
offline) with its grounding check, and the investment-committee report (markdown + PDF).

Business outputs carry the tag ``dynalloc/output: business``; the tables they are drawn
from carry ``dynalloc/output: intermediate``.

No `from __future__ import annotations`: Dagster reads resource annotations at runtime."""

from datetime import timedelta

import dagster as dg
import polars as pl

from dynalloc_dagster.assets.live import trades_table
from dynalloc_dagster.bedrock.grounding import check_grounding
from dynalloc_dagster.bedrock.narrative import ReportTables
from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.committee import plots
from dynalloc_dagster.committee.decision import (
    ASSET_WEIGHTS,
    decision_markdown,
    mandate_summary,
    status_text,
    weights_text,
)
from dynalloc_dagster.committee.pdf import pdf_of_pages, png_and_page, report_pdf
from dynalloc_dagster.committee.render import render_charts
from dynalloc_dagster.committee.text import (
    ReportInputs,
    benchmark_table,
    build_report,
    data_label,
    run_config_from_tag,
    to_markdown,
)
from dynalloc_dagster.portfolio import (
    asset_weights,
    defensive_leg,
    history_levels,
    is_multi_asset,
    spec_from_table,
)
from dynalloc_dagster.resources import ArtifactStore, MarketDataSource, ObjectivesResource
from dynalloc_dagster.storage.metadata import (
    chart_gallery,
    code_version,
    png_data_uri,
    table_metadata,
)
from dynalloc_dagster.tags import RUN_CONFIG_TAG
from engine.analysis.allocation import asset_weight_bands, weight_bands, weight_paths
from engine.analysis.benchmarks import evaluate_benchmarks
from engine.analysis.costs import DEFAULT_COSTS_BPS
from engine.analysis.costs import cost_sensitivity as evaluate_costs
from engine.analysis.scoring import unmet_objectives
from engine.market.legs import leg_label, leg_of
from engine.market.paths import ScenarioPaths
from engine.objectives import OBJECTIVE_CHECKS
from engine.portfolio.live import todays_weights
from engine.portfolio.paths import PortfolioPaths
from engine.strategy import config_from_row
from engine.strategy.backtest import todays_weight
from engine.strategy.config import StrategyConfig

OWNERS = ["team:quant-research"]
COST_SENSITIVITY_TOP = 5
BUSINESS = {"dynalloc/output": "business"}
INTERMEDIATE = {"dynalloc/output": "intermediate"}
RECOMMENDED_ALLOCATION = dg.AssetKey("recommended_allocation")
REPORT_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8),
                                                  warn_window=timedelta(days=7))
"""The report and the recommended allocation warn once more than 7 days old and fail
past 8: the weekly schedule refreshes them (docs/dagster.md)."""


def _previous_recommendation(instance: dg.DagsterInstance) -> dict:
    """config_id, rule, equity weight and as-of date of the latest stored materialization
    of recommended_allocation (the one before this run's), or nulls."""
    event = instance.get_latest_materialization_event(RECOMMENDED_ALLOCATION)
    materialization = event.asset_materialization if event else None
    metadata = {k: v.value for k, v in materialization.metadata.items()} if materialization \
        else {}
    if "config_id" not in metadata or "equity_weight_today" not in metadata:
        return {"previous_config_id": None, "previous_rule": None,
                "previous_equity_weight": None, "previous_as_of": None}
    return {"previous_config_id": str(metadata["config_id"]),
            "previous_rule": str(metadata.get("rule", "")),
            "previous_equity_weight": float(metadata["equity_weight_today"]),
            "previous_as_of": str(metadata.get("as_of", ""))}


@dg.asset(group_name="reports", owners=OWNERS, kinds={"polars"}, code_version="4",
          tags=BUSINESS, freshness_policy=REPORT_FRESHNESS)
def recommended_allocation(
    context: dg.AssetExecutionContext, market_source: MarketDataSource,
    objectives: ObjectivesResource, robustness_leaderboard: pl.DataFrame,
    strategy_configs: pl.DataFrame, strategy_evaluations: pl.DataFrame,
    market_data: pl.DataFrame,
) -> dg.MaterializeResult:
    """Business output: the recommended allocation rule (the top of the leaderboard, by
    objective), its status against the mandate (in how many scenarios it meets every
    limit, each missed limit's worst realised value against the limit; when no config
    meets the mandate, that first), the equity and non-equity weights it sets today on
    the latest market data (the non-equity leg is the bond index when the market data
    has one, else cash at the risk-free rate: ``defensive_leg``), the previous
    recommendation it replaces, and the provenance (data source, as-of date, code
    version). For a multi-asset portfolio ``asset_weights_today`` lists every asset's
    weight today with where its data comes from (engine.portfolio.live.todays_weights);
    the equity weight is then the risky sleeve's."""
    best_id = robustness_leaderboard.sort("rank")["config_id"][0]
    row = strategy_configs.filter(pl.col("config_id") == best_id).row(0, named=True)
    spec = spec_from_table(market_data)
    items = None
    if is_multi_asset(spec):
        weights = todays_weights(history_levels(spec, market_data), spec, config_from_row(row))
        items = asset_weights(spec, weights, market_source.kind, set(market_data.columns))
        weight = float(weights[:len(spec.equities)].sum())
        leg = defensive_leg(spec)
    else:
        weight = float(todays_weight(market_data["close"], config_from_row(row)))
        leg = leg_of(market_data.columns)
    as_of = market_data["date"][-1]
    ids = set(strategy_configs["config_id"])
    summary = mandate_summary(strategy_evaluations.filter(pl.col("config_id").is_in(ids)),
                              objectives.objectives(), best_id)
    status = status_text(summary)
    previous = _previous_recommendation(context.instance)
    source = data_label(market_source.kind)
    table = pl.DataFrame([{**row, "rule": plots.rule_label(row), "as_of": as_of,
                           "equity_weight_today": weight, "defensive_weight_today": 1.0 - weight,
                           "defensive_leg": leg, "defensive_leg_label": leg_label(leg),
                           "n_scenarios_meeting": summary.n_meeting,
                           "n_scenarios": summary.n_scenarios, "meets_mandate": summary.meets,
                           "any_config_meets_mandate": summary.any_config_meets,
                           "mandate_status": status,
                           "data_source": market_source.kind, "data_source_label": source,
                           "code_version": code_version(), **previous,
                           **({ASSET_WEIGHTS: items} if items else {})}],
                         schema_overrides={"risk_aversion": pl.Float64,
                                           "previous_config_id": pl.String,
                                           "previous_rule": pl.String,
                                           "previous_equity_weight": pl.Float64,
                                           "previous_as_of": pl.String})
    decision = decision_markdown(rule=plots.rule_label(row), config_id=best_id,
                                 equity_weight=weight, leg=leg, as_of=str(as_of),
                                 data_source=source, status=status, weights=items)
    previous_weight = previous["previous_equity_weight"]
    return dg.MaterializeResult(value=table, metadata={
        "decision": dg.MetadataValue.md(decision),
        "mandate_status": status,
        "scenarios_meeting_mandate": f"{summary.n_meeting} of {summary.n_scenarios}",
        "equity": f"{weight:.1%}",
        "defensive_leg": leg_label(leg),
        "defensive_weight": f"{1 - weight:.1%}",
        "equity_weight_today": dg.MetadataValue.float(round(weight, 6)),
        "defensive_weight_today": dg.MetadataValue.float(round(1.0 - weight, 6)),
        "config_id": best_id, "rule": plots.rule_label(row), "as_of": str(as_of),
        "data_source": source,
        "previous_equity": "none" if previous_weight is None else f"{previous_weight:.1%}",
        "previous_config_id": previous["previous_config_id"] or "none",
        **({"today": weights_text(weight, leg, items),
            "assets": dg.MetadataValue.md("\n".join(f"- {i['label']}" for i in items))}
           if items else {}),
        **table_metadata(table),
    })


@dg.asset(group_name="reports", owners=OWNERS, kinds={"polars", "parquet"}, code_version="1",
          tags=INTERMEDIATE)
def benchmark_evaluations(
    objectives: ObjectivesResource, scenario_paths: dict,
) -> dg.MaterializeResult:
    """Static benchmarks, 60/40 and 100% equity (constant weights rebalanced monthly at the
    assumed cost), evaluated on the same scenario paths as the rules
    (engine.analysis.benchmarks)."""
    table = evaluate_benchmarks(scenario_paths, objectives.objectives())
    summary = table.select("benchmark", "scenario", "sharpe_mean", "ann_return_mean",
                           "ann_vol_mean", "max_drawdown_median", "meets_objectives")
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "summary": table_metadata(summary, preview_rows=20)["preview"],
    })


@dg.asset(group_name="reports", owners=OWNERS, kinds={"polars", "parquet"}, code_version="2",
          tags=INTERMEDIATE)
def allocation_paths(
    recommended_allocation: pl.DataFrame, scenario_paths: dict,
) -> dg.MaterializeResult:
    """The recommended rule's weights month by month in every scenario: the mean, the
    median and the 5-95% band across paths (engine.analysis.allocation) of the equity
    weight, or of a multi-asset portfolio every asset's weight (an ``asset`` column)."""
    rule = config_from_row(recommended_allocation.row(0, named=True))
    frames = [_weight_bands(paths, rule).select(pl.lit(name).alias("scenario"), pl.all())
              for name, paths in scenario_paths.items()]
    table = pl.concat(frames)
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "config_id": recommended_allocation["config_id"][0],
        "months": int(table["month"].max()),
    })


@dg.asset(group_name="reports", owners=OWNERS, kinds={"polars", "parquet"}, code_version="2",
          tags=INTERMEDIATE)
def cost_sensitivity(
    objectives: ObjectivesResource, robustness_leaderboard: pl.DataFrame,
    strategy_configs: pl.DataFrame, scenario_paths: dict,
) -> dg.MaterializeResult:
    """The top configs (ranked at the objectives' one cost assumption) re-evaluated at
    0, 5, 10, 15 and 20 bp per unit traded in every scenario: how much of a ranking is
    owed to the cost assumption."""
    top = robustness_leaderboard.sort("rank").head(COST_SENSITIVITY_TOP)["config_id"].to_list()
    rows = {r["config_id"]: r for r in strategy_configs.iter_rows(named=True)}
    table = evaluate_costs(scenario_paths, [config_from_row(rows[cid]) for cid in top],
                           DEFAULT_COSTS_BPS, objectives.objectives())
    worst = table.group_by("config_id", "tc_bps").agg(pl.col("worst_sharpe_mean").first())
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table),
        "worst_sharpe_by_cost": table_metadata(worst.sort("config_id", "tc_bps"),
                                               preview_rows=25)["preview"],
        "configs": len(top), "costs_bps": ", ".join(f"{c:g}" for c in DEFAULT_COSTS_BPS),
    })


def _weight_bands(paths: ScenarioPaths | PortfolioPaths, rule: StrategyConfig) -> pl.DataFrame:
    if isinstance(paths, PortfolioPaths) and paths.two_asset is None:
        return asset_weight_bands(paths, rule)
    return weight_bands(weight_paths(paths, rule))


CHART_CAPTIONS = {
    "summary_table": "Best-strategy summary: the recommended rule (highlighted) beside the"
    " static benchmarks in every scenario.",
    "scenario_comparison": "Mean Sharpe in each scenario: the best, median and worst config,"
    " the recommended rule and the benchmarks.",
    "risk_return": "Risk and return of every config per scenario, the efficient frontier"
    " (upper-left envelope), the recommended rule, the benchmarks and the mandate's vol"
    " band.",
    "allocation_dynamics": "The recommended rule's equity weight over the horizon: median"
    " path and 5-95% band across paths, per scenario, against the weight it sets today (of"
    " a multi-asset portfolio: every asset's mean weight, stacked, equities first).",
    "parameter_sensitivity": "How much each hyperparameter explains of the mean-Sharpe"
    " differences between configs, per scenario.",
    "weight_window_interaction": "Mean Sharpe by weight function and vol-window band, per"
    " scenario, on one colour scale.",

    "sharpe_by_scenario": "Mean Sharpe of the top configs in every scenario.",
    "robustness_ranking": "Robustness of every config by rank on a 0-100% axis with the"
    " robust threshold; the objective on its own axis below.",
    "optimisation_convergence": "Best objective against configs evaluated, overall and per"
    " proposer.",
    "cost_sensitivity": "Change of the top configs' worst-scenario mean Sharpe against 0 bp,"
    " at each cost evaluated.",
    "search_progress": "The best objective per round and the proposer of each improvement;"
    " where the evaluated configs lie in the searched space.",
}
PORTFOLIO_CHART_CAPTIONS = {
    "asset_weights": "The portfolio's weight in every asset today under the recommended"
    " rule, each asset labelled with where its data comes from.",
}
"""The charts only a multi-asset portfolio has."""


def chart_note(market_source: MarketDataSource, evaluations: pl.DataFrame,
               recommended: dict | None = None) -> str:
    """The footnote of every chart: the data and the sample behind it, and for a
    multi-asset portfolio the recommended rule's weight in every asset today."""
    n_paths = int(evaluations["n_paths"].max()) if evaluations.height else 0
    note = (f"Data: {data_label(market_source.kind)}; {n_paths} simulated paths per scenario;"
            " dynalloc.")
    items = (recommended or {}).get(ASSET_WEIGHTS)
    if items:
        note += "\nToday: " + weights_text(0.0, "cash", items) + "."
    return note


@dg.asset(group_name="reports", owners=OWNERS, kinds={"matplotlib", "pdf"}, code_version="4",
          tags=BUSINESS)
def charts(
    artifacts: ArtifactStore, objectives: ObjectivesResource, market_source: MarketDataSource,
    strategy_evaluations: pl.DataFrame, robustness_leaderboard: pl.DataFrame,
    optimisation_history: pl.DataFrame, cost_sensitivity: pl.DataFrame,
    scenario_comparison: pl.DataFrame, parameter_sensitivity: pl.DataFrame,
    weight_window_interaction: pl.DataFrame, benchmark_evaluations: pl.DataFrame,
    allocation_paths: pl.DataFrame, recommended_allocation: pl.DataFrame,
) -> dg.MaterializeResult:
    """Business output: every chart of the dashboard, each as PNG (shown on this page) and
    all together in charts.pdf: the best-strategy summary, the scenario comparison, risk
    and return with the efficient frontier, allocation dynamics, hyperparameter
    sensitivity, the weight x window interaction, the top configs, robustness,
    optimisation convergence, cost sensitivity and the search progress."""
    judged_by = objectives.objectives()
    ids = set(optimisation_history["config_id"])
    evaluations = strategy_evaluations.filter(pl.col("config_id").is_in(ids))
    recommended = recommended_allocation.row(0, named=True)
    note = chart_note(market_source, evaluations, recommended)
    summary = benchmark_table(_inputs_for_tables(
        judged_by, recommended, robustness_leaderboard, evaluations, optimisation_history,
        cost_sensitivity, benchmark_evaluations, market_source))
    builders = {
        "summary_table": lambda: plots.summary_table(
            summary.rows, summary.header,
            "Best-strategy summary: " + plots.rule_label(recommended), note,
            highlight=summary.highlight),
        "scenario_comparison": lambda: plots.scenario_comparison(
            scenario_comparison, evaluations, benchmark_evaluations, recommended, note),
        "risk_return": lambda: plots.risk_return(evaluations, recommended,
                                                 benchmark_evaluations, judged_by, note),
        "allocation_dynamics": lambda: plots.allocation_dynamics(allocation_paths,
                                                                 recommended, note),
        "parameter_sensitivity": lambda: plots.parameter_sensitivity(parameter_sensitivity,
                                                                     note),
        "weight_window_interaction": lambda: plots.weight_window_interaction(
            weight_window_interaction, recommended, note),
        "sharpe_by_scenario": lambda: plots.sharpe_by_scenario(
            evaluations, robustness_leaderboard, note=note),
        "robustness_ranking": lambda: plots.robustness_ranking(
            robustness_leaderboard, judged_by.robustness_threshold, note),
        "optimisation_convergence": lambda: plots.optimisation_convergence(
            optimisation_history, note),
        "cost_sensitivity": lambda: plots.cost_sensitivity(
            cost_sensitivity, robustness_leaderboard, judged_by.assumed_tc_bps, note),
        "search_progress": lambda: plots.search_progress(optimisation_history, note),
    }
    if recommended.get(ASSET_WEIGHTS):
        builders["asset_weights"] = lambda: plots.asset_weights(
            recommended[ASSET_WEIGHTS], "Today's weights: " + plots.rule_label(recommended),
            note)
    captions = CHART_CAPTIONS | PORTFOLIO_CHART_CAPTIONS
    drawn = render_charts(builders, draw=png_and_page)
    pngs = {name: png for name, (png, _) in drawn.items()}
    pdf = pdf_of_pages(page for _, page in drawn.values())
    for name, png in pngs.items():
        artifacts.write(f"{name}.png", png)
    pdf_uri = artifacts.write("charts.pdf", pdf)
    table = pl.DataFrame({"chart": list(pngs), "file": [f"{n}.png" for n in pngs],
                          "caption": [captions[n] for n in pngs],
                          "png": list(pngs.values())},
                         schema_overrides={"png": pl.Binary})
    return dg.MaterializeResult(value=table, metadata={
        "decision": dg.MetadataValue.md(recommended_decision(recommended)),
        "charts": chart_gallery(pngs, captions),
        "pdf": dg.MetadataValue.url(pdf_uri),
        **table_metadata(table.drop("png")),
        "dagster/column_schema": table_metadata(table)["dagster/column_schema"],
    })


def recommended_decision(recommended: dict) -> str:
    """The decision text of a recommended_allocation row (decision.decision_markdown)."""
    return decision_markdown(
        rule=recommended["rule"], config_id=recommended["config_id"],
        equity_weight=recommended["equity_weight_today"], leg=recommended["defensive_leg"],
        as_of=str(recommended["as_of"]), data_source=recommended["data_source_label"],
        status=recommended["mandate_status"], weights=recommended.get(ASSET_WEIGHTS))


def _inputs_for_tables(objectives, recommended, leaderboard, evaluations, history, costs,
                       benchmarks, market_source, narrative=None, charts_table=None,
                       run_config=None, live=None) -> ReportInputs:
    return ReportInputs(
        objectives=objectives, narrative=narrative or {"written_by": "", "narrative": ""},
        recommended=recommended, leaderboard=leaderboard, evaluations=evaluations,
        history=history, costs=costs, benchmarks=benchmarks,
        charts=charts_table if charts_table is not None else pl.DataFrame(
            {"chart": [], "caption": []}, schema={"chart": pl.String, "caption": pl.String}),
        data_source=market_source.kind, run_config=run_config, code_version=code_version(),
        **(live or {}),
    )


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
    tags=BUSINESS,
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
    """Business output: the investment-committee narrative (an executive summary, the
    recommended rule and why each parameter makes sense, regime notes, risks and limits).
    Written by Amazon Bedrock (Converse, a Claude model) in the aws setting, or
    deterministically from the same tables offline (labelled as such); its numbers are
    checked against the tables."""
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
    }], schema_overrides={"model_id": pl.String})
    yield dg.Output(table, metadata={
        "narrative": dg.MetadataValue.md(narrative.text),
        "written_by": narrative.written_by,
        "model_id": narrative.model_id or "",
        "input_tokens": narrative.input_tokens,
        "output_tokens": narrative.output_tokens,
        "latency_ms": dg.MetadataValue.float(float(narrative.latency_ms)),
        "estimated_cost_usd": dg.MetadataValue.float(float(narrative.cost_usd)),
        "dagster/column_schema": table_metadata(table)["dagster/column_schema"],
        "dagster/row_count": 1,
    })
    yield dg.AssetCheckResult(
        check_name="narrative_grounding",
        passed=not grounding.unmatched,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"numbers_checked": grounding.numbers_checked,
                  "unmatched": len(grounding.unmatched),
                  "unmatched_numbers": ", ".join(grounding.unmatched[:50])},
    )


@dg.asset(group_name="reports", owners=OWNERS, kinds={"markdown", "pdf"}, code_version="4",
          tags=BUSINESS, freshness_policy=REPORT_FRESHNESS)
def report(
    context: dg.AssetExecutionContext, artifacts: ArtifactStore,
    objectives: ObjectivesResource, market_source: MarketDataSource,
    bedrock_report: pl.DataFrame, recommended_allocation: pl.DataFrame,
    robustness_leaderboard: pl.DataFrame, strategy_evaluations: pl.DataFrame,
    optimisation_history: pl.DataFrame, cost_sensitivity: pl.DataFrame,
    benchmark_evaluations: pl.DataFrame, charts: pl.DataFrame,
    historical_backtest: pl.DataFrame, market_regime: pl.DataFrame,
    market_data: pl.DataFrame, market_holdings: pl.DataFrame,
) -> dg.MaterializeResult:
    """Business output: the investment-committee report, report.md (charts beside it) and
    report.pdf (title page, decision, narrative, tables, every chart). It opens with the
    decision: the mandate status (in how many scenarios the rule meets it, each missed
    limit against its value; no rule meeting it said first), the rule in words, today's
    weights on the leg the data supports, what changed since the previous
    recommendation; and it carries the live evidence: the rule on the market history
    against 60/40 and buy-and-hold, the trades to target (assets.live.trades_table, the
    table todays_allocation writes after the report), today's regime and its checks.
    Rendered on this page."""
    ids = set(optimisation_history["config_id"])
    inputs = _inputs_for_tables(
        objectives.objectives(), recommended_allocation.row(0, named=True),
        robustness_leaderboard, strategy_evaluations.filter(pl.col("config_id").is_in(ids)),
        optimisation_history, cost_sensitivity, benchmark_evaluations, market_source,
        narrative=bedrock_report.row(0, named=True), charts_table=charts,
        run_config=run_config_from_tag(context.run_tags.get(RUN_CONFIG_TAG)),
        live={"backtest": historical_backtest, "regime": market_regime,
              "trades": trades_table(market_source, recommended_allocation.row(0, named=True),
                                     market_data, market_holdings, spec_from_table(market_data))})
    document = build_report(inputs)
    text = to_markdown(document)
    pngs = dict(zip(charts["chart"], charts["png"], strict=True))
    recommended = inputs.recommended
    pdf = report_pdf(
        document, pngs,
        footer=f"{document.title}, as of {recommended['as_of']}; {data_label(market_source.kind)}",
        title_facts=[f"Mandate: {recommended['mandate_status']}",
                     f"Recommended rule: {recommended['rule']}",
                     "Today: " + weights_text(recommended["equity_weight_today"],
                                              recommended["defensive_leg"],
                                              recommended.get(ASSET_WEIGHTS))
                     + f" (as of {recommended['as_of']})",
                     f"Data: {recommended['data_source_label']}",
                     f"Code version: {inputs.code_version}"])
    uri = artifacts.write("report.md", text.encode("utf-8"))
    pdf_uri = artifacts.write("report.pdf", pdf)
    in_ui = to_markdown(document, image_src={n: png_data_uri(p) for n, p in pngs.items()})
    table = pl.DataFrame({"file": ["report.md", "report.pdf"], "markdown": [text, None]})
    return dg.MaterializeResult(value=table, metadata={
        "decision": dg.MetadataValue.md(recommended_decision(recommended)),
        "report": dg.MetadataValue.md(in_ui),
        "uri": dg.MetadataValue.url(uri), "pdf": dg.MetadataValue.url(pdf_uri),
        "pdf_pages": pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages"),
        "code_version": inputs.code_version,
        **{k: v for k, v in table_metadata(table.drop("markdown")).items()
           if k != "dagster/column_schema"},
        "dagster/column_schema": table_metadata(table)["dagster/column_schema"],
    })
