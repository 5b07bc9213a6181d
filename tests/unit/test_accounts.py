from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from projectalgo import accounts
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import FailedLogin, Invitation, LoginSession, User
from tests.factories import PASSWORD, invite_code_of, make_admin, make_member


def _register(engine, code, email="new@example.com", password=PASSWORD, confirmation=None, name="New Person"):
    with session_scope(engine) as session:
        return accounts.register(
            session,
            code=code,
            name=name,
            email=email,
            password=password,
            confirmation=password if confirmation is None else confirmation,
            bcrypt_rounds=4,
            default_uses=5,
        )


def _count(engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def _uses(engine, code) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(Invitation.uses_remaining).where(Invitation.code == code))


def test_registering_takes_one_use_and_gives_the_new_user_an_invitation(engine):
    admin = make_admin(engine)
    code = invite_code_of(engine, admin)
    user = _register(engine, code, email="  New@Example.COM ")
    assert user.email == "new@example.com"
    assert user.roles == ["member"]
    assert user.password_hash != PASSWORD and user.password_hash.startswith("$2b$04$")
    assert _uses(engine, code) == 4
    with session_scope(engine) as session:
        own = accounts.own_invitation(session, user.id)
        assert own.uses_remaining == 5 and own.code != code
        assert session.get(User, user.id).invited_with_id == session.scalar(
            select(Invitation.id).where(Invitation.code == code)
        )


def test_twenty_concurrent_registrations_never_oversell_five_uses(engine):
    code = invite_code_of(engine, make_admin(engine))

    def attempt(n):
        try:
            _register(engine, code, email=f"racer{n}@example.com")
            return True
        except accounts.AccountError:
            return False

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(attempt, range(20)))
    assert sum(results) == 5
    assert _uses(engine, code) == 0
    assert _count(engine, User) == 1 + 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": "no-such-code"}, "not valid"),
        ({"email": "FIRST@example.com"}, "already exists"),
        ({"confirmation": PASSWORD + "x"}, "do not match"),
        ({"password": "é" * 37}, "at most 72 bytes"),
        ({"password": "short"}, "at least 10"),
        ({"name": "   "}, "your name"),
        ({"email": ""}, "valid email"),
        ({"email": "not-an-email"}, "valid email"),
    ],
)
def test_a_refused_registration_says_why_and_writes_nothing(engine, change, message):
    code = invite_code_of(engine, make_admin(engine))
    _register(engine, code, email="first@example.com")
    users, invitations = _count(engine, User), _count(engine, Invitation)
    args = {"code": code, "email": "second@example.com"} | change
    with pytest.raises(accounts.AccountError, match=message):
        _register(engine, **args)
    assert (_count(engine, User), _count(engine, Invitation), _uses(engine, code)) == (users, invitations, 4)


def test_used_up_and_disabled_invitations_are_refused(engine):
    code = invite_code_of(engine, make_admin(engine))
    with session_scope(engine) as session:
        session.execute(update(Invitation).where(Invitation.code == code).values(uses_remaining=0))
    with pytest.raises(accounts.AccountError, match="used up"):
        _register(engine, code)
    with session_scope(engine) as session:
        session.execute(
            update(Invitation).where(Invitation.code == code).values(uses_remaining=3, disabled_at=utcnow())
        )
        view = accounts.describe_invite(session, code)
    assert not view.usable and "disabled" in view.reason
    with pytest.raises(accounts.AccountError, match="disabled"):
        _register(engine, code)
    assert _uses(engine, code) == 3


def test_describe_invite_shows_the_inviter_and_uses_left(engine):
    admin = make_admin(engine, name="Grace")
    code = invite_code_of(engine, admin)
    with session_scope(engine) as session:
        view = accounts.describe_invite(session, code)
        assert (view.inviter_name, view.uses_remaining, view.usable) == ("Grace", 5, True)
        assert accounts.describe_invite(session, "unknown") is None


