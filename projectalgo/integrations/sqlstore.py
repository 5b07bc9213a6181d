"""The embedded SnapshotStore on the app's SQL database: the default when no DynamoDB table is configured.

Roll-ups (snapshot_rollups) are kept in the transaction that inserts the snapshots: both or neither.
"""

from __future__ import annotations

import dataclasses
import operator
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Numeric, Row, Select, Table, bindparam, case, cast, select
from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from projectalgo.db import UNREACHABLE_ERRORS
from projectalgo.models import RollupRecord, SnapshotRecord, table_of
from projectalgo.snapshots import (
    ALL_TIME_END_MS,
    MAX_SAME_MS_RETRIES,
    NUMBER_FIELDS,
    ROLLUP_EXTREMES,
    Page,
    Rollup,
    RollupKey,
    Snapshot,
    StoreUnavailableError,
    all_snapshots,
    bucket_size,
    fold_rollups,
)

REBUILD_CHUNK = 500  # buckets per transaction: a few thousand bound parameters at most
_table = table_of(SnapshotRecord)
_rollups = table_of(RollupRecord)
# INSERT ... ON CONFLICT, as each database writes it.
UpsertInsert = SqliteInsert | PostgresqlInsert
_ROLLUP_KEY = (_rollups.c.strategy_id, _rollups.c.resolution, _rollups.c.bucket_ms)


class _CollisionError(Exception):
    """A snapshot of the batch hit a millisecond already stored."""


def _unreachable(error: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"the SQL snapshot store is unavailable: {getattr(error, 'orig', None) or error}")


def _row(snapshot: Snapshot) -> dict[str, object]:
    values = {name: str(getattr(snapshot, name)) for name in NUMBER_FIELDS}
    return {
        "strategy_id": snapshot.strategy_id,
        "at_ms": snapshot.at_ms,
        "account_id": snapshot.account_id,
        "symbol": snapshot.symbol,
        **values,
    }


def _snapshot(row: SnapshotRecord | Row[Any]) -> Snapshot:
    return Snapshot(
        strategy_id=row.strategy_id,
        account_id=row.account_id,
        at_ms=row.at_ms,
        symbol=row.symbol,
        **{name: Decimal(getattr(row, name)) for name in NUMBER_FIELDS},
    )


def _rollup_row(key: RollupKey, rollup: Rollup) -> dict[str, object]:
    _, resolution, bucket_ms = key  # the strategy is the last snapshot's
    return {
        **_row(rollup.last),
        "resolution": resolution,
        "bucket_ms": bucket_ms,
        **{name: str(getattr(rollup, name)) for name in ROLLUP_EXTREMES},
    }


def _rollup(row: Row[Any]) -> Rollup:
    """From a snapshot_rollups result row (building a RollupRecord model would cost more than the query)."""
    return Rollup(
        bucket_ms=row.bucket_ms,
        last=_snapshot(row),
        wallet_min=Decimal(row.wallet_min),
        wallet_max=Decimal(row.wallet_max),
        margin_min=Decimal(row.margin_min),
        margin_max=Decimal(row.margin_max),
    )


def _merge_statement(insert: UpsertInsert) -> UpsertInsert:
    """Insert a bucket, or merge it into the stored one in the database, as snapshots.merge_rollups does:
    the newer `last`, the wider extremes. Merging in SQL needs no read of the stored buckets and stays right
    when writers race: each row is merged under its own lock. The extremes (text, like every decimal here)
    compare as NUMERIC: exact on PostgreSQL, double precision on SQLite, which can only misorder values
    equal to about 15 significant digits, far below what a chart's band shows.
    """
    stored, new = _rollups.c, insert.excluded
    newer = new.at_ms > stored.at_ms
    last = {
        name: case((newer, new[name]), else_=stored[name]) for name in ("at_ms", "account_id", "symbol", *NUMBER_FIELDS)
    }

    def wider(
        name: str, compare: Callable[[ColumnElement[Decimal], ColumnElement[Decimal]], ColumnElement[bool]]
    ) -> ColumnElement[str]:
        return case((compare(cast(new[name], Numeric), cast(stored[name], Numeric)), new[name]), else_=stored[name])

    extremes = {
        "wallet_min": wider("wallet_min", operator.lt),
        "wallet_max": wider("wallet_max", operator.gt),
        "margin_min": wider("margin_min", operator.lt),
        "margin_max": wider("margin_max", operator.gt),
    }
    return insert.on_conflict_do_update(index_elements=list(_ROLLUP_KEY), set_=last | extremes)


