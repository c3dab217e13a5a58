"""``python -m dynalloc_dagster``: run the whole pipeline through the Dagster instance.

Usage: python -m dynalloc_dagster [--config run.yaml] [--pipeline NAME]

Runs ingest, scenario paths, the optimisation rounds until the agent stops, then the
reports, each stage a run created on the code location of workspace.yaml and executed in
this process (the runs appear on the UI's timeline and job pages, like scheduled runs),
and prints where the report is and today's weights.

DAGSTER_HOME: the instance's folder; when unset, the project's dagster_home/ (SQLite,
the local run launcher). DYNALLOC_DATA_ROOT: where assets are stored (default ./data).

A worked example run.yaml (every section and field optional; unknown ones are refused
before any run starts, naming the field and its allowed range):

  ops:
    market_data:
      config: {as_of: "2026-11-20"}          # ISO date; default today (UTC)
    scenario_paths:
      config: {n_paths: 200, horizon_years: 2, seed: 7}
  resources:
    agent:
      config: {proposer: tpe, initial_batch: 16, batch_size: 8, max_configs: 40, seed: 7}
    objectives:
      config: {target_vol: 0.10, assumed_tc_bps: 10}
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from dynalloc_dagster import PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "dagster_home"
BETA_NOTICE = "Parameter `backfill_policy` of function `asset` is currently in beta"


def parser(prog: str = "python -m dynalloc_dagster") -> argparse.ArgumentParser:
    build = argparse.ArgumentParser(prog=prog, description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--config", type=Path, metavar="YAML",
                       help="pipeline-wide run config: {ops: {asset: {config: {...}}},"
                       " resources: {resource: {config: {...}}}} (example above)")
    build.add_argument("--pipeline", default="manual", metavar="NAME",
                       help="the dynalloc/pipeline tag of the runs (default: manual)")
    return build


def main(argv: list[str] | None = None, *, prog: str = "python -m dynalloc_dagster") -> int:
    args = parser(prog).parse_args(argv)
    os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME))
    # the code server and the run workers are child processes: quiet there too
    os.environ["PYTHONWARNINGS"] = ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), f"ignore:{BETA_NOTICE}"]))

    import dagster as dg

    from dynalloc_dagster.orchestration.pipeline import launch_pipeline
    from dynalloc_dagster.orchestration.run_config import validate_run_config
    from engine.validation import ConfigError

    try:
        run_config = read_config(args.config) if args.config else {}
        validate_run_config(run_config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with dg.DagsterInstance.get() as instance:
        runs = launch_pipeline(instance, pipeline=args.pipeline, run_config=run_config)
        print(summary(instance, runs))
    return 0 if runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs) else 1


def summary(instance: Any, runs: list[Any]) -> str:
    """The console summary: each stage run, then the report, the rule's mandate status
    and today's weights."""
    import dagster as dg

    lines = ["", "dynalloc pipeline", f"  instance: {os.environ.get('DAGSTER_HOME')}"]
    for run in runs:
        lines.append(f"  {run.job_name:<26} round {run.tags.get('dynalloc/round', '-'):>3}"
                     f"  {run.status.value:<8} {run.run_id}")
    if not runs or runs[-1].status != dg.DagsterRunStatus.SUCCESS:
        failed = runs[-1] if runs else None
        lines.append(f"  FAILED: {failed.job_name if failed else 'no run'}; see the run in the"
                     " UI (make dev) or `dagster run list`")
        return "\n".join(lines)
    report = _metadata(instance, "report")
    allocation = _metadata(instance, "recommended_allocation")
    lines += [
        f"  report:   {report.get('uri', 'n/a')}",
        f"  pdf:      {report.get('pdf', 'n/a')}",
        *textwrap.wrap(f"mandate:  {allocation.get('mandate_status', 'n/a')}", 96,
                       initial_indent="  ", subsequent_indent=" " * 12),
        f"  rule:     {allocation.get('rule', 'n/a')} (config {allocation.get('config_id')})",
    ]
    today = allocation.get("today") or (
        f"equity {allocation.get('equity', 'n/a')},"
        f" {allocation.get('defensive_leg', 'non-equity leg')}"
        f" {allocation.get('defensive_weight', 'n/a')}")
    lines.append(f"  today:    {today} (as of {allocation.get('as_of')};"
                 f" {allocation.get('data_source', '')})")
    return "\n".join(lines)


def _metadata(instance: Any, asset: str) -> dict[str, Any]:
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def read_config(path: Path) -> dict[str, Any]:
    """The run config in a YAML file; ConfigError naming the file when it is not one or
    gives a key twice."""
    import yaml

    from dynalloc_dagster.orchestration.run_config import RunConfigLoader
    from engine.validation import ConfigError

    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=RunConfigLoader)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the run config: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the run config must be a mapping, got {type(loaded).__name__}")
    return loaded

