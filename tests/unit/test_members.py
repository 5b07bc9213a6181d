from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from projectalgo import members, tokens
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import Attempt, Invitation, LoginSession, PasswordReset, User
from tests.factories import PASSWORD, invite_code_of, make_admin, make_member

IDLE = timedelta(minutes=60)


def _register(
    engine, code, email="new@example.com", password=PASSWORD, confirmation=None, name="New Person", client=None
):
    with session_scope(engine) as session:
        return members.register(
            session,
            code=code,
            name=name,
            email=email,
            password=password,
            confirmation=password if confirmation is None else confirmation,
            client=client or f"client-of-{email}",
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
        own = members.own_invitation(session, user.id)
        assert own.uses_remaining == 5 and own.code != code
        assert session.get(User, user.id).invited_with_id == session.scalar(
            select(Invitation.id).where(Invitation.code == code)
        )


def test_twenty_concurrent_registrations_never_oversell_five_uses(engine):
    code = invite_code_of(engine, make_admin(engine))

    def attempt(n):
        try:
            _register(engine, code, email=f"racer{n}@example.com", client=f"10.1.0.{n}")
            return True
        except members.AccountError:
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
    with pytest.raises(members.AccountError, match=message):
        _register(engine, **args)
    assert (_count(engine, User), _count(engine, Invitation), _uses(engine, code)) == (users, invitations, 4)


def test_used_up_and_disabled_invitations_are_refused(engine):
    code = invite_code_of(engine, make_admin(engine))
    with session_scope(engine) as session:
        session.execute(update(Invitation).where(Invitation.code == code).values(uses_remaining=0))
    with pytest.raises(members.AccountError, match="used up"):
        _register(engine, code)
    with session_scope(engine) as session:
        session.execute(
            update(Invitation).where(Invitation.code == code).values(uses_remaining=3, disabled_at=utcnow())
        )
        view = members.describe_invite(session, code)
    assert not view.usable and "disabled" in view.reason
    with pytest.raises(members.AccountError, match="disabled"):
        _register(engine, code)
    assert _uses(engine, code) == 3


def test_describe_invite_shows_the_inviter_and_uses_left(engine):
    admin = make_admin(engine, name="Grace")
    code = invite_code_of(engine, admin)
    with session_scope(engine) as session:
        view = members.describe_invite(session, code)
        assert (view.inviter_name, view.uses_remaining, view.usable) == ("Grace", 5, True)
        assert members.describe_invite(session, "unknown") is None


def test_registration_checks_the_invitation_before_anything_about_the_password(engine):
    """A fake code is refused before the (slow) password hash: its answer is about the code, not the password."""
    with pytest.raises(members.AccountError, match="invitation link is not valid"):
        _register(engine, "no-such-code", password="short", confirmation="other")


def test_registration_is_throttled_per_client(engine):
    code = invite_code_of(engine, make_admin(engine))
    for n in range(members.REGISTER_MAX_ATTEMPTS):
        with pytest.raises(members.AccountError, match="not valid"):
            _register(engine, "fake-code", email=f"bot{n}@example.com", client="203.0.113.9")
    with pytest.raises(members.AccountError, match="Too many registration attempts"):
        _register(engine, code, client="203.0.113.9")  # even with a good code
    assert _register(engine, code, client="198.51.100.20").email == "new@example.com"  # others are not slowed
    with session_scope(engine) as session:
        session.execute(update(Attempt).values(at=utcnow() - members.THROTTLE_WINDOW))
    assert _register(engine, code, email="later@example.com", client="203.0.113.9").email == "later@example.com"


def _sign_in(engine, email, password=PASSWORD, client="198.51.100.7", rounds=4):
    with session_scope(engine) as session:
        return members.authenticate(session, email=email, password=password, client=client, bcrypt_rounds=rounds)


def _age_attempts(engine, by: timedelta) -> None:
    with session_scope(engine) as session:
        for attempt in session.scalars(select(Attempt)):
            attempt.at -= by


def test_sign_in_checks_the_password_and_never_says_whether_the_email_exists(engine):
    member = make_member(engine, email="mia@example.com")
    assert _sign_in(engine, "MIA@example.com").id == member.id
    with pytest.raises(members.AccountError) as wrong_password:
        _sign_in(engine, "mia@example.com", "wrong password!")
    with pytest.raises(members.AccountError) as unknown_email:
        _sign_in(engine, "nobody@example.com")
    with pytest.raises(members.AccountError) as too_long:
        _sign_in(engine, "mia@example.com", "x" * 73)
    assert str(wrong_password.value) == str(unknown_email.value) == str(too_long.value) == members.SIGN_IN_FAILED


def test_unknown_emails_are_checked_at_the_same_bcrypt_cost_as_real_passwords():
    """The answer for an unknown email takes as long as for a known one (bench/signin.py times it at cost 12)."""
    for rounds in (4, 10, 12):
        assert members._dummy_hash(rounds).startswith(f"$2b${rounds:02d}$")


def test_failures_slow_only_the_client_that_made_them_with_backoff(engine):
    make_member(engine, email="mia@example.com")
    attacker, mia = "203.0.113.5", "198.51.100.7"
    for _ in range(members.FREE_FAILURES):
        with pytest.raises(members.AccountError, match="do not match"):
            _sign_in(engine, "mia@example.com", "wrong password!", client=attacker)
    with pytest.raises(members.AccountError, match="Try again in 30 seconds"):
        _sign_in(engine, "mia@example.com", client=attacker)  # even the right password waits
    assert _sign_in(engine, "mia@example.com", client=mia).email == "mia@example.com"  # Mia is not locked out
    _age_attempts(engine, members.BACKOFF_START)
    with pytest.raises(members.AccountError, match="do not match"):  # one more try after the wait...
        _sign_in(engine, "mia@example.com", "wrong password!", client=attacker)
    with pytest.raises(members.AccountError, match="Try again in 60 seconds"):  # ...and the next wait doubles
        _sign_in(engine, "mia@example.com", client=attacker)
    _age_attempts(engine, members.THROTTLE_WINDOW)
    assert _sign_in(engine, "mia@example.com", client=attacker).email == "mia@example.com"  # the window passed


def test_a_right_password_clears_the_failures_of_that_client_and_email(engine):
    make_member(engine, email="mia@example.com")
    for _ in range(members.FREE_FAILURES - 1):
        with pytest.raises(members.AccountError):
            _sign_in(engine, "mia@example.com", "wrong password!")
    _sign_in(engine, "mia@example.com")
    for _ in range(members.FREE_FAILURES):
        with pytest.raises(members.AccountError, match="do not match"):
            _sign_in(engine, "mia@example.com", "wrong password!")


def test_one_client_trying_many_emails_is_capped(engine):
    make_member(engine, email="max@example.com")
    for n in range(members.CLIENT_MAX_FAILURES):
        with pytest.raises(members.AccountError, match="do not match"):
            _sign_in(engine, f"ghost{n}@example.com", client="203.0.113.5")
    with pytest.raises(members.AccountError, match="Too many failed sign-in attempts"):
        _sign_in(engine, "max@example.com", client="203.0.113.5")
    assert _sign_in(engine, "max@example.com", client="198.51.100.1").email == "max@example.com"


def _parallel_wrong_passwords(engine, attempts: int) -> int:
    """Wrong passwords tried all at once by one client for one email; returns how many were checked."""

    def attempt(_n):
        try:
            _sign_in(engine, "mia@example.com", "wrong password!", client="203.0.113.5")
        except members.AccountError as error:
            return "do not match" in str(error)
        return False

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        checked = sum(pool.map(attempt, range(attempts)))
    with session_scope(engine) as session:  # checked and failed attempts stay; refused ones are taken back
        kept = session.scalar(select(func.count()).select_from(Attempt).where(Attempt.kind == "sign_in"))
        assert kept == checked
    return checked


def test_thirty_parallel_attempts_check_at_most_the_free_failures(engine):
    make_member(engine, email="mia@example.com")
    assert 1 <= _parallel_wrong_passwords(engine, 30) <= members.FREE_FAILURES


def test_thirty_parallel_attempts_check_at_most_the_free_failures_on_postgresql(pg_engine):
    make_member(pg_engine, email="mia@example.com")
    assert 1 <= _parallel_wrong_passwords(pg_engine, 30) <= members.FREE_FAILURES


def test_a_disabled_user_is_told_so_only_with_the_right_password_and_loses_their_sessions(engine):
    member = make_member(engine, email="mia@example.com")
    with session_scope(engine) as session:
        token = members.start_session(session, user=member, days=30)
        assert members.user_for_session(session, token, idle=IDLE).user.id == member.id
        session.execute(update(User).where(User.id == member.id).values(disabled_at=utcnow()))
    with session_scope(engine) as session:
        assert members.user_for_session(session, token, idle=IDLE) is None
    with pytest.raises(members.AccountError, match="do not match"):
        _sign_in(engine, "mia@example.com", "wrong password!")
    with pytest.raises(members.AccountError, match="disabled; contact an admin"):
        _sign_in(engine, "mia@example.com")


def test_sessions_are_stored_as_hashes_and_end_on_sign_out_expiry_or_idleness(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        token = members.start_session(session, user=member, days=30)
        other = members.start_session(session, user=member, days=30)
        third = members.start_session(session, user=member, days=30)
    with session_scope(engine) as session:
        stored = session.scalars(select(LoginSession.token_hash)).all()
        assert token not in stored and len(stored[0]) == 64
        members.end_session(session, token)
    with session_scope(engine) as session:
        assert members.user_for_session(session, token, idle=IDLE) is None
        signed_in = members.user_for_session(session, other, idle=IDLE)
        assert signed_in.user.id == member.id
        assert members.live_session_user(session, signed_in.login_session_id, idle=IDLE).id == member.id
        assert members.user_for_session(session, "", idle=IDLE) is None
        session.execute(update(LoginSession).values(last_seen_at=utcnow() - IDLE - timedelta(seconds=1)))
    with session_scope(engine) as session:  # unused for longer than the idle limit
        assert members.user_for_session(session, third, idle=IDLE) is None
        assert members.live_session_user(session, signed_in.login_session_id, idle=IDLE) is None
        session.execute(update(LoginSession).values(last_seen_at=utcnow(), expires_at=utcnow() - timedelta(seconds=1)))
    with session_scope(engine) as session:  # past the absolute limit, however busy
        assert members.user_for_session(session, other, idle=IDLE) is None


def test_signing_out_everywhere_ends_every_sign_in(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        tokens = [members.start_session(session, user=member, days=30) for _ in range(3)]
        members.end_all_sessions(session, member.id)
    with session_scope(engine) as session:
        assert all(members.user_for_session(session, t, idle=IDLE) is None for t in tokens)


def _change_password(engine, member, current, new, keep):
    with session_scope(engine) as session:
        members.change_password(
            session,
            user_id=member.id,
            current=current,
            password=new,
            confirmation=new,
            client="198.51.100.7",
            bcrypt_rounds=4,
            keep_login_session_id=keep,
        )


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sign_ins(engine):
    member = make_member(engine, email="mia@example.com")
    with session_scope(engine) as session:
        here, elsewhere = (members.start_session(session, user=member, days=30) for _ in range(2))
        keep = members.user_for_session(session, here, idle=IDLE).login_session_id
    with pytest.raises(members.AccountError, match="current password is not right"):
        _change_password(engine, member, "wrong password!", "a new password 1", keep)
    with pytest.raises(members.AccountError, match="at least 10"):
        _change_password(engine, member, PASSWORD, "short", keep)
    _change_password(engine, member, PASSWORD, "a new password 1", keep)
    with session_scope(engine) as session:
        assert members.user_for_session(session, here, idle=IDLE).user.id == member.id
        assert members.user_for_session(session, elsewhere, idle=IDLE) is None
    with pytest.raises(members.AccountError, match="do not match"):
        _sign_in(engine, "mia@example.com")
    assert _sign_in(engine, "mia@example.com", "a new password 1").id == member.id


def test_a_password_reset_link_works_once_ends_every_sign_in_and_expires(engine):
    member = make_member(engine, email="mia@example.com")
    with session_scope(engine) as session:
        token = members.start_session(session, user=member, days=30)
        first = members.issue_password_reset(session, user=member)
        second = members.issue_password_reset(session, user=member)  # the newer link replaces the older
        assert session.scalars(select(PasswordReset.token_hash)).all() == [tokens.token_hash(second)]
    with session_scope(engine) as session:
        assert not members.password_reset_usable(session, first)
        assert members.password_reset_usable(session, second)
    with pytest.raises(members.AccountError, match="not valid any more"), session_scope(engine) as session:
        members.reset_password(
            session, token=first, password="a new password 1", confirmation="a new password 1", bcrypt_rounds=4
        )
    with session_scope(engine) as session:
        members.reset_password(
            session, token=second, password="a new password 1", confirmation="a new password 1", bcrypt_rounds=4
        )
    with session_scope(engine) as session:
        assert members.user_for_session(session, token, idle=IDLE) is None
        assert not members.password_reset_usable(session, second)
    with pytest.raises(members.AccountError, match="not valid any more"), session_scope(engine) as session:
        members.reset_password(
            session, token=second, password="another one 22", confirmation="another one 22", bcrypt_rounds=4
        )
    assert _sign_in(engine, "mia@example.com", "a new password 1").id == member.id
    with session_scope(engine) as session:
        third = members.issue_password_reset(session, user=member)
        session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    with session_scope(engine) as session:
        assert not members.password_reset_usable(session, third)


def test_roles_are_granted_and_removed(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        user = session.get(User, member.id)
        assert members.change_role(session, user=user, role="admin", grant=True).roles == ["member", "admin"]
        assert members.change_role(session, user=user, role="moderator", grant=True).roles == [
            "member",
            "moderator",
            "admin",
        ]
        assert members.change_role(session, user=user, role="admin", grant=False).roles == ["member", "moderator"]
        with pytest.raises(members.AccountError, match="Unknown role"):
            members.change_role(session, user=user, role="owner", grant=True)
