"""The admin's tools: users and roles, invitations, memberships, payments, strategies and the audit log.

Every function takes the acting user and checks the role first: admins may change, moderators may read
users and strategies, nobody else anything. Every change is written to the audit log in the same
transaction; a refusal is recorded by `record_refusal` in its own (the refused one is rolled back). The
operator commands (cli.py) record their changes with `record_command_line_change`: no user signs in to them.

Text that reaches the audit log from a browser is whitelisted (roles) or cut to the column sizes, and
refusals are recorded a few a minute at most (per tab, see `RefusalBudget`, and per actor): anyone may call
an admin event, so refusals must not be able to fill the table or push real changes off the admin's view.
Plain Python on a SQL session; no Reflex here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import forms, members, memberships
from projectalgo.clock import utcnow
from projectalgo.errors import InvalidInputError, NotAllowedError
from projectalgo.members import Actor
from projectalgo.models import (
    ROLES,
    AuditEntry,
    BrokerageAccount,
    Invitation,
    LoginSession,
    Membership,
    Payment,
    Strategy,
    User,
    id_of,
    max_length,
)

MAX_INVITE_USES = 10_000
PAGE_SIZE = 25
SEARCH_MAX_LENGTH = 100
# The audit log's column sizes, read from the model.
ACTION_MAX_LENGTH = max_length(AuditEntry, "action")
TARGET_MAX_LENGTH = max_length(AuditEntry, "target")
REASON_MAX_LENGTH = max_length(AuditEntry, "reason")
MANAGED_ROLES = ("moderator", "admin")  # the roles changed on /admin ("member" is everyone's)
# Refusals recorded per window: per tab (RefusalBudget), and per actor across tabs and workers (all anonymous
# callers count as one actor). Further refusals are counted in the log only.
REFUSAL_WINDOW_SECONDS = 60
REFUSALS_PER_TAB = 5
REFUSALS_PER_ACTOR = 20
REFUSALS_SHOWN = 20  # the audit view shows the newest refusals apart, so they never push changes off it
# Who the audit log names for an entry without a user: a change by an operator command, or a refusal of a
# caller who was not signed in. Every web change has a signed-in admin, so the outcome tells the two apart.
COMMAND_LINE = "command line"
ANONYMOUS = "anonymous"

log = logging.getLogger("projectalgo.admin")


class AdminError(InvalidInputError):
    """Bad input or a rule that forbids the change; the message is safe to show."""


def plural(count: int, noun: str) -> str:
    """'1 day', '30 days': a count with its noun (a regular English plural)."""
    return f"{count} {noun if count == 1 else noun + 's'}"


def role_action(role: object, grant: object) -> str:
    """The audit log's name for a role change as the browser asked for it: only known roles and verbs."""
    verb = ("grant" if grant else "remove") if isinstance(grant, bool) else "change"
    return f"{verb} {role}" if isinstance(role, str) and role in ROLES else f"{verb} invalid role"


def _check_reason(reason: str) -> str:
    if len(reason) > REASON_MAX_LENGTH:
        raise forms.InputError(f"The reason must be at most {REASON_MAX_LENGTH} characters long.")
    return reason


def _require_admin(actor: Actor | None) -> Actor:
    if actor is None or not actor.is_admin:
        raise NotAllowedError("Only admins may do this.")
    return actor


def _require_moderator(actor: Actor | None) -> Actor:
    if actor is None or not actor.is_moderator:
        raise NotAllowedError("Only moderators and admins may see this.")
    return actor


def _audit(session: Session, actor: Actor | None, action: str, user: User | None, target: str, reason: str) -> None:
    """A change done, in the caller's transaction; `actor` None is an operator command (COMMAND_LINE)."""
    session.add(
        AuditEntry(
            at=utcnow(),
            actor_id=actor.user_id if actor else None,
            action=action[:ACTION_MAX_LENGTH],
            target_user_id=user.id if user else None,
            target=target[:TARGET_MAX_LENGTH],
            reason=reason.strip()[:REASON_MAX_LENGTH],
            outcome="done",
        )
    )


def record_change(session: Session, actor: Actor, *, action: str, user: User | None, target: str) -> None:
    """Audit an admin's change made elsewhere than here (e.g. revoking a member's share link, sharing.py), in the
    caller's transaction."""
    _audit(session, _require_admin(actor), action, user, target, "")


def record_command_line_change(
    session: Session, *, action: str, user: User | None, target: str = "", reason: str = ""
) -> None:
    """Audit a change made by an operator command (`python -m projectalgo ...`), in its own transaction.

    Recorded as done without an actor: the audit view names it COMMAND_LINE (a refusal without an actor is an
    anonymous caller's), and it never counts against the anonymous callers' refusal cap. `target` defaults to
    the user's email."""
    _audit(session, None, action, user, target or (user.email if user else ""), reason)


