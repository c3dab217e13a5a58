"""One pipeline at a time per data root: a lease on the data root, kept by the instance.

Two pipelines writing one data root interleave their stages (pipeline A's evaluations
would evaluate pipeline B's configs) and both report success. The lease makes the second
one refuse with a clear error instead. It is taken and checked when a run's IO managers
are initialised (before any step writes anything), for every run however it was launched
(``make run``, the chaining sensor through the daemon, the UI's Materialize, the CLI):

* a pipeline's first stage (tag ``dynalloc/pipeline`` without ``dynalloc/pipeline_id``)
  takes the lease for the pipeline, whose id is that run's id; every later stage carries
  it in ``dynalloc/pipeline_id`` (``stages.next_stage_request``) and must find the lease
  still naming that pipeline;
* a run outside a pipeline (a single-asset Materialize, a backfill) takes the lease for
  itself while it runs and gives it back at its end;
* the pipeline's reports stage gives the lease back at its end;
* a lease whose holder is no longer live (:func:`holder_live`) is stale: it is taken over,
  with a log line naming the old holder.

The lease is a JSON record in the Dagster instance's key-value store under
``dynalloc/lease:<data root with symlinks resolved>`` (one folder reached through a
symlinked path is one lease; nothing is written into the data root, so a run
refused or failing before its first step leaves the data root untouched); every
read-decide-write holds an exclusive ``flock`` on ``<DAGSTER_HOME>/.dynalloc-lease.lock``,
so two processes deciding at once see each other. One data root is used through one
Dagster instance (the one whose runs the staleness rule reads). Local data roots only: on
S3 (``s3://``) no lease is taken.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg

from dynalloc_dagster.tags import PIPELINE_ID_TAG, PIPELINE_TAG, REPORTS_JOB
from dynalloc_dagster.workers import process_alive, worker_start

LEASE_KEY = "dynalloc/lease:"
LOCK_FILE = ".dynalloc-lease.lock"
CHAIN_GRACE_S = 300.0
"""How long after a pipeline's last stage ended its lease stays held while a daemon is
running (the chaining sensor requests the next stage within its 30 s interval)."""
DAEMON_FRESH_S = 120.0  # a sensor-daemon heartbeat younger than this: a daemon is running
_ACTIVE = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
           dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
           dg.DagsterRunStatus.CANCELING}


class DataRootInUseError(Exception):
    """The data root is leased to another pipeline or run."""


@dataclass(frozen=True)
class Lease:
    """Who holds a data root: a pipeline (id = its first run's id) or a single run."""

    pipeline_id: str
    kind: str  # "pipeline" or "run"
    run_id: str  # the run that took the lease
    job_name: str
    started_at: str  # ISO 8601, UTC
    host: str
    pid: int

    def describe(self, root: str) -> str:
        what = "pipeline" if self.kind == "pipeline" else "run"
        return (f"data root {root} is in use by {what} {self.pipeline_id} started"
                f" {self.started_at} (run {self.run_id}, {self.job_name})")


def lease_key(root: str | os.PathLike[str]) -> str:
    """The instance key-value key of ``root``'s lease: its absolute path with every
    symlink resolved, so every path to one folder names one lease."""
    return LEASE_KEY + os.path.realpath(root)


def read_lease(instance: dg.DagsterInstance, root: str | os.PathLike[str]) -> Lease | None:
    """The lease of ``root``, or None when it is free."""
    key = lease_key(root)
    value = instance.run_storage.get_cursor_values({key}).get(key)
    return Lease(**json.loads(value)) if value else None


def pipeline_id_of(run: dg.DagsterRun) -> tuple[str, str, bool]:
    """(lease holder id, kind, first) of ``run``: a later pipeline stage's pipeline id, a
    first stage's own run id (it starts the pipeline), or a lone run's own id."""

    if PIPELINE_ID_TAG in run.tags:
        return run.tags[PIPELINE_ID_TAG], "pipeline", False
    if PIPELINE_TAG in run.tags:
        return run.run_id, "pipeline", True
    return run.run_id, "run", True


def acquire_for_run(instance: dg.DagsterInstance, run: dg.DagsterRun, root: str,
                    log: dg.DagsterLogManager | None = None) -> Lease:
    """Take or confirm the lease of ``root`` for ``run`` (see the module docstring).

    Raises
    ------
    DataRootInUseError
        Another live pipeline or run holds the lease, or a later stage finds the lease no
        longer names its pipeline.
    """
    holder_id, kind, first = pipeline_id_of(run)
    with _locked(instance):
        current = read_lease(instance, root)
        if current is not None and current.pipeline_id == holder_id:
            return current
        if not first:
            now = "free" if current is None else current.describe(root)
            raise DataRootInUseError(
                f"run {run.run_id} ({run.job_name}) is a stage of pipeline {holder_id}, but"
                f" the data root is no longer leased to it (now: {now}): its earlier stages'"
                " outputs may have been replaced; start the pipeline again")
        if current is not None:
            live, why = holder_live(instance, current)
            if live:
                raise DataRootInUseError(
                    f"{current.describe(root)}; wait for it to finish ({why}), or launch"
                    " this on another data root (DYNALLOC_DATA_ROOT); a lease whose runs"
                    " have all ended is taken over automatically")
            if log is not None:
                log.warning(f"taking over the stale lease of {root}: {current.kind}"
                            f" {current.pipeline_id} (run {current.run_id}) is over ({why})")
        lease = Lease(pipeline_id=holder_id, kind=kind, run_id=run.run_id,
                      job_name=run.job_name,
                      started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                      host=socket.gethostname(), pid=os.getpid())
        instance.run_storage.set_cursor_values(
            {lease_key(root): json.dumps(asdict(lease), sort_keys=True)})
        return lease


def release_after_run(instance: dg.DagsterInstance, run: dg.DagsterRun, root: str) -> bool:
    """Give the lease back at the end of a lone run or of a pipeline's reports stage;
    True if it was released."""

    holder_id, kind, _ = pipeline_id_of(run)
    if kind == "pipeline" and run.job_name != REPORTS_JOB:
        return False
    return release(instance, root, holder_id)


def release(instance: dg.DagsterInstance, root: str, holder_id: str) -> bool:
    """Free the lease of ``root`` if ``holder_id`` holds it; True if it did."""
    with _locked(instance):
        current = read_lease(instance, root)
        if current is None or current.pipeline_id != holder_id:
            return False
        instance.run_storage.set_cursor_values({lease_key(root): ""})
        return True


def holder_live(instance: dg.DagsterInstance, lease: Lease) -> tuple[bool, str]:
    """Whether the lease's holder may still write, and why.

    Live: one of its runs is queued or in progress (a STARTED run only while its worker
    process is alive); or, for a pipeline, none of its runs failed, the reports stage has
    not succeeded, a daemon is running (its chaining sensor will request the next stage)
    and the last stage ended less than ``CHAIN_GRACE_S`` ago."""
    runs = _holder_runs(instance, lease)
    if not runs:
        return False, "none of its runs is in this instance"
    active = [r for r in runs if r.status in _ACTIVE]
    for run in active:
        if _worker_alive(instance, run):
            return True, f"run {run.run_id} ({run.job_name}) is {run.status.value}"
    if lease.kind != "pipeline":
        return False, "its run has ended"

    ended = [r for r in runs if r.status not in _ACTIVE]
    if active or any(r.status != dg.DagsterRunStatus.SUCCESS for r in ended):
        return False, "a stage failed, was canceled or its worker died"
    if any(r.job_name == REPORTS_JOB for r in ended):
        return False, "its reports stage finished"
    records = instance.get_run_records(
        dg.RunsFilter(run_ids=[r.run_id for r in ended]), limit=len(ended))
    last_end = max((r.end_time or 0.0) for r in records) if records else 0.0
    if not _daemon_running(instance):
        return False, "its last stage ended and no daemon is running to chain the next"
    if time.time() - last_end > CHAIN_GRACE_S:
        return False, f"no next stage within {CHAIN_GRACE_S:.0f} s of its last stage"
    return True, "its next stage is due"


def _holder_runs(instance: dg.DagsterInstance, lease: Lease) -> list[dg.DagsterRun]:
    runs = {r.run_id: r for r in instance.get_runs(
        dg.RunsFilter(tags={PIPELINE_ID_TAG: lease.pipeline_id}))}
    first = instance.get_run_by_id(lease.pipeline_id)
    if first is not None:
        runs[first.run_id] = first
    return list(runs.values())


def _worker_alive(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    if run.status != dg.DagsterRunStatus.STARTED:
        return True
    started = worker_start(instance, run.run_id)
    return started is None or process_alive(started[0], not_after=started[1])[0]


def _daemon_running(instance: dg.DagsterInstance) -> bool:
    beat = instance.get_daemon_heartbeats().get("SENSOR")
    return beat is not None and time.time() - beat.timestamp < DAEMON_FRESH_S


@contextmanager
def _locked(instance: dg.DagsterInstance) -> Iterator[None]:
    folder = Path(instance.root_directory)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_local(location: str) -> bool:
    """Whether a storage location is a local folder (the lease works there only)."""
    return "://" not in location or location.startswith("file://")


def hold_data_root(context: dg.InitResourceContext, location: str) -> None:
    """At a run's start (an IO manager's ``setup_for_execution``): take or confirm the
    lease of the local data root ``location``; raise DataRootInUseError otherwise."""
    run, instance = context.dagster_run, context.instance
    if run is None or instance is None or not is_local(location):
        return
    acquire_for_run(instance, run, location.removeprefix("file://"), context.log)


def end_of_run(context: dg.InitResourceContext, location: str) -> None:
    """At a run's end (``teardown_after_execution``): release the lease of a lone run or of
    a pipeline's reports stage."""
    run = context.dagster_run
    if run is None or context.instance is None or not is_local(location):
        return
    release_after_run(context.instance, run, location.removeprefix("file://"))
