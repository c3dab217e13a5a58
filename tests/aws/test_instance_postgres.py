"""The aws instance's pooled PostgreSQL storages (dynalloc_dagster.storage.instance_postgres)
on a throwaway cluster: what the deployment's dagster.yaml selects, how many connections a
run's worth of events opens against dagster-postgres's own classes, a forked child that
keeps off the parent's connections, and a connection the server ended replaced."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa
import yaml
from aws_deployment import DEPLOYMENT, create_database
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from dynalloc_dagster.storage.instance_postgres import (
    POOL_SIZE,
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)

EVENTS = 120
"""Events a test writes: about a quarter of a reports run's."""

STORAGES = {"run_storage": PooledPostgresRunStorage,
            "event_log_storage": PooledPostgresEventLogStorage,
            "schedule_storage": PooledPostgresScheduleStorage}


def _home(tmp_path: Path, pg_url: str, *, pooled: bool) -> Path:
    """A DAGSTER_HOME with the deployment's storage blocks (or dagster-postgres's classes
    in their place) on ``pg_url``."""
    deployment = yaml.safe_load((DEPLOYMENT / "dagster.yaml").read_text())
    config = {}
    for block, cls in STORAGES.items():
        assert deployment[block]["module"] == cls.__module__
        assert deployment[block]["class"] == cls.__name__
        config[block] = {**deployment[block], "config": {"postgres_url": pg_url}}
        if not pooled:
            config[block] |= {"module": "dagster_postgres",
                              "class": cls.__name__.removeprefix("Pooled")}
    home = tmp_path / ("pooled" if pooled else "plain")
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


@pytest.fixture
def pg_url(postgres) -> str:
    return create_database(postgres)


@pytest.fixture
def pooled(tmp_path, pg_url) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(_home(tmp_path, pg_url, pooled=True))) as instance:
        yield instance


def _count_connects(instance: dg.DagsterInstance) -> list[int]:
    """A list whose length is the number of new database connections the instance's
    storages open from now on (SQLAlchemy's ``connect`` event of their engines)."""
    opened: list[int] = []
    engines = {id(s._engine): s._engine for s in (instance.run_storage,
                                                   instance.event_log_storage,
                                                   instance.schedule_storage)}
    for engine in engines.values():
        sa.event.listen(engine, "connect", lambda *_: opened.append(1))
    return opened


def _write_events(instance: dg.DagsterInstance, n: int) -> str:
    """A run with ``n`` engine events written to its log and read back; its id."""
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job(), run_id=None)
    for i in range(n):
        instance.report_engine_event(f"event {i}", run)
        instance.get_run_by_id(run.run_id)
    assert len(instance.all_logs(run.run_id)) == n
    return run.run_id


def test_the_deployment_selects_the_pooled_storages(pooled):
    for block, cls in STORAGES.items():
        assert type(getattr(pooled, block)) is cls
    assert isinstance(pooled.run_storage, PostgresRunStorage)
    assert isinstance(pooled.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pooled.schedule_storage, PostgresScheduleStorage)


def test_a_run_of_events_reuses_a_few_connections_where_dagster_postgres_opens_one_each(
    tmp_path, pg_url, pooled,
):
    opened = _count_connects(pooled)
    _write_events(pooled, EVENTS)
    assert len(opened) <= 3 * POOL_SIZE

    with dg.DagsterInstance.from_config(str(_home(tmp_path, pg_url, pooled=False))) as plain:
        opened = _count_connects(plain)
        _write_events(plain, EVENTS)
    assert len(opened) >= 2 * EVENTS  # the write and the read of each event


def _backend_pid(instance: dg.DagsterInstance) -> int:
    with instance.event_log_storage._engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_working(pooled):
    parent_pid = _backend_pid(pooled)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            run_id = _write_events(pooled, 5)
            message = f"{_backend_pid(pooled)} {run_id}"
        except BaseException as error:
            message = f"error {error!r}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    assert os.waitpid(child, 0)[1] == 0
    assert not message.startswith("error"), message
    child_backend, run_id = message.split()
    assert int(child_backend) != parent_pid
    assert len(pooled.all_logs(run_id)) == 5
    assert _backend_pid(pooled) == parent_pid  # the parent's pooled session survived
    _write_events(pooled, 5)


def test_a_connection_the_server_ended_is_replaced_not_used(pooled, postgres, pg_url):
    _write_events(pooled, 3)
    ended = _backend_pid(pooled)
    admin = psycopg2.connect(host="127.0.0.1", port=postgres.port, user="postgres",
                             dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE datname = %s", (pg_url.rsplit("/", 1)[1],))
        assert cursor.fetchall()
    admin.close()
    _write_events(pooled, 3)
    assert _backend_pid(pooled) != ended
