"""Faults a user hits through Dagster itself: a run worker killed with SIGKILL (run
monitoring with the local launcher's health check), and two pipelines on one data root
(the data-root lease).

The crash test starts a real ``dagster-daemon`` on a temporary DAGSTER_HOME (the
project's dagster.yaml with short poll intervals) and the project's workspace, submits
runs with ``dagster job launch`` (queued, one at a time) and kills a run's worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.utils import make_new_run_id
from dagster_test_support import (
    REPO_ROOT,
    Upstream,
    failure_text,
    polling_home,
    run_job,
    small_run_config,
)

from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.orchestration.local_run_launcher import (
    LocalRunLauncher,
    process_alive,
    worker_start,
)
from dynalloc_dagster.orchestration.pipeline import job_run_config, run_pipeline
from dynalloc_dagster.orchestration.stages import stage_request
from dynalloc_dagster.partitions import batch_partitions
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager
from dynalloc_dagster.storage.lease import (
    acquire_for_run,
    holder_live,
    read_lease,
    release_after_run,
)
from dynalloc_dagster.storage.retention import prune_evaluations
from dynalloc_dagster.tags import (
    EVALUATIONS_JOB,
    INGEST_JOB,
    PIPELINE_ID_TAG,
    PIPELINE_TAG,
    REPORTS_JOB,
    ROUND_JOB,
    SCENARIOS_JOB,
)

BIN = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin"
if not (BIN / "dagster-daemon").exists():
    BIN = REPO_ROOT / ".venv" / "bin"
SLOW_PATHS = 2000  # scenario paths of the run that gets killed: ~10 s of work, ~0.4 GB


# --- the local launcher's health check, without a daemon ----------------------------------

def test_process_alive_tells_a_live_process_from_a_dead_and_a_reused_pid() -> None:
    assert process_alive(os.getpid(), not_after=time.time()) == (True, "alive")
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert process_alive(child.pid, not_after=time.time())[0]
        child.kill()
        time.sleep(0.2)  # killed, not reaped yet: a zombie counts as dead
        assert process_alive(child.pid, not_after=time.time()) == (
            False, "exited, a zombie not yet reaped")
    finally:
        child.wait()
    assert process_alive(child.pid, not_after=time.time()) == (False, "no such process")
    # a pid that started after the run it is said to run is a reused pid
    alive, why = process_alive(os.getpid(), not_after=time.time() - 3600 * 24 * 365 * 30)
    assert not alive and "after the run" in why


def test_health_check_reads_the_run_start_pid(tmp_path: Path) -> None:
    """An in-process run's worker is this process: RUNNING while alive; a run whose
    RUN_START pid is gone is FAILED."""
    defs = build_definitions(data_root=str(tmp_path / "data"))
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(overrides={"run_launcher": {
            "module": "dynalloc_dagster.orchestration.local_run_launcher",
            "class": "LocalRunLauncher"}},
            temp_dir=str(tmp_path / "home")) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalRunLauncher)
        assert launcher.supports_check_run_worker_health
        result = run_job(defs, INGEST_JOB, instance, run_config=small_run_config())
        assert result.success, failure_text(result)
        run = result.dagster_run
        assert worker_start(instance, run.run_id)[0] == os.getpid()
        health = launcher.check_run_worker_health(run)
        assert health.status.value == "RUNNING", health
        dead = subprocess.Popen(["true"])
        dead.wait()
        fake = instance.create_run_for_job(defs.resolve_job_def(INGEST_JOB),
                                           run_config=job_run_config(
                                               defs.resolve_job_def(INGEST_JOB),
                                               small_run_config()))
        instance.report_dagster_event(
            dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value,
                            job_name=fake.job_name, pid=dead.pid), run_id=fake.run_id)
        health = launcher.check_run_worker_health(instance.get_run_by_id(fake.run_id))
        assert health.status.value == "FAILED"
        assert f"pid {dead.pid} is gone (no such process)" in health.msg


# --- a run worker killed with SIGKILL, through a real daemon ------------------------------

def _submit(instance: dg.DagsterInstance, runs: list[tuple[str, str, dict, dict]]) -> None:
    """Submit runs (job, run id, pipeline-wide run config, tags) as ``dagster job launch``
    does, through one workspace of the project's workspace.yaml: they are queued in order."""
    from dagster import __version__
    from dagster._cli.job import _create_run
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    from dynalloc_dagster.definitions import defs

    target = WorkspaceFileTarget(paths=[str(REPO_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target, version=__version__) as process:
        workspace = process.create_request_context()
        [location] = workspace.code_locations
        [repo] = location.get_repositories().values()
        for job_name, run_id, run_config, tags in runs:
            run = _create_run(
                instance=instance, code_location=location, remote_repo=repo,
                remote_job=repo.get_full_job(job_name),
                run_config=job_run_config(defs.resolve_job_def(job_name), run_config),
                tags=tags, op_selection=None, run_id=run_id)
            instance.submit_run(run.run_id, workspace)


def _wait(what: str, condition: Callable[[], object], log: Path, timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    print(f"{time.strftime('%X')} waiting for {what}")
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-6000:]}")


@pytest.fixture
def daemons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, str], Path, Path, Callable[[], subprocess.Popen]]]:
    """A temporary DAGSTER_HOME and data root, and a starter of ``dagster-daemon``
    processes on them (each the leader of its own process group, stopped at the end)."""
    home, data_root, log = tmp_path / "home", tmp_path / "data", tmp_path / "daemon.log"
    polling_home(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's config reads it
    monkeypatch.setenv("DYNALLOC_DATA_ROOT", str(data_root))  # for the code server
    env = {**os.environ, "DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(data_root)}
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(proc)
        return proc

    try:
        yield env, home, log, start
    finally:
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.mark.slow
def test_killed_run_is_failed_by_monitoring_and_the_queue_moves_on(
    daemons: tuple[dict[str, str], Path, Path, Callable[[], subprocess.Popen]],
) -> None:
    """The daemon, its code server and the run worker are killed with SIGKILL mid-run (as
    when ``dagster dev`` or the whole machine goes down; a code server that survives fails
    its dead child itself). The run stays STARTED and holds the one run slot; a run queued
    meanwhile would wait forever. The next daemon's monitoring finds the worker gone,
    fails the run, and the queued run goes through."""
    env, home, log, start_daemon = daemons
    data_root = Path(env["DYNALLOC_DATA_ROOT"])
    config = small_run_config(n_paths=SLOW_PATHS)
    config["ops"]["scenario_paths"]["config"]["horizon_years"] = 5
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # upstream of the run to kill, in this process
        defs = build_definitions(data_root=str(data_root))
        result = run_job(defs, INGEST_JOB, instance, run_config=config)
        assert result.success, failure_text(result)

        def status(run_id: str) -> dg.DagsterRunStatus:
            return instance.get_run_by_id(run_id).status

        first = start_daemon()
        slow = stage_request(SCENARIOS_JOB, instance, pipeline="manual", run_config=config)
        tags = {k: v for k, v in slow.tags.items() if k != PIPELINE_TAG}  # no chaining
        killed_id, next_id = ("11111111-1111-4111-8111-111111111111",
                              "22222222-2222-4222-8222-222222222222")
        _submit(instance, [(SCENARIOS_JOB, killed_id, config, tags)])
        _wait("the slow run to start", lambda: status(killed_id) == dg.DagsterRunStatus.STARTED
              and worker_start(instance, killed_id), log)
        pid = worker_start(instance, killed_id)[0]
        assert pid != os.getpid()
        _wait("its first step", lambda: instance.get_records_for_run(
            killed_id, of_type=dg.DagsterEventType.STEP_START, limit=1).records, log)
        os.killpg(first.pid, signal.SIGKILL)  # daemon, code server and run worker
        first.wait(timeout=10)
        _wait("the worker to be gone", lambda: not process_alive(pid, not_after=time.time())[0],
              log, timeout=10)
        assert status(killed_id) == dg.DagsterRunStatus.STARTED  # orphaned

        _submit(instance, [(INGEST_JOB, next_id, config, {})])
        start_daemon()
        _wait("monitoring to fail the killed run",
              lambda: status(killed_id) == dg.DagsterRunStatus.FAILURE, log)
        messages = [entry.message for entry in instance.all_logs(killed_id)]
        assert any(f"run worker pid {pid} is gone" in m for m in messages), messages[-4:]
        _wait("the queued run to finish",
              lambda: status(next_id) in (dg.DagsterRunStatus.SUCCESS,
                                          dg.DagsterRunStatus.FAILURE), log)
        assert status(next_id) == dg.DagsterRunStatus.SUCCESS, _run_messages(
            instance, next_id)[-3000:]


# --- two pipelines on one data root: the lease -----------------------------------------

IN_USE = "is in use by pipeline"


def _run_messages(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every message and error of a run's event log, as one string."""
    parts = []
    for entry in instance.all_logs(run_id):
        parts.append(entry.message or "")
        event = entry.dagster_event
        data = getattr(event, "event_specific_data", None) if event else None
        error = getattr(data, "error", None)
        if error is not None:
            parts.append(error.to_string())
    return "\n".join(parts)


def _started_run(instance: dg.DagsterInstance, defs: dg.Definitions, tags: dict[str, str],
                 pid: int) -> dg.DagsterRun:
    """A run recorded as STARTED by process ``pid`` (what a running stage looks like)."""
    job = defs.resolve_job_def(INGEST_JOB)
    run = instance.create_run_for_job(job, tags=tags,
                                      run_config=job_run_config(job, small_run_config()))
    instance.report_dagster_event(dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid),
        run_id=run.run_id)
    return instance.get_run_by_id(run.run_id)


def test_lone_run_and_foreign_stage_refused_while_a_live_pipeline_holds_the_root(
    defs: dg.Definitions, instance: dg.DagsterInstance, data_root: Path
) -> None:
    holder = _started_run(instance, defs, {PIPELINE_TAG: "manual"}, os.getpid())
    lease = acquire_for_run(instance, holder, str(data_root))
    assert lease.pipeline_id == holder.run_id and lease.kind == "pipeline"
    # a single-asset Materialize outside any pipeline
    result = run_job(defs, INGEST_JOB, instance, run_config=small_run_config())
    assert not result.success
    text = _run_messages(instance, result.run_id)
    assert f"data root {data_root} {IN_USE} {holder.run_id} started" in text, text[-3000:]
    assert f"(run {holder.run_id}, {INGEST_JOB}); wait for it to finish" in text
    # a later stage of another pipeline
    other = stage_request(SCENARIOS_JOB, instance, pipeline="manual",
                          run_config=small_run_config(), pipeline_id="another-pipeline")
    result = run_job(defs, SCENARIOS_JOB, instance, run_config=other.run_config,
                     tags=other.tags)
    assert not result.success
    assert ("a stage of pipeline another-pipeline, but the data root is no longer leased to"
            in _run_messages(instance, result.run_id))
    assert read_lease(instance, data_root) == lease  # untouched
    assert not (data_root / "market_data.parquet").exists()  # nothing was written


def test_a_symlinked_path_to_a_leased_data_root_is_refused(
    tmp_path: Path, instance: dg.DagsterInstance, data_root: Path
) -> None:
    """A second pipeline pointed at the same folder through a symlink is the same root."""
    data_root.mkdir()
    link = tmp_path / "link"
    link.symlink_to(data_root)
    holder = _started_run(instance, build_definitions(data_root=str(data_root)),
                          {PIPELINE_TAG: "manual"}, os.getpid())
    acquire_for_run(instance, holder, str(data_root))

    result = run_job(build_definitions(data_root=str(link)), INGEST_JOB, instance,
                     run_config=small_run_config())
    assert not result.success
    assert f"{IN_USE} {holder.run_id} started" in _run_messages(instance, result.run_id)
    assert read_lease(instance, link) == read_lease(instance, data_root)
    assert not (data_root / "market_data.parquet").exists()


def test_a_queued_next_stage_keeps_the_pipeline_live(
    defs: dg.Definitions, instance: dg.DagsterInstance, data_root: Path
) -> None:
    """Between two stages with no daemon, the pipeline's next stage sits QUEUED: the
    lease is live (a queued run will write), so a lone run is refused, not let in."""
    first = _started_run(instance, defs, {PIPELINE_TAG: "manual"}, os.getpid())
    acquire_for_run(instance, first, str(data_root))
    instance.report_dagster_event(dg.DagsterEvent(  # the first stage ended ...
        event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=first.job_name),
        run_id=first.run_id)
    queued = instance.add_run(dg.DagsterRun(  # ... and its next stage waits in the queue
        job_name=SCENARIOS_JOB, run_id=make_new_run_id(), status=dg.DagsterRunStatus.QUEUED,
        tags={PIPELINE_TAG: "manual", PIPELINE_ID_TAG: first.run_id},
        remote_job_origin=RemoteJobOrigin(RemoteRepositoryOrigin(
            RegisteredCodeLocationOrigin("dynalloc"), "__repository__"), SCENARIOS_JOB)))
    assert instance.get_run_by_id(queued.run_id).status == dg.DagsterRunStatus.QUEUED

    live, why = holder_live(instance, read_lease(instance, data_root))
    assert live, why
    assert why == f"run {queued.run_id} ({SCENARIOS_JOB}) is QUEUED"
    result = run_job(defs, INGEST_JOB, instance, run_config=small_run_config())
    assert not result.success
    assert f"{IN_USE} {first.run_id} started" in _run_messages(instance, result.run_id)


def test_stale_lease_is_taken_over_with_a_log_line(
    defs: dg.Definitions, instance: dg.DagsterInstance, data_root: Path
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    holder = _started_run(instance, defs, {PIPELINE_TAG: "manual"}, dead.pid)
    acquire_for_run(instance, holder, str(data_root))  # its worker died afterwards
    request = stage_request(INGEST_JOB, instance, pipeline="manual",
                            run_config=small_run_config())
    result = run_job(defs, INGEST_JOB, instance, run_config=request.run_config,
                     tags=request.tags)
    assert result.success, failure_text(result)
    text = _run_messages(instance, result.run_id)
    assert (f"taking over the stale lease of {data_root}: pipeline {holder.run_id}"
            f" (run {holder.run_id}) is over (a stage failed, was canceled or its worker"
            " died)") in text
    assert read_lease(instance, data_root).pipeline_id == result.run_id  # the new pipeline holds it
    # a failed holder is stale too
    instance.report_run_failed(instance.get_run_by_id(result.run_id))
    lone = run_job(defs, INGEST_JOB, instance, run_config=small_run_config())
    assert lone.success, failure_text(lone)
    assert read_lease(instance, data_root) is None  # a lone run gives it back at its end


def test_release_only_at_the_reports_stage_or_a_lone_run(tmp_path: Path,
                                                         instance: dg.DagsterInstance,
                                                         defs: dg.Definitions) -> None:
    root = str(tmp_path / "root")
    first = _started_run(instance, defs, {PIPELINE_TAG: "manual"}, os.getpid())
    acquire_for_run(instance, first, root)
    stage = first._replace(job_name=SCENARIOS_JOB,
                           tags={**first.tags, PIPELINE_ID_TAG: first.run_id})
    assert not release_after_run(instance, stage, root)
    assert read_lease(instance, root).pipeline_id == first.run_id
    assert release_after_run(instance, stage._replace(job_name=REPORTS_JOB), root)
    assert read_lease(instance, root) is None


@pytest.mark.slow
def test_two_pipelines_on_one_data_root_one_refuses_the_other_is_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pipeline A runs as ``python -m dynalloc_dagster`` (``make run``); once it
    holds the lease, pipeline B with other configs starts in this process on the same
    instance and data root. One of them fails naming the lease (B at once, or A at its
    next stage if B slipped into a gap between A's stages); the other's stored configs,
    evaluations and recommendation are its own."""
    home, root = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    configs = {"A": small_run_config(seed=1, initial_batch=6, max_configs=6),
               "B": small_run_config(seed=2, initial_batch=5, max_configs=5)}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(configs["A"]))
    env = {**os.environ, "DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(root)}
    a = subprocess.Popen([str(BIN / "python"), "-m", "dynalloc_dagster", "--config",
                          str(tmp_path / "a.yaml")], cwd=REPO_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with dg.DagsterInstance.get() as instance:
            deadline = time.monotonic() + 120
            while read_lease(instance, root) is None:
                assert a.poll() is None, a.stdout.read()
                assert time.monotonic() < deadline, "pipeline A never took the lease"
                time.sleep(0.05)
            b_runs = run_pipeline(build_definitions(data_root=str(root)), instance,
                                  run_config=configs["B"])
            a_out, _ = a.communicate(timeout=300)
            b_ok = all(r.status == dg.DagsterRunStatus.SUCCESS for r in b_runs)
            b_text = _run_messages(instance, b_runs[-1].run_id)
            lease_after = read_lease(instance, root)
    finally:
        if a.poll() is None:
            a.kill()
    a_ok = a.returncode == 0
    assert a_ok != b_ok, f"A: {a_out}\nB: {[r.status for r in b_runs]}"
    winner = "A" if a_ok else "B"
    if b_ok:  # A lost the lease between stages
        assert "no longer leased to it" in a_out or IN_USE in a_out, a_out
    else:
        assert IN_USE in b_text, b_text[-3000:]
        assert len(b_runs) == 1  # B's first stage refused; nothing of B ran
    expected = configs[winner]["resources"]["agent"]["config"]["max_configs"]
    store = PolarsParquetIOManager(root=str(root))
    stored_configs = store.load_stored("strategy_configs")
    ids = set(stored_configs["config_id"])
    assert stored_configs.height == expected
    evaluations = pl.concat([pl.read_parquet(p) for p in
                             sorted((root / "strategy_evaluations").rglob("*.parquet"))])
    assert set(evaluations["config_id"]) == ids
    assert set(store.load_stored("optimisation_history")["config_id"]) == ids
    assert store.load_stored("recommended_allocation")["config_id"][0] in ids
    assert lease_after is None  # released by the winner's reports stage


# --- retention: a new loop's round 0 removes the evaluations of earlier loops -------------

def test_prune_evaluations_keeps_the_registered_batches_only(
    defs: dg.Definitions, instance: dg.DagsterInstance, upstream: Upstream
) -> None:
    root = upstream.root

    def evaluate_registered() -> str:
        (batch,) = instance.get_dynamic_partitions(batch_partitions.name)
        request = stage_request(EVALUATIONS_JOB, instance, pipeline="manual",
                                run_config=small_run_config(), batch=batch)
        result = run_job(defs, EVALUATIONS_JOB, instance, run_config=request.run_config,
                         tags=request.tags)
        assert result.success, failure_text(result)
        return batch

    old = evaluate_registered()
    stray = root / "strategy_evaluations" / "notes.txt"  # not a partition folder: kept
    stray.write_text("kept")
    # a new loop: round 0 with another seed registers another batch and unregisters old
    config = small_run_config(seed=7)
    request = stage_request(ROUND_JOB, instance, pipeline="manual", run_config=config,
                            round_index=0)
    result = run_job(defs, ROUND_JOB, instance, run_config=request.run_config,
                     tags=request.tags)
    assert result.success, failure_text(result)
    registered = instance.get_dynamic_partitions(batch_partitions.name)
    assert old not in registered
    # round 0 pruned the old loop's evaluations itself
    assert not (root / "strategy_evaluations" / f"batch={old}").exists()
    assert not (root / ".checksums" / "strategy_evaluations" / f"batch={old}").exists()
    assert prune_evaluations(root, registered) == []
    new = evaluate_registered()
    assert prune_evaluations(root, registered) == []  # the current loop is kept
    folders = {p.relative_to(root).as_posix() for p in root.rglob("batch=*")}
    assert folders == {f"strategy_evaluations/batch={new}",
                       f".checksums/strategy_evaluations/batch={new}"}
    assert stray.read_text() == "kept"
