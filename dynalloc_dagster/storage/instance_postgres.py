"""The aws instance's PostgreSQL run, event-log and schedule storages, with one small
connection pool each per process.

dagster-postgres builds its storages on SQLAlchemy's ``NullPool``: every read and every
write opens a new connection to the database and closes it after. A run worker writes
one row per Dagster event and reads as many, so a reports run on a worker opened some 960
connections: 4.8 s of its 32 s against a PostgreSQL on the same machine
(tests/aws/test_end_to_end.py), and against RDS each one is also a TCP and TLS handshake
and an authentication. These subclasses keep, per storage and process, up to
:data:`POOL_SIZE` connections open (:data:`MAX_OVERFLOW` more while threads need them,
as the daemon's do), each pinged before it is handed out, so a connection RDS dropped
(a restart, a failover) is replaced rather than used, and replaced anyway after
:data:`POOL_RECYCLE_S`. Nothing else changes: autocommit, as dagster-postgres writes,
the same tables and the same token provider for IAM authentication (a pooled connection
keeps the token it connected with). A forked child (the chart workers) forgets the
parent's connections without closing them (SQLAlchemy's ``dispose(close=False)``), so
the parent's stay usable, and opens its own if it needs any.

``deployment/aws/dagster.yaml`` selects them::

    run_storage:
      module: dynalloc_dagster.storage.instance_postgres
      class: PooledPostgresRunStorage
      config: {postgres_url: {env: DYNALLOC_PG_URL}}

and likewise ``event_log_storage`` (``PooledPostgresEventLogStorage``) and
``schedule_storage`` (``PooledPostgresScheduleStorage``). Dagster's own classes read the
same database (a webserver or daemon configured with ``storage: postgres`` works on it).
"""

from __future__ import annotations

import os
import weakref
from typing import Any

import sqlalchemy as sa
from dagster._serdes import ConfigurableClassData
from dagster_postgres import (
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

POOL_SIZE = 2
"""Connections a storage keeps open per process between uses."""
MAX_OVERFLOW = 8
"""Connections opened beyond ``POOL_SIZE`` while more threads use the storage at once
(closed when returned)."""
POOL_RECYCLE_S = 1800
"""A pooled connection older than this is closed and replaced before its next use."""

_ENGINES: weakref.WeakSet[sa.engine.Engine] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    """In a forked child: drop the parent's pooled connections without closing them (a
    close would end the parent's sessions too); the child connects anew when it must."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def pooled_engine(postgres_url: str, token_provider: Any = None) -> sa.engine.Engine:
    """An autocommit engine on ``postgres_url`` with the pool of the module docstring."""
    engine = create_pg_engine(
        postgres_url, token_provider, isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.QueuePool, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
        pool_recycle=POOL_RECYCLE_S, pool_pre_ping=True,
    )
    _ENGINES.add(engine)
    return engine


def _arguments(inst_data: ConfigurableClassData | None,
               config_value: Any) -> dict[str, Any]:
    """The constructor arguments dagster-postgres's ``from_config_value`` passes."""
    return {"inst_data": inst_data, "postgres_url": pg_url_from_config(config_value),
            "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
            "token_provider": get_token_provider_from_config(config_value)}


class _Pooled:
    """The pooled engine in place of dagster-postgres's, built from the same arguments;
    first in the bases of each storage below, so its ``__init__`` and
    ``from_config_value`` are the ones called."""

    _engine: sa.engine.Engine

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None,
                 token_provider: Any = None) -> None:
        super().__init__(postgres_url, should_autocreate_tables,  # type: ignore[call-arg]
                         inst_data, token_provider)
        self._engine = pooled_engine(postgres_url, token_provider)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Any) -> Any:
        return cls(**_arguments(inst_data, config_value))

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engine.dispose()


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """dagster-postgres's run storage, its connections pooled (module docstring)."""


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    """dagster-postgres's event-log storage, its connections pooled (module docstring)."""


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """dagster-postgres's schedule storage, its connections pooled (module docstring)."""
