"""Members: invite-only registration, bcrypt passwords, login sessions, roles and sign-in throttling.

Plain Python on a SQL session; no Reflex here. Functions that hash or check passwords are blocking:
callers on an event loop run them in a thread.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import throttle
from projectalgo.clock import utcnow
from projectalgo.errors import InvalidInputError
from projectalgo.models import ROLES, Attempt, Invitation, LoginSession, PasswordReset, User, id_of
from projectalgo.tokens import new_token, token_hash

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_BYTES = 72  # bcrypt's limit; bcrypt 5 raises beyond it
NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 254
# Sign-in throttling is keyed by client address and email, so an attacker slows only themselves: after
# FREE_FAILURES wrong passwords for one email from one client, each further try waits twice as long as the
# last (from BACKOFF_START up to THROTTLE_WINDOW); one client may fail CLIENT_MAX_FAILURES times across emails.
THROTTLE_WINDOW = timedelta(minutes=15)
FREE_FAILURES = 5
BACKOFF_START = timedelta(seconds=30)
CLIENT_MAX_FAILURES = 30
# Registrations (each costs a bcrypt hash) per client address within THROTTLE_WINDOW, whatever their outcome.
REGISTER_MAX_ATTEMPTS = 10
RESET_LINK_VALID = timedelta(hours=24)
SIGN_IN_FAILED = "That email and password do not match an account."
ACCOUNT_DISABLED = "This account is disabled; contact an admin."
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(InvalidInputError):
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
    row = session.execute(
        select(Invitation, User).join(User, col(User.id) == Invitation.owner_id).where(col(Invitation.code) == code)
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
    session.add(_new_invitation(id_of(user), default_uses, now))
    session.flush()
    return user


def _throttled(what: str, wait: timedelta) -> AccountError:
    return AccountError(f"Too many {what} from your network. Try again in {throttle.wait_text(wait)}.")


def register(
    session: Session,
    *,
    code: str,
    name: str,
    email: str,
    password: str,
    confirmation: str,
    client: str,
    bcrypt_rounds: int,
    default_uses: int,
) -> User:
    """Create a member with one use of the invitation `code`; on an error the caller rolls back.

    Cheap refusals come before the (slow) password hash: a client over its registration limit, then an
    unusable code, then bad input. Every attempt the limit lets through counts, whatever its outcome. The use
    is taken by one conditional UPDATE in the same transaction as the user insert, so concurrent
    registrations can never take more uses than the invitation has.
    """
    now = utcnow()
    attempt = throttle.record(session, kind="register", key=client, now=now)
    seen = throttle.seen_before(session, attempt, since=now - THROTTLE_WINDOW)
    if seen.count >= REGISTER_MAX_ATTEMPTS and seen.oldest is not None:
        throttle.withdraw(session, attempt)
        raise _throttled("registration attempts", seen.oldest + THROTTLE_WINDOW - now)

    view = describe_invite(session, code)
    if view is None or not view.usable:
        raise AccountError(view.reason if view else "This invitation link is not valid.")
    email = normalize_email(email)
    problem = _profile_problem(name, email) or password_problem(password, confirmation)
    if problem:
        raise AccountError(problem)
    password_hash = hash_password(password, bcrypt_rounds)

    active_owner = (
        select(col(User.id)).where(col(User.id) == Invitation.owner_id, col(User.disabled_at).is_(None)).exists()
    )
    taken = session.execute(
        update(Invitation)
        .where(
            col(Invitation.code) == code,
            col(Invitation.uses_remaining) > 0,
            col(Invitation.disabled_at).is_(None),
            active_owner,
        )
        .values(uses_remaining=col(Invitation.uses_remaining) - 1)
        .returning(col(Invitation.id))
    ).first()
    if taken is None:  # used up or disabled since the check above
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


@functools.cache
def _dummy_hash(rounds: int) -> str:
    """Checked against when the email is unknown, at the real cost, so an unknown email takes as long."""
    return hash_password(secrets.token_urlsafe(16), rounds)


def _sign_in_wait(session: Session, attempt: Attempt, now: datetime) -> timedelta | None:
    """How long this client must wait before trying this email again, or None to go ahead."""
    since = now - THROTTLE_WINDOW
    by_client = throttle.seen_before(session, attempt, since=since)
    if by_client.count >= CLIENT_MAX_FAILURES and by_client.oldest is not None:
        return by_client.oldest + THROTTLE_WINDOW - now
    pair = throttle.seen_before(session, attempt, since=since, same_subject=True)
    if pair.count < FREE_FAILURES or pair.newest is None:
        return None
    backoff = min(THROTTLE_WINDOW, BACKOFF_START * 2 ** (pair.count - FREE_FAILURES))
    wait = min(pair.newest + backoff - now, THROTTLE_WINDOW)  # `newest` may be a concurrent attempt's, after `now`
    return wait if wait > timedelta(0) else None


def _password_ok(session: Session, *, user: User | None, email: str, password: str, client: str, rounds: int) -> bool:
    """Check a password for `email` under the sign-in throttle; AccountError when this client must wait.

    The attempt counts as a failure until the password proves right (see projectalgo/throttle.py).
    """
    now = utcnow()
    attempt = throttle.record(session, kind="sign_in", key=client, subject=email, now=now)
    wait = _sign_in_wait(session, attempt, now)
    if wait is not None:
        throttle.withdraw(session, attempt)
        raise _throttled("failed sign-in attempts", wait)
    if not check_password(password, user.password_hash if user else _dummy_hash(rounds)):
        return False
    throttle.forget(session, kind="sign_in", key=client, subject=email)
    return True


def authenticate(session: Session, *, email: str, password: str, client: str, bcrypt_rounds: int) -> User:
    """The user these credentials belong to; AccountError with a message that never says which part was wrong.

    Slow by design (bcrypt): callers run it on the password threads.
    """
    email = normalize_email(email)[:EMAIL_MAX_LENGTH]
    user = session.scalars(select(User).where(col(User.email) == email)).first()
    if not _password_ok(session, user=user, email=email, password=password, client=client, rounds=bcrypt_rounds):
        raise AccountError(SIGN_IN_FAILED)
    assert user is not None  # only a real hash can match
    if user.disabled_at is not None:  # told only to whoever knows the password
        session.commit()
        raise AccountError(ACCOUNT_DISABLED)
    user.last_sign_in_at = utcnow()
    session.add(user)
    session.flush()
    return user


def start_session(session: Session, *, user: User, days: int) -> str:
    """A new sign-in for `user`; returns the token for the browser (stored here only as a hash)."""
    token = new_token()
    now = utcnow()
    session.add(
        LoginSession(
            token_hash=token_hash(token),
            user_id=id_of(user),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class SignedIn:
    user: User
    login_session_id: int


def _live_session(now: datetime, idle: timedelta) -> tuple[ColumnElement[bool], ...]:
    """The conditions a login session meets while it lasts: not ended, not expired, not idle, user enabled."""
    return (
        col(LoginSession.revoked_at).is_(None),
        col(LoginSession.expires_at) > now,
        col(LoginSession.last_seen_at) > now - idle,
        col(User.disabled_at).is_(None),
    )


# last_seen_at is written at most this often (bounded writes: not one per event); idle limits are far longer.
SEEN_EVERY = timedelta(minutes=5)


def user_for_session(session: Session, token: str, *, idle: timedelta) -> SignedIn | None:
    """The signed-in user for a browser's token while its sign-in lasts (see _live_session), else None."""
    if not token:
        return None
    now = utcnow()
    row = session.execute(
        select(LoginSession, User)
        .join(User, col(User.id) == LoginSession.user_id)
        .where(col(LoginSession.token_hash) == token_hash(token), *_live_session(now, idle))
    ).first()
    if row is None:
        return None
    login, user = row
    if now - login.last_seen_at > SEEN_EVERY:
        login.last_seen_at = now
        session.add(login)
    return SignedIn(user, id_of(login))


