"""Memberships: who is exempt from paying, when a user's membership ends, and granting or extending one.

Plain Python on a SQL session; no Reflex here. Payments (billing.py) and admins (admin.py) grant through `grant`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo.clock import utcnow
from projectalgo.errors import InvalidInputError, NotFoundError
from projectalgo.models import Membership, User, id_of, max_length

SOURCES = ("stripe", "admin")
MAX_GRANT_DAYS = 3650
MEMBERSHIP_DAYS = 365  # what one paid PaymentIntent buys
NOTE_MAX_LENGTH = max_length(Membership, "note")


@dataclass(frozen=True)
class MembershipStatus:
    exempt: bool  # admins and moderators are never asked to pay
    ends_at: datetime | None

    @property
    def active(self) -> bool:
        return self.exempt or (self.ends_at is not None and self.ends_at > utcnow())


def is_exempt(user: User) -> bool:
    return user.has_role("admin") or user.has_role("moderator")


def membership_end(session: Session, user_id: int) -> datetime | None:
    return session.scalar(select(func.max(Membership.ends_at)).where(col(Membership.user_id) == user_id))


def status(session: Session, user: User) -> MembershipStatus:
    return MembershipStatus(exempt=is_exempt(user), ends_at=membership_end(session, id_of(user)))


def grant(session: Session, *, user_id: int, days: int, source: str, note: str = "") -> Membership:
    """Add `days` of membership, from the current end when one is still running, else from now.

    Callers that must not grant twice for the same payment hold a unique key in the same transaction.
    The user's row stays locked until the transaction ends, so two grants for one user never both start from
    the same end (on PostgreSQL; SQLite ignores the lock and lets one transaction write at a time).
    """
    if source not in SOURCES:
        raise InvalidInputError(f"Unknown membership source {source!r}.")
    if not 1 <= days <= MAX_GRANT_DAYS:
        raise InvalidInputError(f"Days must be between 1 and {MAX_GRANT_DAYS}.")
    if session.scalars(select(col(User.id)).where(col(User.id) == user_id).with_for_update()).first() is None:
        raise NotFoundError("That user does not exist.")
    now = utcnow()
    current_end = membership_end(session, user_id)
    starts_at = current_end if current_end and current_end > now else now
    membership = Membership(
        user_id=user_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(days=days),
        source=source,
        note=note[:NOTE_MAX_LENGTH],
        created_at=now,
    )
    session.add(membership)
    session.flush()
    return membership
