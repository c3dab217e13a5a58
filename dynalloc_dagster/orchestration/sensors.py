"""The sensor that chains the pipeline's stages, optimisation rounds included."""

from __future__ import annotations

import dagster as dg

from dynalloc_dagster.orchestration.jobs import STAGE_JOBS
from dynalloc_dagster.orchestration.stages import next_stage_request


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_jobs=STAGE_JOBS,
    name="pipeline_next_stage",
    description="When a tagged pipeline stage succeeds, launch the next stage: after each"
    " optimisation history, another round until the agent stops, then the reports.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def pipeline_next_stage(context: dg.RunStatusSensorContext):
    return next_stage_request(context.dagster_run, context.instance)
