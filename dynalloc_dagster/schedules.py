"""Weekly refresh and quarterly re-optimization schedules (UTC)."""

from __future__ import annotations

import dagster as dg

from dynalloc_dagster.pipeline import QUARTERLY_INGEST_JOB, WEEKLY_INGEST_JOB, stage_request


@dg.schedule(
    cron_schedule="0 6 * * 1",
    execution_timezone="UTC",
    job_name=WEEKLY_INGEST_JOB,
    name="weekly_refresh",
    description="Mondays 06:00 UTC: market data -> calibration -> scenarios -> evaluations"
    " of the existing configs -> reports.",
)
def weekly_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    tick = context.scheduled_execution_time
    as_of = tick.date().isoformat()
    return stage_request(
        WEEKLY_INGEST_JOB, context.instance, pipeline="weekly", run_key=f"weekly-{as_of}",
        run_config={"ops": {"market_data": {"config": {"as_of": as_of}}}},
    )


@dg.schedule(
    cron_schedule="0 6 1 1,4,7,10 *",
    execution_timezone="UTC",
    job_name=QUARTERLY_INGEST_JOB,
    name="quarterly_reoptimization",
    description="First day of Jan/Apr/Jul/Oct 06:00 UTC: a fresh Latin hypercube sample of"
    " configs (seeded by the date), then everything downstream.",
)
def quarterly_reoptimization(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    tick = context.scheduled_execution_time
    as_of = tick.date().isoformat()
    return stage_request(
        QUARTERLY_INGEST_JOB, context.instance, pipeline="quarterly",
        run_key=f"quarterly-{as_of}",
        run_config={"ops": {
            "market_data": {"config": {"as_of": as_of}},
            "strategy_configs": {"config": {"seed": int(tick.strftime("%Y%m%d"))}},
        }},
    )
