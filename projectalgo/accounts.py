"""Members: invite-only registration, bcrypt passwords, login sessions, roles and sign-in throttling.

Plain Python on a SQL session; no Reflex here. Functions that hash or check passwords are blocking:
callers on an event loop run them in a thread.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from projectalgo.clock import utcnow
from projectalgo.models import ROLES, FailedLogin, Invitation, LoginSession, User

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_BYTES = 72  # bcrypt's limit; bcrypt 5 raises beyond it
NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 254
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_MAX_FAILURES = 5
SIGN_IN_FAILED = "That email and password do not match an account."
SIGN_IN_THROTTLED = "Too many failed sign-in attempts. Wait 15 minutes and try again."
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Checked against when the email is unknown, so that an unknown email takes as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(4))


class AccountError(ValueError):
    """A request the user can correct; the message is safe to show them."""


@dataclass(frozen=True)
class Actor:
    """Who is acting, as every context function checks it."""

    user_id: int
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_moderator(self) -> bool:
        return "moderator" in self.roles or self.is_admin


@dataclass(frozen=True)
class InviteView:
    """What the invite page shows about a code."""

    code: str
    inviter_name: str
    uses_remaining: int
    usable: bool
    reason: str  # why it cannot be used, when it cannot


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password(password: str, password_hash: str) -> bool:
    encoded = password.encode()
    if len(encoded) > PASSWORD_MAX_BYTES:
        return False  # bcrypt 5 raises on these; no stored password can be this long
    return bcrypt.checkpw(encoded, password_hash.encode())


def password_problem(password: str, confirmation: str) -> str | None:
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"The password must be at least {PASSWORD_MIN_LENGTH} characters long."
    if len(password.encode()) > PASSWORD_MAX_BYTES:
        return (
            f"The password must be at most {PASSWORD_MAX_BYTES} bytes long "
            "(fewer characters if you use accents or emoji)."
        )
    if password != confirmation:
        return "The password and its confirmation do not match."
    return None


def _profile_problem(name: str, email: str) -> str | None:
    if not name.strip():
        return "Please enter your name."
    if len(name.strip()) > NAME_MAX_LENGTH:
        return f"The name must be at most {NAME_MAX_LENGTH} characters long."
    if not _EMAIL_PATTERN.match(email) or len(email) > EMAIL_MAX_LENGTH:
        return "Please enter a valid email address."
    return None


def new_invite_code() -> str:
    return secrets.token_urlsafe(12)


def _new_invitation(owner_id: int, uses: int, now: datetime) -> Invitation:
    return Invitation(code=new_invite_code(), owner_id=owner_id, uses_remaining=uses, created_at=now)


def describe_invite(session: Session, code: str) -> InviteView | None:
    """The invite page's view of a code, or None when no such code exists."""
    row = session.exec(
        select(Invitation, User).join(User, User.id == Invitation.owner_id).where(Invitation.code == code)
    ).first()
    if row is None:
        return None
    invitation, owner = row
    reason = ""
    if invitation.disabled_at is not None or owner.disabled_at is not None:
        reason = "This invitation has been disabled."
    elif invitation.uses_remaining <= 0:
        reason = "This invitation has been used up."
    return InviteView(code, owner.name, invitation.uses_remaining, usable=not reason, reason=reason)


