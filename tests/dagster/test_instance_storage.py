"""The local instance's pooled SQLite storages (dynalloc_dagster.storage.instance_sqlite)
and ``make run``'s launch on the workspace's code location loaded in process.

The storages are what the project's dagster.yaml selects: a run materialized through them
is read back by Dagster's own SQLite classes from the same files, a process killed right
after its run loses none of its events, the databases are in WAL mode with commits synced
at checkpoints, a run opens a few connections instead of one per event, and a forked
child builds its own pool.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_test_support import REPO_ROOT

from dynalloc_dagster.storage.instance_sqlite import (
    PooledConsolidatedSqliteEventLogStorage,
    PooledSqliteRunStorage,
    _EnginePerProcess,
)

PROJECT_YAML = REPO_ROOT / "dagster_home" / "dagster.yaml"
N_EVENTS_LOGGED = 30


@dg.asset
def numbers(context) -> None:  # Dagster reads the annotation; none under postponed ones
    for i in range(N_EVENTS_LOGGED):
        context.log.info(f"line {i}")


@pytest.fixture
def project_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME with the project's dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(PROJECT_YAML.read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _dagster_own_home(project_home: Path, tmp_path: Path) -> Path:
    """A DAGSTER_HOME reading ``project_home``'s files with Dagster's own SQLite classes."""
    home = tmp_path / "plain_home"
    home.mkdir()
    config = yaml.safe_load(PROJECT_YAML.read_text())
    config.pop("run_storage")
    config["event_log_storage"] = {
        "module": "dagster._core.storage.event_log",
        "class": "ConsolidatedSqliteEventLogStorage",
        "config": {"base_dir": str(project_home)}}
    config["run_storage"] = {"module": "dagster._core.storage.runs", "class": "SqliteRunStorage",
                             "config": {"base_dir": str(project_home / "history")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def test_the_project_instance_uses_the_pooled_storages(project_home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PooledSqliteRunStorage)
        assert isinstance(instance.event_log_storage, PooledConsolidatedSqliteEventLogStorage)


def test_a_run_is_read_back_by_dagster_own_storages(
        project_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([numbers], instance=instance)
        assert result.success
    assert (project_home / "history" / "runs.db").is_file()
    assert (project_home / "event_log.db").is_file()
    monkeypatch.setenv("DAGSTER_HOME", str(_dagster_own_home(project_home, tmp_path)))
    with dg.DagsterInstance.get() as plain:
        assert type(plain.run_storage).__name__ == "SqliteRunStorage"
        (run,) = plain.get_runs()
        assert run.run_id == result.run_id and run.status == dg.DagsterRunStatus.SUCCESS
        logs = plain.all_logs(run.run_id)
        assert sum(f"line {N_EVENTS_LOGGED - 1}" in e.user_message for e in logs) == 1
        assert plain.get_latest_materialization_event(dg.AssetKey("numbers")) is not None


def test_a_run_opens_a_few_connections_not_one_per_event(
        project_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_connect = sqlite3.dbapi2.connect  # what SQLAlchemy calls

    def counting_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        opened.append(str(args[0]))
        return real_connect(*args, **kwargs)  # type: ignore[arg-type]

    with dg.DagsterInstance.get() as instance:
        dg.materialize([numbers], instance=instance)  # the storages' own set-up first
        monkeypatch.setattr(sqlite3.dbapi2, "connect", counting_connect)
        result = dg.materialize([numbers], instance=instance)
        assert result.success
        written = len(instance.all_logs(result.run_id))
    assert written > N_EVENTS_LOGGED
    assert len(opened) <= 4, opened


def test_a_process_killed_after_its_run_lost_no_event(project_home: Path) -> None:
    script = (
        "import os, dagster as dg, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_instance_storage import numbers\n"
        "instance = dg.DagsterInstance.get()\n"
        "result = dg.materialize([numbers], instance=instance)\n"
        "print(result.run_id, len(instance.all_logs(result.run_id)), flush=True)\n"
        "os._exit(9)\n"  # no dispose, no interpreter shutdown: a kill right after the run
    )
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "DAGSTER_HOME": str(project_home)})
    assert done.returncode == 9, done.stderr[-3000:]
    run_id, written = done.stdout.split()
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert len(instance.all_logs(run_id)) == int(written)


def test_the_pooled_connections_sync_the_write_ahead_log_at_checkpoints(
        project_home: Path) -> None:
    """Both databases are in WAL mode and their connections commit without an fsync each
    (synchronous=NORMAL, 1): SQLite keeps commits across a killed process either way
    (the test above), and NORMAL outside WAL mode would risk a corrupt database."""
    with dg.DagsterInstance.get() as instance:
        dg.materialize([numbers], instance=instance)
        for storage in (instance.run_storage, instance.event_log_storage):
            with _EnginePerProcess.of(storage).get().connect() as conn:
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            assert (mode, synchronous) == ("wal", 1), type(storage).__name__


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_builds_its_own_pool(project_home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        storage = instance.run_storage
        parent = _EnginePerProcess.of(storage).get()
        storage.set_cursor_values({"before": "1"})
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only when it wrote through its own engine
            code = 2
            try:
                code = 0 if _EnginePerProcess.of(storage).get() is not parent else 1
                storage.set_cursor_values({"child": "1"})
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _EnginePerProcess.of(storage).get() is parent
        storage.set_cursor_values({"after": "1"})
        assert storage.get_cursor_values({"before", "child", "after"}) == {
            "before": "1", "child": "1", "after": "1"}


LAUNCH = """
import json, sys
import dagster as dg
from dagster._core.remote_representation import code_location
from dynalloc_dagster.orchestration import pipeline
from dynalloc_dagster.orchestration.stages import stage_request
from dynalloc_dagster.tags import INGEST_JOB

def no_code_server(*args, **kwargs):
    raise AssertionError("a code server was started")
code_location.GrpcServerCodeLocation.__init__ = no_code_server
requests = []
def first_stage_only(defs, instance, *, launcher, **kwargs):
    request = stage_request(INGEST_JOB, instance, pipeline="manual",
                            run_config=json.loads(sys.argv[1]))
    return [launcher(request)]
pipeline.run_pipeline = first_stage_only
with dg.DagsterInstance.get() as instance:
    (run,) = pipeline.launch_pipeline(instance, run_config=json.loads(sys.argv[1]))
    origin = run.remote_job_origin.repository_origin
    print(json.dumps({"status": run.status.value, "run_id": run.run_id,
                      "origin": origin.code_location_origin == pipeline.workspace_origin(),
                      "repository": origin.repository_name,
                      "pointer": run.job_code_origin.repository_origin.code_pointer.module}))
"""


@pytest.mark.slow
def test_make_run_creates_runs_of_the_workspace_location_without_a_code_server(
        project_home: Path, tmp_path: Path) -> None:
    from dagster_test_support import small_run_config

    config = {"ops": {"market_data": small_run_config()["ops"]["market_data"]}}
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, json.dumps(config)], cwd=REPO_ROOT, timeout=600,
        capture_output=True, text=True, check=False,
        env={**os.environ, "DAGSTER_HOME": str(project_home),
             "DYNALLOC_DATA_ROOT": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr[-4000:]
    launched = json.loads(done.stdout.strip().splitlines()[-1])
    assert launched == {"status": "SUCCESS", "run_id": launched["run_id"], "origin": True,
                        "repository": "__repository__",
                        "pointer": "dynalloc_dagster.definitions"}
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.run_id == launched["run_id"]
        assert run.tags["dagster/code_location"] == "dynalloc_dagster.definitions"
        assert (tmp_path / "data" / "market_data.parquet").is_file()
