"""Helpers of the Dagster tests (conftest.py holds the fixtures): small run configs,
running a job in process, reading failures, snapshotting stored files.

A plain module with a unique name: the test folders are not packages (a
``tests/dagster/__init__.py`` would make pytest import the tests as ``dagster.*``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from dynalloc_dagster.orchestration.pipeline import job_run_config

REPO_ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-20"
N_PATHS = 50
HORIZON_YEARS = 1
WARMUP_MONTHS = 24  # >= the longest vol window sampled (24 months)
N_CONFIGS = 8  # round 0's Latin hypercube batch
BATCH_SIZE = 4
MAX_CONFIGS = 16  # so the loop stops at max_configs after rounds 0, 1 and 2
POLL_S = 1  # run monitoring and queue interval of the daemons' test instances


def small_run_config(
    *, n_paths: int = N_PATHS, seed: int = 0, initial_batch: int = N_CONFIGS,
    batch_size: int = BATCH_SIZE, max_configs: int = MAX_CONFIGS, proposer: str = "tpe",
) -> dict[str, Any]:
    """A pipeline-wide run config ({"ops": ..., "resources": ...}) sized for tests."""
    return {
        "ops": {
            "market_data": {"config": {"as_of": AS_OF}},
            "scenario_paths": {"config": {"n_paths": n_paths, "horizon_years": HORIZON_YEARS,
                                          "warmup_months": WARMUP_MONTHS, "seed": seed}},
        },
        "resources": {
            "agent": {"config": {"initial_batch": initial_batch, "batch_size": batch_size,
                                 "max_configs": max_configs, "seed": seed,
                                 "proposer": proposer}},
        },
    }


def polling_home(home: Path) -> None:
    """A DAGSTER_HOME in ``home`` with the project's dagster.yaml (the queued run
    coordinator, the local launcher, run monitoring), its daemon polling the run queue and
    monitoring in-progress runs every ``POLL_S`` seconds instead of 5 and 30."""
    config = yaml.safe_load((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    assert config["run_launcher"]["class"] == "LocalRunLauncher"
    assert config["run_monitoring"]["enabled"] is True
    config["run_monitoring"]["poll_interval_seconds"] = POLL_S
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = POLL_S
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def once_per_session(
    tmp_path_factory: Any, name: str, produce: Callable[[Path], dict[str, Any]],
) -> tuple[Path, dict[str, Any]]:
    """``produce(folder)`` once per test session however many xdist workers ask: the first
    to ask runs it into ``<session temp>/<name>`` (the folder above every worker's own) and
    stores its JSON-able result; a worker asking meanwhile waits on a lock, one asking
    later reads the result. Returns the folder and the result. ``tmp_path_factory`` is
    pytest's fixture of that name."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder, done = base / name, base / f"{name}.json"
    with (base / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            folder.mkdir()
            done.write_text(json.dumps(produce(folder)))
        return folder, json.loads(done.read_text())


def run_job(
    defs: dg.Definitions, job_name: str, instance: dg.DagsterInstance, *,
    run_config: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
    partition_key: str | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute one of the project's jobs in process; failures are returned, not raised.
    ``run_config`` may be pipeline-wide: only the job's ops are passed on."""
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        instance=instance, run_config=job_run_config(job, run_config or {}),
        tags=tags, partition_key=partition_key, raise_on_error=False,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure of a run, causes included, as one string."""
    return "\n".join(
        event.step_failure_data.error.to_string()
        for event in result.all_events
        if event.is_step_failure
    )


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """{relative path: (mtime_ns, sha256)} of every file under ``root``."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns,
                                      hashlib.sha256(path.read_bytes()).hexdigest())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@dataclass(frozen=True)
class Upstream:
    """Materialized inputs of strategy_evaluations: market data, regimes, paths, and the
    configs of round 0 (one batch)."""

    root: Path
    batch: str
    config_ids: list[str]
