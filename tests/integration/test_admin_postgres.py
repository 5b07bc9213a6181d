"""The admin page's audit log on PostgreSQL, whose columns, unlike SQLite's, refuse text longer than their size
and ids beyond 32 bits: a refusal must still be recorded, and a tampered id answered, not raised."""

import pytest
from sqlalchemy import select

from projectalgo import admin
from projectalgo.db import session_scope
from projectalgo.models import AuditEntry
from projectalgo.pages.admin import AdminState
from projectalgo.runtime import services
from tests.conftest import TEST_SECRET_KEY_BASE
from tests.factories import make_admin, make_member
from tests.support.states import call, signed_in_state


@pytest.fixture
def pg_services(pg_engine, monkeypatch):
    """The app's services (as the Reflex states use them) on this test's PostgreSQL database."""
    monkeypatch.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:3999")
    services.cache_clear()
    yield services().engine
    services().engine.dispose()
    services.cache_clear()


def _entries(engine):
    with session_scope(engine) as session:
        return [(e.action, e.target, e.outcome) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_refusal_text_longer_than_the_columns_is_recorded_cut_on_postgres(pg_engine):
    with session_scope(pg_engine) as session:
        assert admin.record_refusal(session, None, "a" * 100_000, "t" * 100_000)
    assert _entries(pg_engine) == [("a" * admin.ACTION_MAX_LENGTH, "t" * admin.TARGET_MAX_LENGTH, "refused")]


def test_a_refused_set_role_with_a_huge_role_is_recorded_as_an_invalid_role_on_postgres(pg_services):
    member = make_member(pg_services)
    tab = signed_in_state(AdminState, None)
    for _ in range(admin.REFUSALS_PER_TAB + 3):
        assert "/login" in str(call(tab, AdminState.set_role, member.id, "r" * 1_000_000, True))
    assert _entries(pg_services) == [("grant invalid role", f"user {member.id}", "refused")] * admin.REFUSALS_PER_TAB
    for _ in range(admin.REFUSALS_PER_ACTOR):
        call(signed_in_state(AdminState, member), AdminState.set_role, member.id, ["r"] * 1000, "yes")
    assert _entries(pg_services)[-1] == ("change invalid role", "", "refused")  # its arguments unread
    assert len(_entries(pg_services)) == admin.REFUSALS_PER_TAB + admin.REFUSALS_PER_ACTOR


def test_tampered_ids_and_long_reasons_get_a_message_on_postgres(pg_services):
    boss = make_admin(pg_services)
    member = make_member(pg_services, inviter=boss)
    state = signed_in_state(AdminState, boss)
    call(state, AdminState.open_admin)
    for handler, args, message in [
        (AdminState.set_role, [2**40, "moderator", True], "No such user"),
        (AdminState.set_invite_disabled, [2**31, True], "No such invitation"),
        (AdminState.issue_reset_link, [2**63], "No such user"),
        (AdminState.grant_membership, [{"user_id": str(member.id), "days": "3", "reason": "r" * 501}], "at most 500"),
    ]:
        assert call(state, handler, *args) is None
        assert message in state.error
    call(state, AdminState.grant_membership, {"user_id": str(member.id), "days": "3", "reason": "r" * 500})
    assert state.error == "" and state.audit[0].reason == "r" * 500