def disabled_user_session(session: Session, token: str) -> bool:
    """Whether the browser's token is a sign-in of a user who has been disabled (to tell them so)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(LoginSession)
            .join(User, col(User.id) == LoginSession.user_id)
            .where(col(LoginSession.token_hash) == token_hash(token), col(User.disabled_at).is_not(None))
        )
        == 1
    )


def live_session_users(session: Session, login_session_ids: Collection[int], *, idle: timedelta) -> dict[int, User]:
    """The users of those login sessions that still last, by login session id."""
    rows = session.execute(
        select(col(LoginSession.id), User)
        .join(User, col(User.id) == LoginSession.user_id)
        .where(col(LoginSession.id).in_(list(login_session_ids)), *_live_session(utcnow(), idle))
    ).all()
    return {login_id: user for login_id, user in rows if login_id is not None}  # a primary key: never NULL


def live_session_user(session: Session, login_session_id: int, *, idle: timedelta) -> User | None:
    """The user of the login session `login_session_id` while it lasts, else None."""
    return live_session_users(session, [login_session_id], idle=idle).get(login_session_id)


def end_session(session: Session, token: str) -> None:
    session.execute(
        update(LoginSession)
        .where(col(LoginSession.token_hash) == token_hash(token), col(LoginSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def end_all_sessions(session: Session, user_id: int, *, keep_login_session_id: int | None = None) -> None:
    """Sign the user out everywhere (but for one sign-in, when kept)."""
    session.execute(
        update(LoginSession)
        .where(
            col(LoginSession.user_id) == user_id,
            col(LoginSession.revoked_at).is_(None),
            col(LoginSession.id) != (keep_login_session_id or 0),
        )
        .values(revoked_at=utcnow())
    )


def change_password(
    session: Session,
    *,
    user_id: int,
    current: str,
    password: str,
    confirmation: str,
    client: str,
    bcrypt_rounds: int,
    keep_login_session_id: int,
) -> None:
    """Set a new password after checking the current one (under the sign-in throttle); ends the other sign-ins."""
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise AccountError(ACCOUNT_DISABLED)
    problem = password_problem(password, confirmation)
    if problem:
        raise AccountError(problem)
    if not _password_ok(session, user=user, email=user.email, password=current, client=client, rounds=bcrypt_rounds):
        raise AccountError("The current password is not right.")
    user.password_hash = hash_password(password, bcrypt_rounds)
    session.add(user)
    end_all_sessions(session, user_id, keep_login_session_id=keep_login_session_id)


def issue_password_reset(session: Session, *, user: User) -> str:
    """A one-time token for `user` to set a new password at /reset/<token>; earlier unused ones stop working."""
    now = utcnow()
    user_id = id_of(user)
    session.execute(
        delete(PasswordReset).where(col(PasswordReset.user_id) == user_id, col(PasswordReset.used_at).is_(None))
    )
    token = new_token()
    session.add(
        PasswordReset(user_id=user_id, token_hash=token_hash(token), created_at=now, expires_at=now + RESET_LINK_VALID)
    )
    session.flush()
    return token


def password_reset_usable(session: Session, token: str) -> bool:
    now = utcnow()
    return (
        session.scalar(
            select(func.count())
            .select_from(PasswordReset)
            .join(User, col(User.id) == PasswordReset.user_id)
            .where(
                col(PasswordReset.token_hash) == token_hash(token),
                col(PasswordReset.used_at).is_(None),
                col(PasswordReset.expires_at) > now,
                col(User.disabled_at).is_(None),
            )
        )
        == 1
    )


def reset_password(session: Session, *, token: str, password: str, confirmation: str, bcrypt_rounds: int) -> User:
    """Use a reset token once: set the new password and end every sign-in of its user."""
    problem = password_problem(password, confirmation)
    if problem:
        raise AccountError(problem)
    password_hash = hash_password(password, bcrypt_rounds)
    now = utcnow()
    used = session.execute(
        update(PasswordReset)
        .where(
            col(PasswordReset.token_hash) == token_hash(token),
            col(PasswordReset.used_at).is_(None),
            col(PasswordReset.expires_at) > now,
        )
        .values(used_at=now)
        .returning(col(PasswordReset.user_id))
    ).first()
    user = session.get(User, used.user_id) if used else None
    if user is None or user.disabled_at is not None:
        raise AccountError("This reset link is not valid any more. Ask an admin for a new one.")
    user.password_hash = password_hash
    session.add(user)
    end_all_sessions(session, id_of(user))
    session.flush()
    return user


def own_invitation(session: Session, user_id: int) -> Invitation | None:
    """The user's main invitation: their first one that is not disabled."""
    return session.scalars(
        select(Invitation)
        .where(col(Invitation.owner_id) == user_id, col(Invitation.disabled_at).is_(None))
        .order_by(col(Invitation.id))
    ).first()


def user_by_email(session: Session, email: str) -> User:
    user = session.scalars(select(User).where(col(User.email) == normalize_email(email))).first()
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
