"""The writes in doubt: snapshot writes answered "not stored" (503) whose fate is unknown. Their answer was lost
(a read timeout, a closed connection) and DynamoDB could not be asked whether they landed; the store deletes
each one that did (store.py, DynamoSnapshotStore.settle_in_doubt) and then forgets it here.

SqlInDoubtLog keeps them in the SQL database (table in_doubt_writes): a restart does not forget them, and any
worker settles any worker's (a bot's retry may reach another worker). MemoryInDoubtLog keeps them in this
process, for a store that never serves bots (the create-table command, tests).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from projectalgo.clock import utcnow
from projectalgo.db import UNREACHABLE_ERRORS
from projectalgo.models import InDoubtWrite
from projectalgo.snapshots import StoreUnavailableError

log = logging.getLogger("projectalgo.rollups")  # the store's logger


@dataclass(frozen=True)
class InDoubt:
    """A write that may have landed: the item at (strategy_id, at_ms) is ours if it carries snapshot_id."""

    strategy_id: int
    at_ms: int
    snapshot_id: str


class InDoubtLog(Protocol):
    def record(self, write: InDoubt) -> None:
        """Remember a write answered "not stored" that may have landed; never raises."""
        ...

    def pending(self) -> list[InDoubt]:
        """The writes to settle, oldest first. Raises StoreUnavailableError when they cannot be read: writing
        before they are settled could store a bot's retry beside its first try."""
        ...

    def forget(self, write: InDoubt) -> None:
        """A settled write: deleted from DynamoDB if it had landed. Forgetting one twice is harmless."""
        ...


class MemoryInDoubtLog:
    """The writes in doubt in this process's memory: lost on restart, unknown to other workers."""

    def __init__(self) -> None:
        self._writes: list[InDoubt] = []
        self._lock = threading.Lock()

    def record(self, write: InDoubt) -> None:
        with self._lock:
            self._writes.append(write)

    def pending(self) -> list[InDoubt]:
        with self._lock:
            return list(self._writes)

    def forget(self, write: InDoubt) -> None:
        with self._lock:
            if write in self._writes:
                self._writes.remove(write)


class SqlInDoubtLog:
    """The writes in doubt in the SQL database, shared by every worker and kept across restarts.

    Several workers may settle the same rows at once: DynamoDB's conditional delete is idempotent, and deleting
    a row twice deletes nothing the second time. A write that cannot be recorded (the database is down too) is
    logged (`in_doubt.record_failed`) and kept in this process's memory, recorded again at the next settling.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._unrecorded = MemoryInDoubtLog()

    def record(self, write: InDoubt) -> None:
        if not self._insert(write, log_failure=True):
            self._unrecorded.record(write)

    def _insert(self, write: InDoubt, *, log_failure: bool) -> bool:
        row = {
            "strategy_id": write.strategy_id,
            "at_ms": write.at_ms,
            "snapshot_id": write.snapshot_id,
            "created_at": utcnow(),
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(InDoubtWrite).values(**row))
        except IntegrityError:
            return True  # recorded already (an earlier try whose commit's answer was lost)
        except Exception:  # never fail the caller: it is answering "not stored" anyway
            if not log_failure:
                return False
            log.exception(
                "in_doubt.record_failed strategy_id=%s at_ms=%s snapshot_id=%s",
                write.strategy_id,
                write.at_ms,
                write.snapshot_id,
            )
            return False
        return True

    def pending(self) -> list[InDoubt]:
        unrecorded = self._unrecorded.pending()
        for write in unrecorded:
            if self._insert(write, log_failure=False):  # logged once, when it was not recorded
                self._unrecorded.forget(write)
        columns = col(InDoubtWrite.strategy_id), col(InDoubtWrite.at_ms), col(InDoubtWrite.snapshot_id)
        query = select(*columns).order_by(col(InDoubtWrite.id))
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).all()
        except UNREACHABLE_ERRORS as error:
            raise StoreUnavailableError(f"the writes in doubt cannot be read: {error}") from error
        recorded = [InDoubt(*row) for row in rows]
        return [*(write for write in self._unrecorded.pending() if write not in recorded), *recorded]

    def forget(self, write: InDoubt) -> None:
        self._unrecorded.forget(write)
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    delete(InDoubtWrite).where(
                        col(InDoubtWrite.strategy_id) == write.strategy_id,
                        col(InDoubtWrite.at_ms) == write.at_ms,
                        col(InDoubtWrite.snapshot_id) == write.snapshot_id,
                    )
                )
        except UNREACHABLE_ERRORS as error:  # settled all the same: the next settling deletes nothing again
            raise StoreUnavailableError(f"a settled write in doubt cannot be forgotten: {error}") from error
