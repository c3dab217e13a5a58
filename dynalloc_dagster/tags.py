"""The names the pipeline's runs and stages agree on: run tags, stage job names and the
metadata keys a stage reads from the run before it. One definition each; every module
that tags, chains or leases runs takes them from here (docs/dagster.md)."""

from __future__ import annotations

PIPELINE_TAG = "dynalloc/pipeline"
"""weekly, quarterly or manual; only runs carrying it chain."""
PIPELINE_ID_TAG = "dynalloc/pipeline_id"
"""The first run's id, on every later stage: the pipeline holding the data root's lease."""
RUN_CONFIG_TAG = "dynalloc/run_config"
"""The pipeline-wide run config as JSON, so every stage of one pipeline uses the same config."""
ROUND_TAG = "dynalloc/round"
ROUND_RUN_TAG = "dynalloc/round_run"
SPLIT_TAG = "dynalloc/split"

START_JOB = "pipeline_start_job"
"""The first run of a pipeline: ingest and every scenario's paths."""
INGEST_JOB = "ingest_job"
SCENARIOS_JOB = "scenario_paths_job"
ROUND_JOB = "optimisation_round_job"
EVALUATIONS_JOB = "strategy_evaluations_job"
HISTORY_JOB = "optimisation_history_job"
FULL_ROUND_JOB = "optimisation_full_round_job"
EVALUATE_ROUND_JOB = "optimisation_evaluate_round_job"
"""A round whose configs exist (round 0's): its evaluations and history in one run."""
REPORTS_JOB = "reports_job"
STAGES = (START_JOB, INGEST_JOB, SCENARIOS_JOB, ROUND_JOB, EVALUATIONS_JOB, HISTORY_JOB,
          EVALUATE_ROUND_JOB, FULL_ROUND_JOB, REPORTS_JOB)

BATCH = "batch"
"""strategy_configs' and optimisation_history's metadata key: the batch of the round the
run proposed or scored (the dynamic partition strategy_configs added)."""
STOP_REASON = "stop_reason"
"""optimisation_history's metadata key: CONTINUE or the reason the agent stopped."""
CONTINUE = "continue"
