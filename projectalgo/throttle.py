"""Attempts counted in the database, for the limits every worker must share: sign-ins, registrations and card
set-ups. Plain Python on a SQL session; no Reflex here.

An attempt is recorded (and committed) before the work it guards, then the earlier ones are counted: whatever
the database's isolation, concurrent attempts see each other, so count-and-check is atomic. An attempt refused
by the count is withdrawn again, so refusals never lengthen the wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo.models import Attempt

KEY_MAX_LENGTH = 64
SUBJECT_MAX_LENGTH = 254


@dataclass(frozen=True)
class Seen:
    """Earlier attempts within a window: how many, and the oldest and newest time among them."""

    count: int
    oldest: datetime | None
    newest: datetime | None


def record(session: Session, *, kind: str, key: str, now: datetime, subject: str = "") -> Attempt:
    """Record one attempt and commit it, so that concurrent attempts count it from now on."""
    attempt = Attempt(kind=kind, key=key[:KEY_MAX_LENGTH], subject=subject[:SUBJECT_MAX_LENGTH], at=now)
    session.add(attempt)
    session.commit()
    return attempt


def seen_before(session: Session, attempt: Attempt, *, since: datetime, same_subject: bool = False) -> Seen:
    """The other attempts of the same kind and key (and subject, if asked) since `since`."""
    query = select(func.count(), func.min(Attempt.at), func.max(Attempt.at)).where(
        col(Attempt.kind) == attempt.kind,
        col(Attempt.key) == attempt.key,
        col(Attempt.at) >= since,
        col(Attempt.id) != attempt.id,
    )
    if same_subject:
        query = query.where(col(Attempt.subject) == attempt.subject)
    count, oldest, newest = session.execute(query).one()
    return Seen(count, oldest, newest)


def withdraw(session: Session, attempt: Attempt) -> None:
    """Take back an attempt that was refused without being tried, and commit."""
    session.delete(attempt)
    session.commit()


def forget(session: Session, *, kind: str, key: str, subject: str) -> None:
    """Drop the recorded attempts of one key and subject (e.g. after the right password)."""
    session.execute(
        delete(Attempt).where(
            col(Attempt.kind) == kind,
            col(Attempt.key) == key[:KEY_MAX_LENGTH],
            col(Attempt.subject) == subject[:SUBJECT_MAX_LENGTH],
        )
    )


def wait_text(wait: timedelta) -> str:
    """ "30 seconds", "4 minutes": how long to wait, rounded up."""
    seconds = max(1, math.ceil(wait.total_seconds()))
    return f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
