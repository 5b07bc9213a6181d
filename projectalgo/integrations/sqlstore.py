"""The embedded SnapshotStore on the app's SQL database: the default when no DynamoDB table is configured."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future
from decimal import Decimal

from sqlalchemy import Connection, Engine, Select, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from projectalgo.models import SnapshotRow
from projectalgo.snapshots import NUMBER_FIELDS, Page, Snapshot, StoreUnavailableError

MAX_SAME_MS_RETRIES = 1000
_table = SnapshotRow.__table__


def _row(snapshot: Snapshot) -> dict[str, object]:
    values = {name: str(getattr(snapshot, name)) for name in NUMBER_FIELDS}
    return {
        "strategy_id": snapshot.strategy_id,
        "at_ms": snapshot.at_ms,
        "account_id": snapshot.account_id,
        "symbol": snapshot.symbol,
        **values,
    }


def _snapshot(row: SnapshotRow) -> Snapshot:
    return Snapshot(
        strategy_id=row.strategy_id,
        account_id=row.account_id,
        at_ms=row.at_ms,
        symbol=row.symbol,
        **{name: Decimal(getattr(row, name)) for name in NUMBER_FIELDS},
    )


class SqlSnapshotStore:
    name = "sql"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}[engine.dialect.name]
        self._insert = dialect(_table).on_conflict_do_nothing()
        # Group commit: a commit costs ~30 inserts, so concurrent puts queue here and whoever holds the
        # write lock commits everything queued in one transaction. It also keeps SQLite's busy handler,
        # which backs off by sleeping, out of the way.
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[tuple[Snapshot, Future[Snapshot]]] = []

    def put(self, snapshot: Snapshot) -> Snapshot:
        done: Future[Snapshot] = Future()
        with self._queue_lock:
            self._queue.append((snapshot, done))
        with self._write_lock:
            if not done.done():  # nobody has committed it yet: commit it and everything queued with it
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        return done.result()

    def _commit(self, batch: list[tuple[Snapshot, Future[Snapshot]]]) -> None:
        try:
            with self._engine.begin() as connection:
                stored = [self._insert_one(connection, snapshot) for snapshot, _ in batch]
        except OperationalError as error:
            failure = StoreUnavailableError(f"the SQL snapshot store is unavailable: {error.orig}")
            for _, done in batch:
                done.set_exception(failure)
            return
        except Exception as error:  # noqa: BLE001 - handed to the callers, none of whose snapshots is stored
            for _, done in batch:
                done.set_exception(error)
            return
        for (_, done), snapshot in zip(batch, stored, strict=True):
            done.set_result(snapshot)

    def _insert_one(self, connection: Connection, snapshot: Snapshot) -> Snapshot:
        """Insert at the snapshot's millisecond, or the next free one: nothing is ever overwritten."""
        for _ in range(MAX_SAME_MS_RETRIES):
            if connection.execute(self._insert, _row(snapshot)).rowcount == 1:
                return snapshot
            snapshot = dataclasses.replace(snapshot, at_ms=snapshot.at_ms + 1)
        raise StoreUnavailableError("no free millisecond for this snapshot")

    def latest(self, strategy_id: int) -> Snapshot | None:
        return next(iter(self.recent(strategy_id, 2**62, limit=1)), None)

    def recent(self, strategy_id: int, before_ms: int, *, limit: int) -> list[Snapshot]:
        return self._read(
            select(SnapshotRow)
            .where(SnapshotRow.strategy_id == strategy_id, SnapshotRow.at_ms < before_ms)
            .order_by(SnapshotRow.at_ms.desc())
            .limit(limit)
        )

    def between(
        self, strategy_id: int, start_ms: int, end_ms: int, *, limit: int = 1000, cursor: int | None = None
    ) -> Page:
        lower = start_ms if cursor is None else max(start_ms, cursor + 1)
        rows = self._read(
            select(SnapshotRow)
            .where(SnapshotRow.strategy_id == strategy_id, SnapshotRow.at_ms >= lower, SnapshotRow.at_ms < end_ms)
            .order_by(SnapshotRow.at_ms)
            .limit(limit + 1)
        )
        items = rows[:limit]
        return Page(items, items[-1].at_ms if len(rows) > limit else None)

    def _read(self, query: Select) -> list[Snapshot]:
        try:
            with self._engine.connect() as connection:
                return [_snapshot(SnapshotRow(**row._mapping)) for row in connection.execute(query)]
        except OperationalError as error:
            raise StoreUnavailableError(f"the SQL snapshot store is unavailable: {error.orig}") from error
