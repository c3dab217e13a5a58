"""The pipeline's stages and how one stage's success requests the next.

Scenario paths (partitioned by scenario) and evaluations (scenario x config) have
different partitions, so Dagster cannot run them in one job: the pipeline is four
jobs chained by a run-status sensor, each stage one run covering all its partitions:

    ingest (market data, calibration, regimes [, configs]) -> scenario_paths (all
    scenarios) -> strategy_evaluations (all scenario x config keys) -> reports.

Runs carry the tag ``dynalloc/pipeline`` (``weekly``, ``quarterly`` or ``manual``);
only tagged runs chain. ``python -m dynalloc_dagster.pipeline`` runs the stages in
order in this process against the instance in ``$DAGSTER_HOME`` (``make run``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
import yaml

from dynalloc_dagster.assets.ingestion import MarketDataConfig
from dynalloc_dagster.assets.scenarios import MarketRegimesConfig, ScenarioPathsConfig
from dynalloc_dagster.assets.strategies import EvaluationConfig, StrategyConfigsConfig
from dynalloc_dagster.partitions import SCENARIOS, config_partitions
from engine.validation import ConfigError

PIPELINE_TAG = "dynalloc/pipeline"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

WEEKLY_INGEST_JOB = "weekly_ingest_job"
QUARTERLY_INGEST_JOB = "quarterly_ingest_job"
SCENARIOS_JOB = "scenario_paths_job"
EVALUATIONS_JOB = "strategy_evaluations_job"
REPORTS_JOB = "reports_job"
NEXT_STAGE = {
    WEEKLY_INGEST_JOB: SCENARIOS_JOB,
    QUARTERLY_INGEST_JOB: SCENARIOS_JOB,
    SCENARIOS_JOB: EVALUATIONS_JOB,
    EVALUATIONS_JOB: REPORTS_JOB,
}


CONFIG_CLASSES: dict[str, type[dg.Config]] = {
    "market_data": MarketDataConfig,
    "market_regimes": MarketRegimesConfig,
    "scenario_paths": ScenarioPathsConfig,
    "strategy_configs": StrategyConfigsConfig,
    "strategy_evaluations": EvaluationConfig,
}


def validate_run_config(run_config: dict[str, Any]) -> None:
    """Check a pipeline-wide run config ({"ops": {asset: {"config": {...}}}}) against every
    asset's Config class, ranges included, before any run starts.

    Dagster itself checks only the shape and types when a run is launched; ranges are
    checked when the owning step starts. Everything this module launches (``make run``,
    the schedules, the chaining sensor) calls this first, so a bad value fails before
    any work, with an error naming the asset and the field.
    """
    unknown_top = sorted(set(run_config) - {"ops", "loggers"})
    if unknown_top:
        raise ConfigError(f"run config: unknown section(s) {', '.join(unknown_top)}")
    for name, block in (run_config.get("ops") or {}).items():
        config_class = CONFIG_CLASSES.get(name)
        if config_class is None:
            raise ConfigError(
                f"run config ops.{name}: not a configurable asset; configurable:"
                f" {', '.join(CONFIG_CLASSES)}"
            )
        values = (block or {}).get("config", {})
        try:
            config_class(**values)
        except pydantic.ValidationError as error:
            details = "; ".join(_describe(e) for e in error.errors())
            raise ConfigError(f"run config ops.{name}.config: {details}") from None


def _describe(error: Any) -> str:
    """One pydantic error as '<field>: <message> (got <value>)', or the message alone
    for a check of the whole config (whose message names its field)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {message} (got {error.get('input')!r})"


def stage_request(job_name: str, instance: dg.DagsterInstance, *, pipeline: str,
                  run_key: str | None = None,
                  run_config: dict | None = None) -> dg.RunRequest:
    """The run request of one stage: partitioned stages cover every partition in one run.
    The run config is validated first (:func:`validate_run_config`)."""
    validate_run_config(run_config or {})
    tags = {PIPELINE_TAG: pipeline}
    if job_name == SCENARIOS_JOB:
        tags |= {RANGE_START: SCENARIOS[0], RANGE_END: SCENARIOS[-1]}
    elif job_name == EVALUATIONS_JOB:
        config_ids = instance.get_dynamic_partitions(config_partitions.name)
        if not config_ids:
            raise ValueError("no strategy configs registered: materialize strategy_configs first")
        tags |= {
            RANGE_START: f"{config_ids[0]}|{SCENARIOS[0]}",
            RANGE_END: f"{config_ids[-1]}|{SCENARIOS[-1]}",
        }
    return dg.RunRequest(job_name=job_name, run_key=run_key, tags=tags,
                         run_config=run_config or {})


def next_stage_request(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """The body of the ``pipeline_next_stage`` sensor (dynalloc_dagster.sensors)."""
    run = context.dagster_run
    pipeline = run.tags.get(PIPELINE_TAG)
    next_job = NEXT_STAGE.get(run.job_name)
    if pipeline is None or next_job is None:
        return dg.SkipReason(f"run {run.run_id} is not a chained pipeline stage")
    return stage_request(next_job, context.instance, pipeline=pipeline,
                         run_key=f"{run.run_id}:{next_job}")


def run_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, *, quarterly: bool,
                 run_config: dict | None = None) -> list[dg.DagsterRun]:
    """Run the four stages in order in this process; stop at the first failure.

    The whole run config is validated before the first stage starts."""
    validate_run_config(run_config or {})
    first = QUARTERLY_INGEST_JOB if quarterly else WEEKLY_INGEST_JOB
    pipeline = "quarterly" if quarterly else "manual"
    runs = []
    job_name: str | None = first
    while job_name is not None:
        request = stage_request(job_name, instance, pipeline=pipeline)
        job = defs.resolve_job_def(job_name)
        config = job_run_config(job, run_config or {})
        result = job.execute_in_process(instance=instance, tags=request.tags,
                                        run_config=config, raise_on_error=False)
        runs.append(result.dagster_run)
        if not result.success:
            break
        job_name = NEXT_STAGE.get(job_name)
    return runs


def job_run_config(job: dg.JobDefinition, run_config: dict) -> dict:
    """The part of a pipeline-wide run config ({"ops": {asset: ...}}) this job uses, with
    the console logger at INFO (a 500-key run's per-event DEBUG lines cost seconds)."""
    ops = run_config.get("ops", {})
    names = {node.name for node in job.graph.node_dict.values()}
    config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if ops:
        config["ops"] = {k: v for k, v in ops.items() if k in names}
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynalloc_dagster.pipeline",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weekly", action="store_true",
                        help="refresh with the existing configs (default: sample configs too)")
    parser.add_argument("--config", type=Path, metavar="YAML",
                        help='run config for the assets: {ops: {asset: {config: {...}}}}')
    args = parser.parse_args(argv)
    run_config = yaml.safe_load(args.config.read_text()) or {} if args.config else {}
    try:
        validate_run_config(run_config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy")
    from dynalloc_dagster.definitions import defs

    with dg.DagsterInstance.get() as instance:
        runs = run_pipeline(defs, instance, quarterly=not args.weekly, run_config=run_config)
    for run in runs:
        print(f"{run.job_name:<28} {run.status.value:<8} {run.run_id}")
    return 0 if runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
