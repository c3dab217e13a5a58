"""The pipeline's stage jobs (dynalloc_dagster.orchestration.stages says how they chain)."""

from __future__ import annotations

import dagster as dg

from dynalloc_dagster.tags import (
    EVALUATE_ROUND_JOB,
    EVALUATIONS_JOB,
    FULL_ROUND_JOB,
    HISTORY_JOB,
    INGEST_JOB,
    REPORTS_JOB,
    ROUND_JOB,
    SCENARIOS_JOB,
    START_JOB,
)

INGEST_SELECTION = dg.AssetSelection.assets(
    "market_data", "market_vol_surface", "market_yield_curve", "market_holdings", "calibration",
    "market_regimes")
EVALUATE_ROUND_SELECTION = (
    dg.AssetSelection.assets("strategy_evaluations", "optimisation_history")
    | dg.AssetSelection.checks_for_assets("strategy_evaluations"))

pipeline_start_job = dg.define_asset_job(
    START_JOB,
    selection=INGEST_SELECTION | dg.AssetSelection.assets("scenario_paths"),
    description="A pipeline's first run: market data, calibration, the regimes and the"
    " scenario paths of every scenario in the run's partition range.",
)
ingest_job = dg.define_asset_job(
    INGEST_JOB, selection=INGEST_SELECTION,
    description="Market data, calibration and the regimes.",
)
scenario_paths_job = dg.define_asset_job(
    SCENARIOS_JOB, selection=dg.AssetSelection.assets("scenario_paths"),
    description="Scenario paths for the scenarios in the run's partition range.",
)
optimisation_round_job = dg.define_asset_job(
    ROUND_JOB, selection=dg.AssetSelection.assets("strategy_configs"),
    description="One round of the optimisation agent: round 0 a Latin hypercube batch,"
    " later rounds proposed from the optimisation history.",
)
strategy_evaluations_job = dg.define_asset_job(
    EVALUATIONS_JOB, selection=dg.AssetSelection.assets("strategy_evaluations"),
    description="Evaluations of every scenario x config key in the run's range, vectorised.",
)
optimisation_history_job = dg.define_asset_job(
    HISTORY_JOB,
    selection=dg.AssetSelection.assets("optimisation_history")
    | dg.AssetSelection.checks_for_assets("strategy_evaluations"),
    description="Every config evaluated so far scored, and whether the agent stops.",
)
optimisation_evaluate_round_job = dg.define_asset_job(
    EVALUATE_ROUND_JOB, selection=EVALUATE_ROUND_SELECTION,
    description="A round whose configs exist (round 0's, a Latin hypercube batch whose key"
    " is known once its configs are), in one run: their evaluations (every scenario x batch"
    " key in the run's range), the rescored history and whether the agent stops.",
)
optimisation_full_round_job = dg.define_asset_job(
    FULL_ROUND_JOB,
    selection=dg.AssetSelection.assets("strategy_configs") | EVALUATE_ROUND_SELECTION,
    description="One round of the optimisation agent after the first, in one run: the"
    " configs proposed from the history, their evaluations (every scenario x batch key in"
    " the run's range: the round's batch, known in advance), the rescored history and"
    " whether the agent stops.",
)
reports_job = dg.define_asset_job(
    REPORTS_JOB, selection=dg.AssetSelection.groups("reports", "live"),
    description="SQL report models, cost sensitivity, charts, the Bedrock narrative, the"
    " report and the recommended allocation; the live signal (historical backtest, today's"
    " allocation and trades, the market regime).",
)

STAGE_JOBS = [pipeline_start_job, ingest_job, scenario_paths_job, optimisation_round_job,
              strategy_evaluations_job, optimisation_history_job,
              optimisation_evaluate_round_job, optimisation_full_round_job, reports_job]