@dataclass(frozen=True)
class RefusalBudget:
    """One tab's refusals recorded in the current window, and how many went unrecorded since the tab opened.

    Kept in the tab's own state, so it follows the tab (its client token) across workers. A caller who opens
    tab after tab gets a fresh budget each time: `record_refusal` also caps refusals per actor.
    """

    started: float = 0.0  # wall-clock seconds
    recorded: int = 0
    unrecorded: int = 0

    def take(self, now: float) -> RefusalBudget | None:
        """The budget with one more refusal recorded, or None when this window's are used up."""
        current = self if 0 <= now - self.started < REFUSAL_WINDOW_SECONDS else replace(self, started=now, recorded=0)
        if current.recorded >= REFUSALS_PER_TAB:
            return None
        return replace(current, recorded=current.recorded + 1)

    def skip(self, *, actor: Actor | None, action: str, tab: str) -> RefusalBudget:
        """Count one refusal that was not recorded; logged at the 1st, 2nd, 4th, 8th... of the tab."""
        skipped = replace(self, unrecorded=self.unrecorded + 1)
        if skipped.unrecorded & (skipped.unrecorded - 1) == 0:
            log.warning(
                "admin.refusals_not_recorded actor=%s action=%s tab=%s count=%d",
                actor.user_id if actor else "anonymous",
                action[:ACTION_MAX_LENGTH],
                tab[:8],
                skipped.unrecorded,
            )
        return skipped


def record_refusal(session: Session, actor: Actor | None, action: str, target: str) -> bool:
    """Record a refused admin action (e.g. a member calling an admin event directly) in the audit log.

    Returns False, recording nothing, once the actor (or, for callers not signed in, all of them together)
    has REFUSALS_PER_ACTOR refusals recorded in the last REFUSAL_WINDOW_SECONDS. Concurrent calls may each
    pass the count before either inserts: the cap holds within a few rows. `action` and `target` are cut to
    the column sizes; callers pass no browser text in `action` beyond what `role_action` lets through.
    """
    now = utcnow()
    who = col(AuditEntry.actor_id) == actor.user_id if actor else col(AuditEntry.actor_id).is_(None)
    recent = session.scalars(
        select(func.count())
        .select_from(AuditEntry)
        .where(
            col(AuditEntry.at) >= now - timedelta(seconds=REFUSAL_WINDOW_SECONDS),
            col(AuditEntry.outcome) == "refused",
            who,
        )
    ).one()
    if recent >= REFUSALS_PER_ACTOR:
        return False
    session.add(
        AuditEntry(
            at=now,
            actor_id=actor.user_id if actor else None,
            action=action[:ACTION_MAX_LENGTH],
            target=target[:TARGET_MAX_LENGTH],
            outcome="refused",
        )
    )
    return True


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if forms.parse_id(user_id) == user_id else None
    if user is None:
        raise AdminError("No such user.")
    return user


# Users


@dataclass(frozen=True)
class UserView:
    id: int
    name: str
    email: str
    roles: tuple[str, ...]
    membership_ends_at: datetime | None
    created_at: datetime
    last_sign_in_at: datetime | None
    disabled: bool