def _create_user(
    session: Session,
    *,
    name: str,
    email: str,
    password_hash: str,
    roles: list[str],
    invited_with_id: int | None,
    default_uses: int,
) -> User:
    now = utcnow()
    user = User(
        name=name.strip(),
        email=email,
        password_hash=password_hash,
        roles=roles,
        invited_with_id=invited_with_id,
        created_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise AccountError("An account with this email already exists.") from None
    session.add(_new_invitation(user.id, default_uses, now))
    session.flush()
    return user


def register(
    session: Session,
    *,
    code: str,
    name: str,
    email: str,
    password: str,
    confirmation: str,
    bcrypt_rounds: int,
    default_uses: int,
) -> User:
    """Create a member with one use of the invitation `code`; on an error the caller rolls back.

    The use is taken by one conditional UPDATE in the same transaction as the user insert, so
    concurrent registrations can never take more uses than the invitation has.
    """
    email = normalize_email(email)
    problem = _profile_problem(name, email) or password_problem(password, confirmation)
    if problem:
        raise AccountError(problem)
    password_hash = hash_password(password, bcrypt_rounds)  # before the transaction: it is slow

    active_owner = select(User.id).where(User.id == Invitation.owner_id, User.disabled_at.is_(None)).exists()
    taken = session.execute(
        update(Invitation)
        .where(Invitation.code == code, Invitation.uses_remaining > 0, Invitation.disabled_at.is_(None), active_owner)
        .values(uses_remaining=Invitation.uses_remaining - 1)
        .returning(Invitation.id)
    ).first()
    if taken is None:
        view = describe_invite(session, code)
        raise AccountError(view.reason if view else "This invitation link is not valid.")
    # A duplicate email raises here; the caller's rollback then gives the use back.
    return _create_user(
        session,
        name=name,
        email=email,
        password_hash=password_hash,
        roles=["member"],
        invited_with_id=taken.id,
        default_uses=default_uses,
    )


def create_admin(
    session: Session, *, name: str, email: str, password: str, bcrypt_rounds: int, default_uses: int
) -> User:
    """The operator's bootstrap: a user with the admin role, needing no invitation."""
    email = normalize_email(email)
    problem = _profile_problem(name, email) or password_problem(password, password)
    if problem:
        raise AccountError(problem)
    return _create_user(
        session,
        name=name,
        email=email,
        password_hash=hash_password(password, bcrypt_rounds),
        roles=["member", "admin"],
        invited_with_id=None,
        default_uses=default_uses,
    )


def _recent_failures(session: Session, column: object, value: str, since: datetime) -> int:
    return session.scalar(
        select(func.count()).select_from(FailedLogin).where(column == value, FailedLogin.attempted_at >= since)
    )


def authenticate(session: Session, *, email: str, password: str, client: str) -> User:
    """The user these credentials belong to; AccountError with a message that never says which part was wrong."""
    email = normalize_email(email)[:EMAIL_MAX_LENGTH]
    client = client[:64]
    now = utcnow()
    since = now - THROTTLE_WINDOW
    if (
        _recent_failures(session, FailedLogin.email, email, since) >= THROTTLE_MAX_FAILURES
        or _recent_failures(session, FailedLogin.client, client, since) >= THROTTLE_MAX_FAILURES
    ):
        raise AccountError(SIGN_IN_THROTTLED)
    user = session.exec(select(User).where(User.email == email)).scalars().first()
    password_ok = check_password(password, user.password_hash if user else _DUMMY_HASH.decode())
    if user is None or not password_ok or user.disabled_at is not None:
        session.add(FailedLogin(email=email, client=client, attempted_at=now))
        session.commit()
        raise AccountError(SIGN_IN_FAILED)
    user.last_sign_in_at = now
    session.add(user)
    session.flush()
    return user


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 cannot be reversed by guessing.
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, *, user: User, days: int) -> str:
    """A new sign-in for `user`; returns the token for the browser (stored here only as a hash)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        LoginSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    session.flush()
    return token


def user_for_session(session: Session, token: str) -> User | None:
    """The signed-in user for a browser's token: not expired, not revoked, not disabled."""
    if not token:
        return None
    now = utcnow()
    row = session.exec(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(
            LoginSession.token_hash == _token_hash(token),
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
            User.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    login, user = row
    if now - login.last_seen_at > timedelta(minutes=5):  # bounded writes: not one per event
        login.last_seen_at = now
        session.add(login)
    return user


def end_session(session: Session, token: str) -> None:
    session.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == _token_hash(token), LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def own_invitation(session: Session, user_id: int) -> Invitation | None:
    """The user's main invitation: their first one that is not disabled."""
    return (
        session.exec(
            select(Invitation)
            .where(Invitation.owner_id == user_id, Invitation.disabled_at.is_(None))
            .order_by(Invitation.id)
        )
        .scalars()
        .first()
    )


def user_by_email(session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == normalize_email(email))).scalars().first()
    if user is None:
        raise AccountError(f"No user has the email {normalize_email(email)}.")
    return user


def change_role(session: Session, *, user: User, role: str, grant: bool) -> User:
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; the roles are {', '.join(ROLES)}.")
    roles = [r for r in user.roles if r != role]
    if grant:
        roles.append(role)
    user.roles = sorted(roles, key=ROLES.index)
    session.add(user)
    session.flush()
    return user
