"""The pipeline's stages, their names, and which stage follows which.

Scenario paths (partitioned by scenario) and evaluations (scenario x config batch)
cannot share a job, and a run is created with its partitions, so the pipeline is a
chain of stage runs:

    [ingest, scenario paths] -> round 0: [configs] -> [evaluations, history]
      -> round r = 1, 2, ... until the agent stops: [configs, evaluations, history in one
         run] -> reports

The market data and the scenario paths are one run (``pipeline_start_job``): nothing
needs them apart. Round 0 samples a Latin hypercube batch, whose key (a digest of its
configs) exists only once the configs do, so its evaluations and history follow in one
run of their own (``optimisation_evaluate_round_job``). Every later round is proposed
from the history, and its batch key is known in advance
(:func:`dynalloc_dagster.partitions.next_batch_key`): the chain registers it and runs
the whole round in one run of ``optimisation_full_round_job``. When the evaluations are
split over several runs (``$DYNALLOC_EVALUATIONS_PER_RUN``), every round runs as round
0 does, with its evaluations in several runs and its history after them. After each
history the chain reads the stop reason that run recorded: none means another round, a
reason (converged, max_configs, time_budget) means the reports. The single-stage jobs
(``ingest_job``, ``scenario_paths_job``) chain too, into the stages that follow them.

Runs carry tags: ``dynalloc/pipeline`` (weekly, quarterly or manual; only tagged runs
chain), ``dynalloc/run_config`` (the pipeline-wide run config as JSON, so every stage of
one pipeline uses the same config), ``dynalloc/round`` and, after the first stage,
``dynalloc/pipeline_id`` (the first run's id: the pipeline holding the data root's lease,
:mod:`dynalloc_dagster.storage.lease`). The chaining sensor and
``make run`` both take the next stage from :func:`next_stage_request`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from dynalloc_dagster.assets.strategies import evaluation_keys_per_run
from dynalloc_dagster.orchestration.run_config import validate_run_config
from dynalloc_dagster.partitions import SCENARIOS, batch_partitions, next_batch_key
from dynalloc_dagster.tags import (
    BATCH,
    CONTINUE,
    EVALUATE_ROUND_JOB,
    EVALUATIONS_JOB,
    FULL_ROUND_JOB,
    HISTORY_JOB,
    PIPELINE_ID_TAG,
    PIPELINE_TAG,
    REPORTS_JOB,
    ROUND_JOB,
    ROUND_RUN_TAG,
    ROUND_TAG,
    RUN_CONFIG_TAG,
    SCENARIOS_JOB,
    SPLIT_TAG,
    STAGES,
    START_JOB,
    STOP_REASON,
)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

STRATEGY_CONFIGS = dg.AssetKey("strategy_configs")
OPTIMISATION_HISTORY = dg.AssetKey("optimisation_history")


def with_round(run_config: dict[str, Any], round_index: int) -> dict[str, Any]:
    """The pipeline-wide run config with ``strategy_configs``' round set."""
    ops = dict(run_config.get("ops") or {})
    block = dict(ops.get("strategy_configs") or {})
    block["config"] = {**(block.get("config") or {}), "round": round_index}
    ops["strategy_configs"] = block
    return {**run_config, "ops": ops}


def stage_request(
    job_name: str, instance: dg.DagsterInstance, *, pipeline: str,
    run_config: dict[str, Any] | None = None, round_index: int | None = None,
    batch: str | None = None, scenarios: Sequence[str] = SCENARIOS, run_key: str | None = None,
    pipeline_id: str | None = None, extra_tags: Mapping[str, str] | None = None,
) -> dg.RunRequest:
    """The run request of one stage. ``run_config`` is pipeline-wide and validated first
    (:func:`dynalloc_dagster.orchestration.run_config.validate_run_config`); partitioned
    stages cover their partitions in one run: every scenario, or every scenario of ``batch`` (the
    round's configs), or the ``scenarios`` of ``batch`` when a round's evaluations are
    split over several runs. A whole round
    (``optimisation_full_round_job``) covers every scenario of ``batch``, which it
    registers as a partition first (a run is created only for existing keys).
    ``pipeline_id`` (every stage after the first) names the pipeline whose data-root lease
    the stage must still hold (:mod:`dynalloc_dagster.storage.lease`)."""
    run_config = run_config or {}
    validate_run_config(run_config)
    tags = {PIPELINE_TAG: pipeline, RUN_CONFIG_TAG: json.dumps(run_config, sort_keys=True),
            **(extra_tags or {})}
    if pipeline_id is not None:
        tags[PIPELINE_ID_TAG] = pipeline_id
    if round_index is not None:
        tags[ROUND_TAG] = str(round_index)
    if job_name in (SCENARIOS_JOB, START_JOB):
        tags |= {RANGE_START: SCENARIOS[0], RANGE_END: SCENARIOS[-1]}
    elif job_name == ROUND_JOB:
        run_config = with_round(run_config, round_index or 0)
    elif job_name in (EVALUATIONS_JOB, EVALUATE_ROUND_JOB, FULL_ROUND_JOB):
        if batch is None:
            raise ValueError(f"{job_name} needs the batch of configs to evaluate")
        tags |= evaluation_range_tags(batch, scenarios)
        if job_name == FULL_ROUND_JOB:
            run_config = with_round(run_config, round_index or 0)
            if not instance.has_dynamic_partition(batch_partitions.name, batch):
                instance.add_dynamic_partitions(batch_partitions.name, [batch])
    return dg.RunRequest(job_name=job_name, run_key=run_key, tags=tags, run_config=run_config)


