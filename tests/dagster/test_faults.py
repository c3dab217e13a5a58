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
import pytest
import yaml
from dagster_test_support import REPO_ROOT, failure_text, run_job, small_run_config

from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.local_run_launcher import LocalRunLauncher, process_alive, worker_start
from dynalloc_dagster.pipeline import job_run_config
from dynalloc_dagster.stages import INGEST_JOB, PIPELINE_TAG, SCENARIOS_JOB, stage_request

BIN = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin"
if not (BIN / "dagster-daemon").exists():
    BIN = REPO_ROOT / ".venv" / "bin"
POLL_S = 1  # monitoring and dequeue interval of the test instance
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
            "module": "dynalloc_dagster.local_run_launcher", "class": "LocalRunLauncher"}},
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

def _test_home(home: Path) -> None:
    """The project's dagster.yaml with monitoring and the queue polled every second."""
    config = yaml.safe_load((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    assert config["run_launcher"]["class"] == "LocalRunLauncher"
    assert config["run_monitoring"]["enabled"] is True
    config["run_monitoring"]["poll_interval_seconds"] = POLL_S
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = POLL_S
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


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
def daemon_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, str], Path, Path]]:
    """A running ``dagster-daemon`` on a temporary DAGSTER_HOME and data root."""
    home, data_root, log = tmp_path / "home", tmp_path / "data", tmp_path / "daemon.log"
    _test_home(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's config reads it
    monkeypatch.setenv("DYNALLOC_DATA_ROOT", str(data_root))  # for the code server
    env = {**os.environ, "DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(data_root)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield env, home, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.slow
def test_killed_run_is_failed_by_monitoring_and_the_queue_moves_on(
    daemon_home: tuple[dict[str, str], Path, Path],
) -> None:
    env, home, log = daemon_home
    data_root = Path(env["DYNALLOC_DATA_ROOT"])
    config = small_run_config(n_paths=SLOW_PATHS)
    config["ops"]["scenario_paths"]["config"]["horizon_years"] = 5
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # upstream of the run to kill, in this process (a run the daemon also monitors)
        defs = build_definitions(data_root=str(data_root))
        result = run_job(defs, INGEST_JOB, instance, run_config=config)
        assert result.success, failure_text(result)

        slow = stage_request(SCENARIOS_JOB, instance, pipeline="manual", run_config=config)
        tags = {k: v for k, v in slow.tags.items() if k != PIPELINE_TAG}  # no chaining
        killed_id, next_id = "11111111-1111-4111-8111-111111111111", \
            "22222222-2222-4222-8222-222222222222"
        _submit(instance, [(SCENARIOS_JOB, killed_id, config, tags),
                           (INGEST_JOB, next_id, config, {})])

        def status(run_id: str) -> dg.DagsterRunStatus:
            return instance.get_run_by_id(run_id).status

        _wait("the slow run to start", lambda: status(killed_id) == dg.DagsterRunStatus.STARTED
              and worker_start(instance, killed_id), log)
        pid = worker_start(instance, killed_id)[0]
        assert pid != os.getpid()
        _wait("its first step", lambda: instance.get_records_for_run(
            killed_id, of_type=dg.DagsterEventType.STEP_START, limit=1).records, log)
        assert status(next_id) == dg.DagsterRunStatus.QUEUED  # one run at a time
        os.kill(pid, signal.SIGKILL)

        _wait("monitoring to fail the killed run",
              lambda: status(killed_id) == dg.DagsterRunStatus.FAILURE, log)
        messages = [entry.message for entry in instance.all_logs(killed_id)]
        assert any(f"run worker pid {pid} is gone" in m for m in messages), messages[-5:]
        _wait("the queued run to succeed",
              lambda: status(next_id) in (dg.DagsterRunStatus.SUCCESS,
                                          dg.DagsterRunStatus.FAILURE), log)
        assert status(next_id) == dg.DagsterRunStatus.SUCCESS, log.read_text()[-6000:]