# Built once: ingestion reads a strategy's newest snapshots for every batch (flows.record_flow_points), and building
# the statement cost more than running it.
_RECENT = (
    select(SnapshotRecord)
    .where(
        col(SnapshotRecord.strategy_id) == bindparam("strategy_id"),
        col(SnapshotRecord.at_ms) < bindparam("before_ms"),
    )
    .order_by(col(SnapshotRecord.at_ms).desc())
    .limit(bindparam("limit"))
)


class SqlSnapshotStore:
    name = "sql"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialects: dict[str, Callable[[Table], UpsertInsert]] = {
            "sqlite": sqlite_insert,
            "postgresql": postgresql_insert,
        }
        dialect = dialects[engine.dialect.name]
        # RETURNING says which rows went in (psycopg reports no rowcount for ON CONFLICT DO NOTHING).
        self._insert = dialect(_table).on_conflict_do_nothing().returning(_table.c.strategy_id, _table.c.at_ms)
        self._merge_rollup = _merge_statement(dialect(_rollups))
        # One writer at a time in this process: SQLite's busy handler would make the others sleep.
        self._write_lock = threading.Lock()

    def put_many(self, snapshots: list[Snapshot]) -> list[Snapshot | Exception]:
        """All in one transaction with their roll-ups: a commit costs ~30 inserts.

        A batch that collides with stored snapshots, or that the database refuses, is stored again one
        snapshot per transaction, in order: a snapshot moved to a free millisecond then stays after the ones
        posted before it, and a snapshot the database refuses fails alone.
        """
        try:
            return list(self._store(snapshots, in_one_statement=True))
        except UNREACHABLE_ERRORS as error:
            return [_unreachable(error) for _ in snapshots]
        except Exception:  # noqa: BLE001 - each snapshot is tried again on its own just below
            return [self._put_alone(snapshot) for snapshot in snapshots]

    def _put_alone(self, snapshot: Snapshot) -> Snapshot | Exception:
        try:
            return self._store([snapshot], in_one_statement=False)[0]
        except UNREACHABLE_ERRORS as error:
            return _unreachable(error)
        except Exception as error:  # noqa: BLE001 - this snapshot's own answer
            return error

    def _store(self, snapshots: list[Snapshot], *, in_one_statement: bool) -> list[Snapshot]:
        with self._write_lock, self._engine.begin() as connection:
            if in_one_statement:
                stored = self._insert_all(connection, snapshots)
            else:
                stored = [self._insert_one(connection, snapshot) for snapshot in snapshots]
            self._merge_rollups(connection, fold_rollups(stored))
        return stored

    def _insert_all(self, connection: Connection, snapshots: list[Snapshot]) -> list[Snapshot]:
        """One INSERT for the batch; _CollisionError (rolling it back) if a millisecond is already taken."""
        planned: list[Snapshot] = []
        keys: set[tuple[int, int]] = set()
        for snapshot in snapshots:  # two of the batch at the same millisecond: the later moves on
            while (snapshot.strategy_id, snapshot.at_ms) in keys:
                snapshot = dataclasses.replace(snapshot, at_ms=snapshot.at_ms + 1)
            keys.add((snapshot.strategy_id, snapshot.at_ms))
            planned.append(snapshot)
        # Rows in key order: concurrent writers (several workers on PostgreSQL) lock keys in the same order.
        rows = [_row(snapshot) for snapshot in sorted(planned, key=lambda s: (s.strategy_id, s.at_ms))]
        if len(connection.execute(self._insert, rows).all()) < len(rows):
            raise _CollisionError
        return planned

    def _insert_one(self, connection: Connection, snapshot: Snapshot) -> Snapshot:
        """Insert at the snapshot's millisecond, or the next free one: nothing is ever overwritten."""
        for _ in range(MAX_SAME_MS_RETRIES):
            if connection.execute(self._insert, _row(snapshot)).first() is not None:
                return snapshot
            snapshot = dataclasses.replace(snapshot, at_ms=snapshot.at_ms + 1)
        raise StoreUnavailableError("no free millisecond for this snapshot")

    def _merge_rollups(self, connection: Connection, folded: dict[RollupKey, Rollup]) -> None:
        """Merge buckets folded in memory into the stored ones: one upsert for the whole batch.

        Sorted keys give every writer the same lock order.
        """
        connection.execute(self._merge_rollup, [_rollup_row(key, folded[key]) for key in sorted(folded)])

    def rollups(self, strategy_id: int, resolution: str, start_ms: int, end_ms: int) -> list[Rollup]:
        bucket_size(resolution)  # an unknown resolution is a ValueError, not an empty chart
        query = (
            select(RollupRecord)
            .where(
                col(RollupRecord.strategy_id) == strategy_id,
                col(RollupRecord.resolution) == resolution,
                col(RollupRecord.bucket_ms) >= start_ms,
                col(RollupRecord.bucket_ms) < end_ms,
            )
            .order_by(col(RollupRecord.bucket_ms))
        )
        try:
            with self._engine.connect() as connection:
                return [_rollup(row) for row in connection.execute(query)]
        except UNREACHABLE_ERRORS as error:
            raise _unreachable(error) from error

    def rebuild_rollups(self, strategy_id: int) -> int:
        """Recompute a strategy's roll-ups from its snapshots and merge them in; the number of buckets.

        Only ever needed for snapshots stored before roll-ups existed (here a snapshot and its roll-ups
        commit together). Safe while bots post: a merge never undoes another writer's.
        """
        folded = fold_rollups(all_snapshots(self, strategy_id))
        keys = sorted(folded)
        try:
            for start in range(0, len(keys), REBUILD_CHUNK):
                chunk = {key: folded[key] for key in keys[start : start + REBUILD_CHUNK]}
                with self._write_lock, self._engine.begin() as connection:
                    self._merge_rollups(connection, chunk)
        except UNREACHABLE_ERRORS as error:
            raise _unreachable(error) from error
        return len(folded)

    def latest(self, strategy_id: int) -> Snapshot | None:
        return next(iter(self.recent(strategy_id, ALL_TIME_END_MS, limit=1)), None)

    def earliest(self, strategy_id: int) -> Snapshot | None:
        query = (
            select(SnapshotRecord)
            .where(col(SnapshotRecord.strategy_id) == strategy_id)
            .order_by(col(SnapshotRecord.at_ms))
            .limit(1)
        )
        return next(iter(self._read(query)), None)

    def recent(self, strategy_id: int, before_ms: int, *, limit: int) -> list[Snapshot]:
        return self._read(_RECENT, {"strategy_id": strategy_id, "before_ms": before_ms, "limit": limit})

    def between(
        self, strategy_id: int, start_ms: int, end_ms: int, *, limit: int = 1000, cursor: int | None = None
    ) -> Page:
        lower = start_ms if cursor is None else max(start_ms, cursor + 1)
        rows = self._read(
            select(SnapshotRecord)
            .where(
                col(SnapshotRecord.strategy_id) == strategy_id,
                col(SnapshotRecord.at_ms) >= lower,
                col(SnapshotRecord.at_ms) < end_ms,
            )
            .order_by(col(SnapshotRecord.at_ms))
            .limit(limit + 1)
        )
        items = rows[:limit]
        return Page(items, items[-1].at_ms if len(rows) > limit else None)

    def _read(self, query: Select[SnapshotRecord], values: dict[str, int] | None = None) -> list[Snapshot]:
        try:
            with self._engine.connect() as connection:
                return [_snapshot(row) for row in connection.execute(query, values)]
        except UNREACHABLE_ERRORS as error:
            raise _unreachable(error) from error
