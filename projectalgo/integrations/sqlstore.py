"""The embedded SnapshotStore on the app's SQL database: the default when no DynamoDB table is configured."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

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

    def put(self, snapshot: Snapshot) -> Snapshot:
        for _ in range(MAX_SAME_MS_RETRIES):
            try:
                with self._engine.begin() as connection:
                    connection.execute(insert(_table).values(**_row(snapshot)))
                return snapshot
            except IntegrityError:
                if not self._taken(snapshot.strategy_id, snapshot.at_ms):
                    raise  # not a clash of milliseconds: a broken reference, a bug to surface
                snapshot = dataclasses.replace(snapshot, at_ms=snapshot.at_ms + 1)
            except OperationalError as error:
                raise StoreUnavailableError(f"the SQL snapshot store is unavailable: {error.orig}") from error
        raise StoreUnavailableError("no free millisecond for this snapshot")

    def _taken(self, strategy_id: int, at_ms: int) -> bool:
        query = select(SnapshotRow.at_ms).where(SnapshotRow.strategy_id == strategy_id, SnapshotRow.at_ms == at_ms)
        with self._engine.connect() as connection:
            return connection.execute(query).first() is not None

    def latest(self, strategy_id: int) -> Snapshot | None:
        return self._first(
            select(SnapshotRow).where(SnapshotRow.strategy_id == strategy_id).order_by(SnapshotRow.at_ms.desc())
        )

    def between(
        self, strategy_id: int, start_ms: int, end_ms: int, *, limit: int = 1000, cursor: int | None = None
    ) -> Page:
        lower = start_ms if cursor is None else max(start_ms, cursor + 1)
        query = (
            select(SnapshotRow)
            .where(SnapshotRow.strategy_id == strategy_id, SnapshotRow.at_ms >= lower, SnapshotRow.at_ms < end_ms)
            .order_by(SnapshotRow.at_ms)
            .limit(limit + 1)
        )
        try:
            with self._engine.connect() as connection:
                rows = [_snapshot(SnapshotRow(**row._mapping)) for row in connection.execute(query)]
        except OperationalError as error:
            raise StoreUnavailableError(f"the SQL snapshot store is unavailable: {error.orig}") from error
        more = len(rows) > limit
        items = rows[:limit]
        return Page(items, items[-1].at_ms if more else None)

    def _first(self, query: object) -> Snapshot | None:
        try:
            with self._engine.connect() as connection:
                row = connection.execute(query.limit(1)).first()
        except OperationalError as error:
            raise StoreUnavailableError(f"the SQL snapshot store is unavailable: {error.orig}") from error
        return _snapshot(SnapshotRow(**row._mapping)) if row else None
