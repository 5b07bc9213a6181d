"""The SQL engine and sessions. SQLite by default (embedded), PostgreSQL in production."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

# The database cannot be reached now (down, locked, out of pooled connections): worth a retry later.
UNREACHABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)


def make_engine(database_url: str) -> Engine:
    engine = _create(database_url)
    # Production's server imports the app once, then forks its workers: a pooled connection opened before the
    # fork would be shared by every worker. Each child starts with an empty pool (the parent's stay the parent's).
    alive = weakref.ref(engine)  # the hook must not keep a discarded engine alive

    def empty_pool_in_child() -> None:
        if (child := alive()) is not None:
            child.dispose(close=False)

    os.register_at_fork(after_in_child=empty_pool_in_child)
    return engine


def _create(database_url: str) -> Engine:
    # hide_parameters: an SQL error's text (logged with its traceback) names no value it was given: no password or
    # token hash, no member's data.
    if database_url.startswith("sqlite"):
        # Enough pooled connections for the worker threads: a new SQLite connection costs its pragmas.
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(database_url, pool_pre_ping=True, hide_parameters=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error.

    Data access is SQLAlchemy 2.0's, the same everywhere: `session.scalars(select(...))` and
    `session.scalar(select(...))` read entities or single values, `session.execute(select(...))` reads rows of
    several columns, `session.execute(update(...))` (insert, delete) writes, `session.get(Model, id)` reads by
    primary key.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
