"""Leases: work that exactly one worker does at a time (the alerts' sweep), held by name in the database.

A holder takes a lease for `ttl` and renews it before it runs out; a worker that dies stops renewing, and once the
lease has expired another takes it. Taking is one conditional UPDATE (free when expired, or already ours), else
one INSERT that does nothing when the name exists: atomic on SQLite (writes are serialised) and on PostgreSQL (the
row lock, then the unique name), so there are never two holders. Times are the caller's clock: workers' clocks
must agree to within a small part of the ttl. No Reflex.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo.models import Lease, table_of


def _changed(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


def take(session: Session, name: str, holder: str, *, ttl: timedelta, now: datetime) -> bool:
    """Take the lease `name` for `holder` until now + ttl, or renew it; False when another holds it unexpired.
    Commit the session for it to count."""
    expires_at = now + ttl
    renewed = session.execute(
        update(Lease)
        .where(col(Lease.name) == name, (col(Lease.expires_at) < now) | (col(Lease.holder) == holder))
        .values(holder=holder, expires_at=expires_at)
    )
    if _changed(renewed):
        return True
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = table_of(Lease)
    created = session.execute(
        insert(table)
        .values(name=name, holder=holder, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(table.c.name)  # psycopg counts no rows for an INSERT ... ON CONFLICT: the row returned says
    ).first()
    return created is not None


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up now, if `holder` holds it (a worker stopping): another may take it at once."""
    session.execute(delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))
