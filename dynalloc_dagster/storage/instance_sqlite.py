"""The local instance's SQLite run and event-log storages, with one connection pool each.

Dagster's SQLite storages build a new SQLAlchemy engine and open a new connection for
every read and every write, and close it after (``NullPool``). Closing the last
connection to a database in WAL mode checkpoints the log into the database file and
deletes it, so each event written costs an engine, a connection, a checkpoint and their
fsyncs: about 2 ms of CPU and 10-30 ms of wall time here, and a pipeline writes about
800 events and as many run-storage reads and writes. These subclasses keep one engine
with a small pool of open connections per storage and process (a forked child builds its
own, leaving the parent's connections alone). Each write is still its own committed
transaction, and the database files are the ones Dagster's own classes read (the
webserver and the daemon may use either).

Their connections set ``PRAGMA synchronous=NORMAL``, SQLite's advice for a database in
WAL mode (Dagster puts both in it): a commit is appended to the write-ahead log without
an fsync of its own; the log is synced at each checkpoint. A committed event survives
the process that wrote it being killed, whatever the setting (it is in the operating
system's hands); only a power cut or an operating-system crash may take back the last
commits, never leaving a corrupt database. The fsync per event it spares is about 0.4 ms
here, some 0.2 s of a reports stage's 530 events.

``dagster_home/dagster.yaml`` selects them::

    event_log_storage:
      module: dynalloc_dagster.storage.instance_sqlite
      class: PooledConsolidatedSqliteEventLogStorage
      config: {base_dir: {env: DAGSTER_HOME}}
    run_storage:
      module: dynalloc_dagster.storage.instance_sqlite
      class: PooledSqliteRunStorage
      config: {dagster_home: {env: DAGSTER_HOME}}

The run storage takes the instance's folder and keeps its runs where Dagster's default
does, ``<DAGSTER_HOME>/history/runs.db``, so an existing instance keeps its runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster._config import StringSource
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

SYNCHRONOUS = "NORMAL"
"""SQLite's synchronisation of the pooled connections (module docstring)."""
RUNS_FOLDER = "history"
"""Where Dagster's default SQLite run storage keeps ``runs.db`` under DAGSTER_HOME."""


class _EnginePerProcess:
    """One pooled engine per database URL and process."""

    @classmethod
    def of(cls, storage: Any) -> _EnginePerProcess:
        """The storage's pool holder, made on first use (Dagster's constructors connect
        before a subclass's own ``__init__`` code would run)."""
        holder = storage.__dict__.get("_engines")
        if holder is None:
            holder = storage.__dict__["_engines"] = cls(storage._conn_string)
        return holder

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.engine.Engine | None = None
        self._pid = 0

    def get(self) -> sa.engine.Engine:
        pid = os.getpid()
        if self._engine is None or self._pid != pid:
            if self._engine is not None:  # the parent's: its connections are not ours
                self._engine.dispose(close=False)
            self._engine = sa.create_engine(
                self.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                poolclass=sa.pool.QueuePool, pool_size=2, max_overflow=8)
            sa.event.listen(self._engine, "connect", _set_synchronous)
            self._pid = pid
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None


def _set_synchronous(connection: Any, _record: Any) -> None:
    """A new connection synchronised as :data:`SYNCHRONOUS` says (module docstring)."""
    connection.execute(f"PRAGMA synchronous={SYNCHRONOUS}")


class PooledConsolidatedSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """Dagster's consolidated SQLite event log (one ``event_log.db`` for every run), its
    connections pooled (module docstring)."""

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        with _EnginePerProcess.of(self).get().connect() as conn, conn.begin():
            yield conn

    def has_table(self, table_name: str) -> bool:
        engine = _EnginePerProcess.of(self).get()
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def dispose(self) -> None:
        super().dispose()
        _EnginePerProcess.of(self).dispose()


class PooledSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage (``history/runs.db``), its connections pooled (module
    docstring)."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, str],
    ) -> PooledSqliteRunStorage:
        return cls.from_local(os.path.join(config_value["dagster_home"], RUNS_FOLDER),
                              inst_data=inst_data)

    @contextmanager
    def connect(self) -> Iterator[Any]:
        with _EnginePerProcess.of(self).get().connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        _EnginePerProcess.of(self).dispose()
