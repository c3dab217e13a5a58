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

The lease is a JSON record kept by a :class:`LeaseStore`, one logic over two stores, each
changing the record only by compare-and-swap (a run reads the record, decides, and writes
only if the record is unchanged; on a lost race it reads again and decides again):

* a local data root: the Dagster instance's key-value store under
  ``dynalloc/lease:<data root with symlinks resolved>`` (one folder reached through a
  symlinked path is one lease; nothing is written into the data root, so a run refused or
  failing before its first step leaves the data root untouched); each swap holds an
  exclusive ``flock`` on ``<DAGSTER_HOME>/.dynalloc-lease.lock``;
* an S3 data root (``s3://bucket/prefix``): the object ``<prefix>/_lease.json`` in the
  data root's bucket (SSE-KMS like every object), taken with ``PutObject`` and
  ``IfNoneMatch='*'`` (S3 answers 412 PreconditionFailed when it exists), taken over
  with ``IfMatch=<the ETag read>`` and given back with ``DeleteObject`` and ``IfMatch``
  (S3 general purpose buckets take conditional deletes), so a holder never deletes a
  lease another run has taken over since it read it.

One data root is used through one Dagster instance (the one whose runs the staleness rule
reads: on AWS the deployment's PostgreSQL instance).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import dagster as dg

from dynalloc_dagster.storage.base import ObjectStorage, StorageError
from dynalloc_dagster.tags import PIPELINE_ID_TAG, PIPELINE_TAG, REPORTS_JOB
from dynalloc_dagster.workers import process_alive, worker_start

if TYPE_CHECKING:
    from dynalloc_dagster.storage.s3 import S3Storage

LEASE_KEY = "dynalloc/lease:"
LOCK_FILE = ".dynalloc-lease.lock"
LEASE_OBJECT = "_lease.json"
"""The key of an S3 data root's lease, under its prefix."""
SWAP_ATTEMPTS = 3  # read-decide-swap rounds before giving up on a contended lease
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


DataRoot = ObjectStorage | str | os.PathLike[str]
"""A data root: its storage, or a local folder's path."""
Version = str | None
"""What a store's record looked like when read (the stored JSON locally, the ETag on S3);
None: no lease."""


class LeaseStore(Protocol):
    """Where one data root's lease is kept: one record changed only by compare-and-swap, so
    two processes deciding at once cannot both win."""

    root: str  # the data root as messages name it
    local_workers: bool  # the root's runs run on this machine (their pids can be checked)

    def read(self) -> tuple[Lease | None, Version]:
        """The lease (None: free) and its version."""
        ...

    def swap(self, lease: Lease | None, expected: Version) -> bool:
        """Store ``lease`` (None: free the root) if the record is still at ``expected``;
        False if another process changed it since."""
        ...


def lease_key(root: str | os.PathLike[str]) -> str:
    """The instance key-value key of ``root``'s lease: its absolute path with every
    symlink resolved, so every path to one folder names one lease."""
    return LEASE_KEY + os.path.realpath(root)


@dataclass(frozen=True)
class InstanceLeaseStore:
    """A local data root's lease, in the instance's key-value store; each compare-and-swap
    holds an exclusive ``flock`` on ``<DAGSTER_HOME>/.dynalloc-lease.lock``."""

    instance: dg.DagsterInstance
    root: str
    local_workers: bool = True

    def read(self) -> tuple[Lease | None, Version]:
        key = lease_key(self.root)
        value = self.instance.run_storage.get_cursor_values({key}).get(key) or None
        return (Lease(**json.loads(value)) if value else None), value

    def swap(self, lease: Lease | None, expected: Version) -> bool:
        with _locked(self.instance):
            if self.read()[1] != expected:
                return False
            self.instance.run_storage.set_cursor_values(
                {lease_key(self.root): "" if lease is None else _encode(lease)})
            return True


@dataclass(frozen=True)
class S3LeaseStore:
    """An S3 data root's lease: the object ``<prefix>/_lease.json``, taken with
    ``PutObject(IfNoneMatch='*')``, taken over with ``PutObject(IfMatch=<ETag>)`` and
    given back with ``DeleteObject(IfMatch=<ETag>)``. Its runs may run on other machines
    (EC2 workers), so their pids are not checked: a STARTED run is live until Dagster's
    run monitoring (the EC2 launcher's health check) ends it."""

    storage: S3Storage
    local_workers: bool = False

    @property
    def root(self) -> str:
        return self.storage.location

    def read(self) -> tuple[Lease | None, Version]:
        found = self.storage.read_versioned(LEASE_OBJECT)
        if found is None:
            return None, None
        data, etag = found
        try:
            return Lease(**json.loads(data)), etag
        except (ValueError, TypeError) as exc:
            raise StorageError(
                f"{self.storage.uri(LEASE_OBJECT)} is not a lease record ({exc}): it is"
                " written only by dynalloc runs; delete it if no pipeline is running") from exc

    def swap(self, lease: Lease | None, expected: Version) -> bool:
        if lease is None:
            return expected is not None and self.storage.delete_if(LEASE_OBJECT, expected)
        return self.storage.put_if(LEASE_OBJECT, _encode(lease).encode(), expected)


def lease_store(instance: dg.DagsterInstance, storage: DataRoot) -> LeaseStore:
    """The lease store of a data root: an S3 storage's prefix, or a local folder (a
    ``LocalStorage`` or a path)."""
    s3 = sys.modules.get("dynalloc_dagster.storage.s3")  # imported with any S3Storage
    if s3 is not None and isinstance(storage, s3.S3Storage):
        return S3LeaseStore(storage)
    root = storage.location if isinstance(storage, ObjectStorage) else os.fspath(storage)
    if not is_local(root):
        raise ValueError(f"no lease store for data root {root}: local folders and S3 only")
    return InstanceLeaseStore(instance, root.removeprefix("file://"))


def read_lease(instance: dg.DagsterInstance, root: DataRoot) -> Lease | None:
    """The lease of ``root``, or None when it is free."""
    return lease_store(instance, root).read()[0]


def pipeline_id_of(run: dg.DagsterRun) -> tuple[str, str, bool]:
    """(lease holder id, kind, first) of ``run``: a later pipeline stage's pipeline id, a
    first stage's own run id (it starts the pipeline), or a lone run's own id."""

    if PIPELINE_ID_TAG in run.tags:
        return run.tags[PIPELINE_ID_TAG], "pipeline", False
    if PIPELINE_TAG in run.tags:
        return run.run_id, "pipeline", True
    return run.run_id, "run", True


def acquire_for_run(instance: dg.DagsterInstance, run: dg.DagsterRun,
                    root: DataRoot,
                    log: dg.DagsterLogManager | None = None) -> Lease:
    """Take or confirm the lease of ``root`` for ``run`` (see the module docstring).

    Raises
    ------
    DataRootInUseError
        Another live pipeline or run holds the lease, or a later stage finds the lease no
        longer names its pipeline.
    """
    store = lease_store(instance, root)
    holder_id, kind, first = pipeline_id_of(run)
    for _ in range(SWAP_ATTEMPTS):
        current, version = store.read()
        why = ""
        if current is not None and current.pipeline_id == holder_id:
            return current
        if not first:
            now = "free" if current is None else current.describe(store.root)
            raise DataRootInUseError(
                f"run {run.run_id} ({run.job_name}) is a stage of pipeline {holder_id}, but"
                f" the data root is no longer leased to it (now: {now}): its earlier stages'"
                " outputs may have been replaced; start the pipeline again")
        if current is not None:
            live, why = holder_live(instance, current, check_pids=store.local_workers)
            if live:
                raise DataRootInUseError(
                    f"{current.describe(store.root)}; wait for it to finish ({why}), or"
                    " launch this on another data root (DYNALLOC_DATA_ROOT, or"
                    " DYNALLOC_S3_PREFIX on S3); a lease whose runs have all ended is taken"
                    " over automatically")
        lease = Lease(pipeline_id=holder_id, kind=kind, run_id=run.run_id,
                      job_name=run.job_name,
                      started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                      host=socket.gethostname(), pid=os.getpid())
        if store.swap(lease, version):
            if current is not None and log is not None:
                log.warning(f"taking over the stale lease of {store.root}: {current.kind}"
                            f" {current.pipeline_id} (run {current.run_id}) is over ({why})")
            return lease
    raise DataRootInUseError(
        f"data root {store.root}: the lease changed under run {run.run_id} {SWAP_ATTEMPTS}"
        " times in a row (other runs are taking it at once); launch it again")


def release_after_run(instance: dg.DagsterInstance, run: dg.DagsterRun,
                      root: DataRoot) -> bool:
    """Give the lease back at the end of a lone run or of a pipeline's reports stage;
    True if it was released."""

    holder_id, kind, _ = pipeline_id_of(run)
    if kind == "pipeline" and run.job_name != REPORTS_JOB:
        return False
    return release(instance, root, holder_id)


def release(instance: dg.DagsterInstance, root: DataRoot, holder_id: str) -> bool:
    """Free the lease of ``root`` if ``holder_id`` holds it; True if it did (False too
    when another run took it over between the read and the release)."""
    store = lease_store(instance, root)
    current, version = store.read()
    if current is None or current.pipeline_id != holder_id:
        return False
    return store.swap(None, version)


def holder_live(instance: dg.DagsterInstance, lease: Lease, *,
                check_pids: bool = True) -> tuple[bool, str]:
    """Whether the lease's holder may still write, and why.

    Live: one of its runs is queued or in progress (a STARTED run only while its worker
    process is alive, when ``check_pids``: the workers run on this machine); or, for a
    pipeline, none of its runs failed, the reports stage has not succeeded, a daemon is
    running (its chaining sensor will request the next stage) and the last stage ended
    less than ``CHAIN_GRACE_S`` ago."""
    runs = _holder_runs(instance, lease)
    if not runs:
        return False, "none of its runs is in this instance"
    active = [r for r in runs if r.status in _ACTIVE]
    for run in active:
        if not check_pids or _worker_alive(instance, run):
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
    """Whether a storage location is a local folder."""
    return "://" not in location or location.startswith("file://")


def _encode(lease: Lease) -> str:
    return json.dumps(asdict(lease), sort_keys=True)


def hold_data_root(context: dg.InitResourceContext, storage: ObjectStorage) -> None:
    """At a run's start (an IO manager's ``setup_for_execution``): take or confirm the
    lease of the data root ``storage``; raise DataRootInUseError otherwise."""
    run, instance = context.dagster_run, context.instance
    if run is None or instance is None:
        return
    acquire_for_run(instance, run, storage, context.log)


def end_of_run(context: dg.InitResourceContext, storage: ObjectStorage) -> None:
    """At a run's end (``teardown_after_execution``): release the lease of a lone run or of
    a pipeline's reports stage."""
    run = context.dagster_run
    if run is None or context.instance is None:
        return
    release_after_run(context.instance, run, storage)
