"""The pipeline's stage jobs (see dynalloc_dagster.pipeline for how they chain)."""

from __future__ import annotations

import dagster as dg

from dynalloc_dagster.pipeline import (
    EVALUATIONS_JOB,
    QUARTERLY_INGEST_JOB,
    REPORTS_JOB,
    SCENARIOS_JOB,
    WEEKLY_INGEST_JOB,
)

_INGEST = dg.AssetSelection.assets(
    "market_data", "market_vol_surface", "market_yield_curve", "calibration", "market_regimes"
)

weekly_ingest_job = dg.define_asset_job(
    WEEKLY_INGEST_JOB, selection=_INGEST,
    description="Market data, calibration and regimes; the configs stay as they are.",
)
quarterly_ingest_job = dg.define_asset_job(
    QUARTERLY_INGEST_JOB, selection=_INGEST | dg.AssetSelection.assets("strategy_configs"),
    description="Market data, calibration, regimes and a fresh sample of configs.",
)
scenario_paths_job = dg.define_asset_job(
    SCENARIOS_JOB, selection=dg.AssetSelection.assets("scenario_paths"),
    description="Scenario paths for the scenarios in the run's partition range.",
)
strategy_evaluations_job = dg.define_asset_job(
    EVALUATIONS_JOB, selection=dg.AssetSelection.assets("strategy_evaluations"),
    description="Evaluations of every scenario x config key in the run's range, vectorised.",
)
reports_job = dg.define_asset_job(
    REPORTS_JOB,
    selection=dg.AssetSelection.groups("reports")
    | dg.AssetSelection.checks_for_assets("strategy_evaluations"),
    description="SQL report models, charts, the report and the recommended allocation.",
)

STAGE_JOBS = [weekly_ingest_job, quarterly_ingest_job, scenario_paths_job,
              strategy_evaluations_job, reports_job]