def evaluation_range_tags(batch: str, scenarios: Sequence[str] = SCENARIOS) -> dict[str, str]:
    """Range tags of one run over ``scenarios`` (consecutive, default all) of one batch."""
    return {RANGE_START: f"{batch}|{scenarios[0]}", RANGE_END: f"{batch}|{scenarios[-1]}"}


def scenario_chunks(keys_per_run: int | None) -> list[tuple[str, ...]]:
    """The scenarios of a round's evaluations split into runs of ``keys_per_run``
    scenarios (None: one run for all), in partition order."""
    size = keys_per_run or len(SCENARIOS)
    return [SCENARIOS[i:i + size] for i in range(0, len(SCENARIOS), size)]


def next_stage_request(
    run: dg.DagsterRun, instance: dg.DagsterInstance
) -> list[dg.RunRequest] | dg.SkipReason:
    """The runs that follow a successful run of the chain, or why there are none.

    One run, except after an optimisation round's configs whose evaluations are split
    over several runs (``$DYNALLOC_EVALUATIONS_PER_RUN`` scenarios each, e.g. 1 for one instance per
    scenario on AWS): then one run per chunk of scenarios, tagged with the round's run
    (``dynalloc/round_run``) and their count (``dynalloc/split``); the history stage
    follows once all of them have succeeded, requested once (its run key is the round
    run's)."""
    pipeline = run.tags.get(PIPELINE_TAG)
    if pipeline is None or run.job_name not in STAGES:
        return dg.SkipReason(f"run {run.run_id} is not a chained pipeline stage")
    common = {
        "instance": instance, "pipeline": pipeline,
        "run_config": json.loads(run.tags.get(RUN_CONFIG_TAG, "{}")),
        "pipeline_id": run.tags.get(PIPELINE_ID_TAG, run.run_id),
    }
    round_index = int(run.tags.get(ROUND_TAG, "0"))
    match run.job_name:
        case "ingest_job":
            return [stage_request(SCENARIOS_JOB, **common, run_key=f"{run.run_id}:{SCENARIOS_JOB}")]
        case "pipeline_start_job" | "scenario_paths_job":
            return [stage_request(ROUND_JOB, **common, round_index=0,
                                  run_key=f"{run.run_id}:{ROUND_JOB}")]
        case "optimisation_round_job":
            batch = _run_materialization(instance, run, STRATEGY_CONFIGS)[BATCH]
            chunks = scenario_chunks(evaluation_keys_per_run())
            if len(chunks) == 1:
                return [stage_request(EVALUATE_ROUND_JOB, **common, round_index=round_index,
                                      batch=batch, run_key=f"{run.run_id}:{EVALUATE_ROUND_JOB}")]
            return [
                stage_request(EVALUATIONS_JOB, **common, round_index=round_index, batch=batch,
                              scenarios=chunk, run_key=f"{run.run_id}:{EVALUATIONS_JOB}:{i}",
                              extra_tags={ROUND_RUN_TAG: run.run_id, SPLIT_TAG: str(len(chunks))})
                for i, chunk in enumerate(chunks)
            ]
        case "strategy_evaluations_job":
            round_run = run.tags.get(ROUND_RUN_TAG, run.run_id)
            waiting = _unfinished_siblings(instance, run, round_run)
            if waiting:
                return dg.SkipReason(waiting)
            return [stage_request(HISTORY_JOB, **common, round_index=round_index,
                                  run_key=f"{round_run}:{HISTORY_JOB}")]
        case ("optimisation_history_job" | "optimisation_evaluate_round_job"
              | "optimisation_full_round_job"):
            scored = _run_materialization(instance, run, OPTIMISATION_HISTORY)
            if scored[STOP_REASON] != CONTINUE:
                return [stage_request(REPORTS_JOB, **common,
                                      run_key=f"{run.run_id}:{REPORTS_JOB}")]
            if len(scenario_chunks(evaluation_keys_per_run())) > 1:
                return [stage_request(ROUND_JOB, **common, round_index=round_index + 1,
                                      run_key=f"{run.run_id}:{ROUND_JOB}")]
            return [stage_request(FULL_ROUND_JOB, **common, round_index=round_index + 1,
                                  batch=next_batch_key(scored[BATCH]),
                                  run_key=f"{run.run_id}:{FULL_ROUND_JOB}")]
        case _:
            return dg.SkipReason(f"{run.job_name} is the last stage")


def _unfinished_siblings(instance: dg.DagsterInstance, run: dg.DagsterRun,
                         round_run: str) -> str | None:
    """Why the history cannot follow yet, or None when every evaluation run of the round
    has succeeded."""
    expected = int(run.tags.get(SPLIT_TAG, "1"))
    if expected == 1:
        return None
    siblings = instance.get_runs(filters=dg.RunsFilter(
        job_name=EVALUATIONS_JOB, tags={ROUND_RUN_TAG: round_run}))
    done = sum(r.status == dg.DagsterRunStatus.SUCCESS for r in siblings)
    if done < expected:
        return f"{done} of the round's {expected} evaluation runs have succeeded"
    return None


def _run_materialization(
    instance: dg.DagsterInstance, run: dg.DagsterRun, asset_key: dg.AssetKey
) -> dict[str, Any]:
    """The metadata of ``asset_key``'s materialization in ``run``: what this run decided,
    whatever other runs materialized since."""
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key == asset_key:
            return {key: value.value for key, value in materialization.metadata.items()}
    raise ValueError(f"run {run.run_id} ({run.job_name}) did not materialize"
                     f" {asset_key.to_user_string()}")
