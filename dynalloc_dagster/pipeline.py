"""Run the whole pipeline in this process, stage after stage, as the sensor would chain it.

``python -m dynalloc_dagster.pipeline [--config run.yaml]`` (``make run``) runs ingest,
scenario paths, the optimisation rounds until the agent stops, and the reports, against
the instance in ``$DAGSTER_HOME``. The stage order lives in :mod:`dynalloc_dagster.stages`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from dynalloc_dagster.run_config import validate_run_config
from dynalloc_dagster.stages import INGEST_JOB, next_stage_request, stage_request
from engine.validation import ConfigError

MAX_STAGE_RUNS = 10_000


def run_pipeline(
    defs: dg.Definitions, instance: dg.DagsterInstance, *, pipeline: str = "manual",
    run_config: dict | None = None,
) -> list[dg.DagsterRun]:
    """Run the stages in order in this process; stop at the first failure.

    The whole run config is validated before the first stage starts."""
    run_config = run_config or {}
    validate_run_config(run_config)
    request: dg.RunRequest | dg.SkipReason = stage_request(
        INGEST_JOB, instance, pipeline=pipeline, run_config=run_config)
    runs: list[dg.DagsterRun] = []
    while isinstance(request, dg.RunRequest) and len(runs) < MAX_STAGE_RUNS:
        job = defs.resolve_job_def(request.job_name)
        result = job.execute_in_process(
            instance=instance, tags=request.tags,
            run_config=job_run_config(job, request.run_config),
            raise_on_error=False,
        )
        runs.append(result.dagster_run)
        if not result.success:
            break
        request = next_stage_request(result.dagster_run, instance)
    return runs


def job_run_config(job: dg.JobDefinition, run_config: dict[str, Any]) -> dict[str, Any]:
    """The part of a pipeline-wide run config this job uses, with the console logger at
    INFO (a 500-key run's per-event DEBUG lines cost seconds)."""
    config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    names = {node.name for node in job.graph.node_dict.values()}
    ops = {k: v for k, v in (run_config.get("ops") or {}).items() if k in names}
    if ops:
        config["ops"] = ops
    required = job.resource_defs
    resources = {k: v for k, v in (run_config.get("resources") or {}).items() if k in required}
    if resources:
        config["resources"] = resources
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynalloc_dagster.pipeline",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, metavar="YAML",
                        help="pipeline-wide run config: {ops: {asset: {config: {...}}},"
                        " resources: {resource: {config: {...}}}}")
    args = parser.parse_args(argv)
    try:
        run_config = _read_config(args.config) if args.config else {}
        validate_run_config(run_config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from dynalloc_dagster.definitions import defs

    with dg.DagsterInstance.get() as instance:
        runs = run_pipeline(defs, instance, run_config=run_config)
    for run in runs:
        print(f"{run.job_name:<28} {run.tags.get('dynalloc/round', ''):>3}"
              f" {run.status.value:<8} {run.run_id}")
    return 0 if runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs) else 1


def _read_config(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the run config: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the run config must be a mapping, got {type(loaded).__name__}")
    return loaded


if __name__ == "__main__":
    sys.exit(main())
