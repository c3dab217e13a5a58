"""The project's one Definitions object (``dagster dev`` loads it via workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from dynalloc_dagster.assets.ingestion import calibration, market_data, market_data_sanity
from dynalloc_dagster.assets.live import (
    historical_backtest,
    market_regime,
    rule_underperformance,
    todays_allocation,
)
from dynalloc_dagster.assets.reporting import (
    allocation_paths,
    bedrock_report,
    benchmark_evaluations,
    charts,
    cost_sensitivity,
    recommended_allocation,
    report,
)
from dynalloc_dagster.assets.reports import build_report_assets
from dynalloc_dagster.assets.scenarios import market_regimes, scenario_paths
from dynalloc_dagster.assets.strategies import (
    evaluation_completeness,
    optimisation_history,
    strategy_configs,
    strategy_evaluations,
)
from dynalloc_dagster.aws.reaper import ec2_instance_reaper
from dynalloc_dagster.checks import recommended_objectives_compliance
from dynalloc_dagster.environment import Environment, current_environment, resources_for
from dynalloc_dagster.orchestration.jobs import STAGE_JOBS
from dynalloc_dagster.orchestration.monitoring import regime_shift_reoptimisation
from dynalloc_dagster.orchestration.schedules import quarterly_reoptimisation, weekly_refresh
from dynalloc_dagster.orchestration.sensors import pipeline_next_stage


def build_definitions(
    environment: Environment | None = None, *, data_root: str | None = None
) -> dg.Definitions:
    """All assets, checks, jobs, schedules and sensors with the environment's resources;
    on aws also the EC2 instance reaper."""
    report_assets, report_checks = build_report_assets()
    environment = environment or current_environment()
    reaper = [ec2_instance_reaper] if environment == "aws" else []
    return dg.Definitions(
        assets=[market_data, calibration, market_regimes, scenario_paths, strategy_configs,
                strategy_evaluations, optimisation_history, *report_assets, cost_sensitivity,
                recommended_allocation, benchmark_evaluations, allocation_paths, charts,
                bedrock_report, report, historical_backtest, todays_allocation,
                market_regime],
        asset_checks=[market_data_sanity, evaluation_completeness,
                      recommended_objectives_compliance, *report_checks,
                      rule_underperformance],
        jobs=STAGE_JOBS,
        schedules=[weekly_refresh, quarterly_reoptimisation],
        sensors=[pipeline_next_stage, regime_shift_reoptimisation, *reaper],
        resources=resources_for(environment, data_root=data_root),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
