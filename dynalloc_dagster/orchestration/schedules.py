"""Weekly refresh and quarterly re-optimisation schedules (UTC). Both start a pipeline
whose optimisation loop runs to its stop; the quarterly one seeds the agent by the date."""

from __future__ import annotations

import dagster as dg

from dynalloc_dagster.orchestration.stages import stage_request
from dynalloc_dagster.tags import START_JOB


@dg.schedule(
    cron_schedule="0 6 * * 1",
    execution_timezone="UTC",
    job_name=START_JOB,
    name="weekly_refresh",
    description="Mondays 06:00 UTC: market data -> calibration -> scenarios -> the"
    " optimisation loop (same seed as last week) -> reports.",
)
def weekly_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    as_of = context.scheduled_execution_time.date().isoformat()
    return stage_request(
        START_JOB, context.instance, pipeline="weekly", run_key=f"weekly-{as_of}",
        run_config={"ops": {"market_data": {"config": {"as_of": as_of}}}},
    )


@dg.schedule(
    cron_schedule="0 6 1 1,4,7,10 *",
    execution_timezone="UTC",
    job_name=START_JOB,
    name="quarterly_reoptimisation",
    description="First day of Jan/Apr/Jul/Oct 06:00 UTC: everything, with the optimisation"
    " agent seeded by the date (a fresh search).",
)
def quarterly_reoptimisation(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    tick = context.scheduled_execution_time
    as_of = tick.date().isoformat()
    return stage_request(
        START_JOB, context.instance, pipeline="quarterly", run_key=f"quarterly-{as_of}",
        run_config={
            "ops": {"market_data": {"config": {"as_of": as_of}}},
            "resources": {"agent": {"config": {"seed": int(tick.strftime("%Y%m%d"))}}},
        },
    )