def list_users(session: Session, actor: Actor | None, *, search: str = "", page: int = 1) -> tuple[list[UserView], int]:
    """One page of users matching `search` (name or email), and how many match in all."""
    _require_moderator(actor)
    query = select(User)
    if search.strip():
        pattern = f"%{search.strip().lower()}%"
        query = query.where(or_(func.lower(User.name).like(pattern), col(User.email).like(pattern)))
    total = session.scalars(select(func.count()).select_from(query.subquery())).one()
    users = session.scalars(query.order_by(col(User.id)).offset((max(page, 1) - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    ends = dict(
        session.execute(
            select(col(Membership.user_id), func.max(Membership.ends_at))
            .where(col(Membership.user_id).in_([u.id for u in users]))
            .group_by(col(Membership.user_id))
        ).all()
    )
    rows = [
        UserView(
            id_of(u),
            u.name,
            u.email,
            tuple(u.roles),
            ends.get(id_of(u)),
            u.created_at,
            u.last_sign_in_at,
            u.disabled_at is not None,
        )
        for u in users
    ]
    return rows, total


def _admin_count(session: Session) -> int:
    users = session.scalars(select(User).where(col(User.disabled_at).is_(None))).all()
    return sum(u.has_role("admin") for u in users)


def set_role(session: Session, actor: Actor | None, *, user_id: int, role: str, grant: bool, reason: str = "") -> User:
    actor = _require_admin(actor)
    if role not in MANAGED_ROLES:
        raise AdminError("Only the moderator and admin roles are managed here.")
    reason = _check_reason(reason)
    user = _user(session, user_id)
    if role == "admin" and not grant:
        if user.id == actor.user_id:
            raise AdminError("You cannot remove your own admin role; ask another admin.")
        if user.has_role("admin") and _admin_count(session) <= 1:
            raise AdminError("The last admin cannot be demoted.")
    members.change_role(session, user=user, role=role, grant=grant)
    _audit(session, actor, f"{'grant' if grant else 'remove'} {role}", user, user.email, reason)
    return user


def set_disabled(session: Session, actor: Actor | None, *, user_id: int, disabled: bool, reason: str = "") -> User:
    """A disabled user's sessions end at once and their bots' tokens stop being accepted; their data stays."""
    actor = _require_admin(actor)
    reason = _check_reason(reason)
    user = _user(session, user_id)
    if user.id == actor.user_id:
        raise AdminError("You cannot disable yourself.")
    now = utcnow()
    user.disabled_at = now if disabled else None
    session.add(user)
    if disabled:
        session.execute(
            update(LoginSession)
            .where(col(LoginSession.user_id) == user.id, col(LoginSession.revoked_at).is_(None))
            .values(revoked_at=now)
        )
    _audit(session, actor, "disable user" if disabled else "enable user", user, user.email, reason)
    return user


# Invitations


@dataclass(frozen=True)
class InviteView:
    id: int
    code: str
    owner_name: str
    owner_email: str
    uses_remaining: int
    registrations: int
    disabled: bool


def list_invites(session: Session, actor: Actor | None) -> list[InviteView]:
    _require_admin(actor)
    registrations = (
        select(col(User.invited_with_id), func.count().label("n")).group_by(col(User.invited_with_id)).subquery()
    )
    rows = session.execute(
        select(Invitation, col(User.name), col(User.email), func.coalesce(registrations.c.n, 0))
        .join(User, col(User.id) == Invitation.owner_id)
        .outerjoin(registrations, registrations.c.invited_with_id == Invitation.id)
        .order_by(col(Invitation.id))
    ).all()
    return [
        InviteView(id_of(i), i.code, name, email, i.uses_remaining, n, i.disabled_at is not None)
        for i, name, email, n in rows
    ]


def _invitation(session: Session, invitation_id: int) -> Invitation:
    invitation = session.get(Invitation, invitation_id) if forms.parse_id(invitation_id) == invitation_id else None
    if invitation is None:
        raise AdminError("No such invitation.")
    return invitation


def _check_uses(uses: int) -> int:
    if not 0 <= uses <= MAX_INVITE_USES:
        raise AdminError(f"Uses must be between 0 and {MAX_INVITE_USES}.")
    return uses


def set_invite_uses(session: Session, actor: Actor | None, *, invitation_id: int, uses: int, reason: str = "") -> None:
    actor = _require_admin(actor)
    reason = _check_reason(reason)
    invitation = _invitation(session, invitation_id)
    before = invitation.uses_remaining
    invitation.uses_remaining = _check_uses(uses)
    session.add(invitation)
    owner = session.get(User, invitation.owner_id)
    _audit(session, actor, f"invite uses {before} -> {uses}", owner, invitation.code, reason)


def set_invite_disabled(
    session: Session, actor: Actor | None, *, invitation_id: int, disabled: bool, reason: str = ""
) -> None:
    actor = _require_admin(actor)
    reason = _check_reason(reason)
    invitation = _invitation(session, invitation_id)
    invitation.disabled_at = utcnow() if disabled else None
    session.add(invitation)
    owner = session.get(User, invitation.owner_id)
    _audit(session, actor, "disable invite" if disabled else "enable invite", owner, invitation.code, reason)


def create_invite(session: Session, actor: Actor | None, *, user_id: int, uses: int, reason: str = "") -> Invitation:
    actor = _require_admin(actor)
    reason = _check_reason(reason)
    owner = _user(session, user_id)
    invitation = Invitation(
        code=members.new_invite_code(), owner_id=id_of(owner), uses_remaining=_check_uses(uses), created_at=utcnow()
    )
    session.add(invitation)
    session.flush()
    _audit(session, actor, f"create invite ({plural(uses, 'use')})", owner, invitation.code, reason)
    return invitation


# Password resets


def issue_password_reset(session: Session, actor: Actor | None, *, user_id: int) -> str:
    """A one-time password reset token for the user, for the admin to hand over themselves (no email is sent).

    The audit log records that a link was issued and for whom, never the token. Nothing ends yet: the user's
    sessions end when they set the new password with it.
    """
    actor = _require_admin(actor)
    user = _user(session, user_id)
    if user.disabled_at is not None:
        raise AdminError("This user is disabled: enable them before issuing a reset link.")
    token = members.issue_password_reset(session, user=user)
    _audit(session, actor, "issue password reset link", user, user.email, "")
    return token


# Memberships and payments


def grant_membership_action(days: int) -> str:
    """The audit log's name for a membership grant, from /admin or the command line alike."""
    return f"grant membership {plural(days, 'day')}"


def grant_membership(session: Session, actor: Actor | None, *, user_id: int, days: int, reason: str = "") -> Membership:
    actor = _require_admin(actor)
    reason = _check_reason(reason)
    user = _user(session, user_id)
    membership = memberships.grant(session, user_id=id_of(user), days=days, source="admin", note=reason)
    _audit(session, actor, grant_membership_action(days), user, user.email, reason)
    return membership


def end_membership(session: Session, actor: Actor | None, *, user_id: int, reason: str = "") -> None:
    """Ends the user's membership now (every period still running or yet to come)."""
    actor = _require_admin(actor)
    reason = _check_reason(reason)
    user = _user(session, user_id)
    if not reason.strip():
        raise AdminError("Give a reason for ending a membership.")
    now = utcnow()
    session.execute(
        update(Membership).where(col(Membership.user_id) == user.id, col(Membership.ends_at) > now).values(ends_at=now)
    )
    session.execute(
        update(Membership)
        .where(col(Membership.user_id) == user.id, col(Membership.starts_at) > now)
        .values(starts_at=now)
    )
    _audit(session, actor, "end membership", user, user.email, reason)


@dataclass(frozen=True)
class PaymentView:
    created_at: datetime
    user_email: str
    amount: int
    currency: str
    status: str
    stripe_id: str


def list_payments(session: Session, actor: Actor | None, *, limit: int = 200) -> list[PaymentView]:
    _require_admin(actor)
    rows = session.execute(
        select(Payment, col(User.email))
        .join(User, col(User.id) == Payment.user_id)
        .order_by(col(Payment.id).desc())
        .limit(limit)
    ).all()
    return [
        PaymentView(p.created_at, email, p.amount, p.currency, p.status, p.stripe_payment_intent_id)
        for p, email in rows
    ]


# Strategies


@dataclass(frozen=True)
class OwnedStrategyView:
    id: int
    name: str
    owner_email: str
    account_name: str
    last_snapshot_at: datetime | None
    archived: bool


def list_strategies(session: Session, actor: Actor | None) -> list[OwnedStrategyView]:
    _require_moderator(actor)
    rows = session.execute(
        select(Strategy, col(User.email), col(BrokerageAccount.name))
        .join(User, col(User.id) == Strategy.owner_id)
        .join(BrokerageAccount, col(BrokerageAccount.id) == Strategy.account_id)
        .order_by(col(Strategy.id))
    ).all()
    return [
        OwnedStrategyView(id_of(s), s.name, email, account, s.last_snapshot_at, s.archived_at is not None)
        for s, email, account in rows
    ]


# Audit log


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    target: str
    reason: str
    outcome: str


def audit_log(
    session: Session, actor: Actor | None, *, limit: int = 100, refusals: int = REFUSALS_SHOWN
) -> list[AuditView]:
    """The newest `limit` changes and, among them by time, the newest `refusals` refusals; newest first."""
    _require_admin(actor)
    newest = select(AuditEntry).order_by(col(AuditEntry.id).desc())
    done = session.scalars(newest.where(col(AuditEntry.outcome) != "refused").limit(limit)).all()
    refused = session.scalars(newest.where(col(AuditEntry.outcome) == "refused").limit(refusals)).all()
    entries = sorted([*done, *refused], key=id_of, reverse=True)
    emails = dict(
        session.execute(
            select(col(User.id), col(User.email)).where(col(User.id).in_({e.actor_id for e in entries if e.actor_id}))
        ).all()
    )
    return [AuditView(e.at, _actor_name(e, emails), e.action, e.target, e.reason, e.outcome) for e in entries]


def _actor_name(entry: AuditEntry, emails: Mapping[int | None, str]) -> str:
    if entry.actor_id is not None:
        return emails.get(entry.actor_id, ANONYMOUS)
    return ANONYMOUS if entry.outcome == "refused" else COMMAND_LINE