def _sign_in(engine, email, password=PASSWORD, client="198.51.100.7"):
    with session_scope(engine) as session:
        return accounts.authenticate(session, email=email, password=password, client=client)


def test_sign_in_checks_the_password_and_never_says_whether_the_email_exists(engine):
    member = make_member(engine, email="mia@example.com")
    assert _sign_in(engine, "MIA@example.com").id == member.id
    with pytest.raises(accounts.AccountError) as wrong_password:
        _sign_in(engine, "mia@example.com", "wrong password!")
    with pytest.raises(accounts.AccountError) as unknown_email:
        _sign_in(engine, "nobody@example.com")
    with pytest.raises(accounts.AccountError) as too_long:
        _sign_in(engine, "mia@example.com", "x" * 73)
    assert str(wrong_password.value) == str(unknown_email.value) == str(too_long.value) == accounts.SIGN_IN_FAILED


def test_five_failures_for_one_email_or_one_client_throttle_sign_in(engine):
    make_member(engine, email="mia@example.com")
    make_member(engine, email="max@example.com")
    for n in range(5):
        with pytest.raises(accounts.AccountError, match="do not match"):
            _sign_in(engine, "mia@example.com", "wrong password!", client=f"10.0.0.{n}")
    with pytest.raises(accounts.AccountError, match="Too many"):
        _sign_in(engine, "mia@example.com", client="10.9.9.9")  # even the right password
    assert _sign_in(engine, "max@example.com", client="10.9.9.9").email == "max@example.com"
    for n in range(5):
        with pytest.raises(accounts.AccountError):
            _sign_in(engine, f"ghost{n}@example.com", client="203.0.113.5")
    with pytest.raises(accounts.AccountError, match="Too many"):
        _sign_in(engine, "max@example.com", client="203.0.113.5")
    # Failures older than the window no longer count.
    with session_scope(engine) as session:
        session.execute(update(FailedLogin).values(attempted_at=utcnow() - timedelta(minutes=16)))
    assert _sign_in(engine, "mia@example.com").email == "mia@example.com"


def test_a_disabled_user_cannot_sign_in_and_loses_their_sessions(engine):
    member = make_member(engine, email="mia@example.com")
    with session_scope(engine) as session:
        token = accounts.start_session(session, user=member, days=30)
        assert accounts.user_for_session(session, token).id == member.id
        session.execute(update(User).where(User.id == member.id).values(disabled_at=utcnow()))
    with session_scope(engine) as session:
        assert accounts.user_for_session(session, token) is None
    with pytest.raises(accounts.AccountError, match="do not match"):
        _sign_in(engine, "mia@example.com")


def test_sessions_are_stored_as_hashes_and_end_on_sign_out_or_expiry(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        token = accounts.start_session(session, user=member, days=30)
        other = accounts.start_session(session, user=member, days=30)
    with session_scope(engine) as session:
        stored = session.scalars(select(LoginSession.token_hash)).all()
        assert token not in stored and len(stored[0]) == 64
        accounts.end_session(session, token)
    with session_scope(engine) as session:
        assert accounts.user_for_session(session, token) is None
        assert accounts.user_for_session(session, other).id == member.id
        assert accounts.user_for_session(session, "") is None
        session.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    with session_scope(engine) as session:
        assert accounts.user_for_session(session, other) is None


def test_roles_are_granted_and_removed(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        user = session.get(User, member.id)
        assert accounts.change_role(session, user=user, role="admin", grant=True).roles == ["member", "admin"]
        assert accounts.change_role(session, user=user, role="moderator", grant=True).roles == [
            "member",
            "moderator",
            "admin",
        ]
        assert accounts.change_role(session, user=user, role="admin", grant=False).roles == ["member", "moderator"]
        with pytest.raises(accounts.AccountError, match="Unknown role"):
            accounts.change_role(session, user=user, role="owner", grant=True)
