"""/profile and /reset/<token>: password change, sign-out everywhere and admin-issued reset links (issue 12, 10)."""

import asyncio
import threading
from datetime import timedelta

import pytest

from projectalgo import members, runtime
from projectalgo.db import session_scope
from projectalgo.pages.profile import ProfileState
from projectalgo.pages.reset import ResetState
from projectalgo.state import in_password_session
from tests.factories import PASSWORD, make_member
from tests.support.states import browser_view, call, signed_in_state, visit

NEW_PASSWORD = "a brand new password"
DAY = timedelta(days=1)


@pytest.fixture
def mia(app_services):
    return make_member(app_services, name="Mia", email="mia@example.com")


def _signed_in(engine, token: str) -> bool:
    with session_scope(engine) as session:
        return members.user_for_session(session, token, idle=DAY) is not None


def _other_sign_in(engine, user) -> str:
    with session_scope(engine) as session:
        return members.start_session(session, user=user, days=1)


def _form(current: str, new: str = NEW_PASSWORD, confirmation: str | None = None) -> dict[str, str]:
    return {"current": current, "password": new, "confirmation": new if confirmation is None else confirmation}


def test_a_visitor_is_sent_to_sign_in(app_services):
    state = signed_in_state(ProfileState, None)
    visit(state, "/profile")
    assert "/login" in str(call(state, ProfileState.open_profile))
    assert "/login" in str(call(state, ProfileState.change_password, _form(PASSWORD)))


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sign_ins(app_services, mia):
    state = signed_in_state(ProfileState, mia)
    visit(state, "/profile")
    elsewhere = _other_sign_in(app_services, mia)
    call(state, ProfileState.change_password, _form("not my password"))
    assert state.error == "The current password is not right." and _signed_in(app_services, elsewhere)
    call(state, ProfileState.change_password, _form(PASSWORD, confirmation="something else!"))
    assert "do not match" in state.error
    call(state, ProfileState.change_password, _form(PASSWORD))
    assert state.error == "" and "other sign-ins have ended" in state.notice
    assert _signed_in(app_services, state.session_token) and not _signed_in(app_services, elsewhere)
    assert NEW_PASSWORD not in browser_view(state) and PASSWORD not in browser_view(state)


def test_form_values_that_are_not_text_get_a_readable_message(app_services, mia):
    state = signed_in_state(ProfileState, mia)
    visit(state, "/profile")
    for form in (["not", "a", "form"], {"current": 12, "password": None, "confirmation": {"x": 1}}, None):
        assert call(state, ProfileState.change_password, form) is None
        assert state.error and state.notice == ""


def test_signing_out_everywhere_ends_every_sign_in_and_empties_the_tab(app_services, mia):
    state = signed_in_state(ProfileState, mia)
    visit(state, "/profile")
    call(state, ProfileState.open_profile)
    elsewhere, here = _other_sign_in(app_services, mia), state.session_token
    assert "/login" in str(call(state, ProfileState.sign_out_everywhere))
    assert not _signed_in(app_services, here) and not _signed_in(app_services, elsewhere)
    assert state.session_token == "" and "mia@example.com" not in browser_view(state)


def _issue_reset(engine, user) -> str:
    with session_scope(engine) as session:
        return members.issue_password_reset(session, user=user)


def test_a_reset_link_sets_a_new_password_once_and_ends_every_sign_in(app_services, mia):
    token, elsewhere = _issue_reset(app_services, mia), _other_sign_in(app_services, mia)
    state = signed_in_state(ResetState, None)
    visit(state, f"/reset/{token}")
    call(state, ResetState.open_reset)
    assert state.usable and token not in browser_view(state).replace(f"/reset/{token}", "")
    call(state, ResetState.reset_password, {"password": "short", "confirmation": "short"})
    assert "at least 10" in state.error and state.usable
    redirect = call(state, ResetState.reset_password, {"password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
    assert "/login?reset=1" in str(redirect)
    assert not _signed_in(app_services, elsewhere)
    with session_scope(app_services) as session:
        user = members.authenticate(
            session, email="mia@example.com", password=NEW_PASSWORD, client="test", bcrypt_rounds=4
        )
        assert user.id == mia.id
    call(state, ResetState.open_reset)
    assert not state.usable  # used once
    call(state, ResetState.reset_password, {"password": "another password", "confirmation": "another password"})
    assert "not valid any more" in state.error


def test_an_unknown_reset_link_says_so(app_services):
    state = signed_in_state(ResetState, None)
    visit(state, "/reset/made-up-token")
    call(state, ResetState.open_reset)
    assert not state.usable


def test_password_work_runs_on_its_own_bounded_threads(app_services):
    """bcrypt never holds the threads database work runs on (issue 12, point 5)."""
    thread = asyncio.run(in_password_session(lambda _session: threading.current_thread().name))
    assert thread.startswith("password") and runtime.password_threads._max_workers == runtime.PASSWORD_THREADS
