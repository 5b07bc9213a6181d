"""A tab outlives its user: what one user loaded never reaches another, and every call re-checks the right to
the very object it reads (issue 12, points 2 and 3)."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
import reflex as rx
from sqlalchemy import update

from projectalgo import live, members
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.live_push import live_push
from projectalgo.models import LoginSession, Membership, User
from projectalgo.pages.admin import AdminState
from projectalgo.pages.dashboard import DashboardLiveState, DashboardState
from projectalgo.pages.login import LoginState, LogoutState
from projectalgo.pages.strategy import StrategyPageState
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from projectalgo.state import TabGuard
from tests.factories import PASSWORD, grant_membership, store_one, strategy_world
from tests.support.states import browser_view, call, preprocess, same_tab, signed_in_state, visit

SECRET_WALLET = Decimal("123456.78")  # Alice's balance: it must never reach anyone else's browser


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    grant_membership(app_services, world["alice"], days=30)
    grant_membership(app_services, world["bob"], days=30)
    store = services().snapshot_store
    now = epoch_ms(utcnow())
    for n in range(60):  # more than one page of snapshots
        values = dict.fromkeys(("last_price", "margin_balance", "realised_pnl", "positions"), Decimal(1))
        store_one(
            store,
            Snapshot(
                world["strategy_id"],
                world["account_id"],
                now - n * 1000,
                wallet_balance=SECRET_WALLET,
                average_entry_price=Decimal(1),
                symbol="XBTUSD",
                **values,
            ),
        )
    return world


def _alices_strategy_page(world, who: str):
    state = signed_in_state(StrategyPageState, world[who])
    visit(state, f"/strategies/{world['strategy_id']}")
    call(state, StrategyPageState.open_strategy)
    return state


def _sign_in_as(engine, state, user: User) -> None:
    """Another user's sign-in token arrives in this tab (as after signing in elsewhere in the same browser)."""
    with session_scope(engine) as session:
        state.session_token = members.start_session(session, user=user, days=1)


def _demote(engine, user: User) -> None:
    with session_scope(engine) as session:
        session.execute(update(User).where(User.id == user.id).values(roles=["member"]))


def test_the_admin_sees_the_owners_strategy_to_begin_with(world):
    state = _alices_strategy_page(world, "admin")
    assert state.found and state.name == "Trend" and len(state.lines) == 50 and state.has_more
    assert "123,456.78" in browser_view(state)


@pytest.mark.parametrize("handler", ["newer_page", "older_page", "show_newest", "download_csv", "resync"])
def test_paging_a_strategy_after_losing_the_right_to_it_reads_nothing(world, handler):
    """A demoted admin kept paging another member's snapshots through the id kept in the tab."""
    state = _alices_strategy_page(world, "admin")
    call(state, StrategyPageState.older_page)
    _demote(world["engine"], world["admin"])
    grant_membership(world["engine"], world["admin"], days=30)  # still a paying member, no longer an admin
    call(state, getattr(StrategyPageState, handler))
    assert not state.found and state.lines == []
    assert "123,456.78" not in browser_view(state) and "Trend" not in browser_view(state)


@pytest.mark.parametrize("handler", ["newer_page", "older_page", "show_newest"])
def test_paging_in_a_tab_where_an_admin_viewed_a_strategy_reads_nothing_for_the_next_user(world, handler):
    state = _alices_strategy_page(world, "admin")
    _sign_in_as(world["engine"], state, world["bob"])
    call(state, getattr(StrategyPageState, handler))
    assert state.lines == [] and not state.found
    assert "123,456.78" not in browser_view(state)


def test_signing_out_empties_every_page_of_the_tab_and_its_live_registration(world):
    state = _alices_strategy_page(world, "admin")
    admin_page = same_tab(state, AdminState)
    call(admin_page, AdminState.open_admin)
    assert world["alice"].email in browser_view(state)
    assert live_push.watchers.of(world["strategy_id"])
    logout = same_tab(state, LogoutState)
    assert call(logout, LogoutState.sign_out) is not None
    view = browser_view(state)
    for secret in ("123,456.78", world["alice"].email, world["bob"].email, "Trend"):
        assert secret not in view
    assert live_push.watchers.of(world["strategy_id"]) == []


def test_a_sign_in_on_a_tab_that_showed_someone_else_starts_empty(world):
    state = _alices_strategy_page(world, "admin")
    admin_page = same_tab(state, AdminState)
    call(admin_page, AdminState.open_admin)
    state.session_token = ""  # signed out in another tab of this browser: the token is gone, no event yet
    login = same_tab(state, LoginState)
    call(login, LoginState.sign_in, {"email": world["bob"].email, "password": PASSWORD})
    assert login.error == "" and login.session_token
    view = browser_view(state)
    assert "123,456.78" not in view and world["alice"].email not in view
    assert live_push.watchers.of(world["strategy_id"]) == []


@pytest.mark.parametrize("loss", ["membership ended", "disabled", "signed out everywhere"])
def test_a_lost_right_empties_the_tab_at_its_next_event(world, loss):
    engine, alice = world["engine"], world["alice"]
    dashboard = signed_in_state(DashboardState, alice)
    visit(dashboard, "/dashboard")
    call(dashboard, DashboardState.open_dashboard)
    strategy = same_tab(dashboard, StrategyPageState)
    visit(strategy, f"/strategies/{world['strategy_id']}")
    call(strategy, StrategyPageState.open_strategy)
    assert "123,456.78" in browser_view(dashboard)
    with session_scope(engine) as session:
        if loss == "membership ended":
            session.execute(
                update(Membership).where(Membership.user_id == alice.id).values(ends_at=utcnow() - timedelta(1))
            )
        elif loss == "disabled":
            session.execute(update(User).where(User.id == alice.id).values(disabled_at=utcnow()))
        else:
            members.end_all_sessions(session, alice.id)
    call(dashboard, DashboardState.resync)
    assert "123,456.78" not in browser_view(dashboard)
    assert live_push.watchers.of(world["strategy_id"]) == []


def _login_id(engine, token: str) -> int:
    with session_scope(engine) as session:
        return members.user_for_session(session, token, idle=timedelta(days=1)).login_session_id


def _allowed(engine, strategy_id: int, login_ids: set[int]) -> set[int]:
    with session_scope(engine) as session:
        return live.allowed_sessions(session, strategy_id, login_ids, idle=timedelta(days=1))


def test_each_push_rechecks_that_the_tabs_user_may_see_the_strategy(world):
    """The pusher sends a snapshot only to the sign-ins allowed_sessions returns, checked at every push."""
    engine, strategy_id = world["engine"], world["strategy_id"]
    logins = {
        who: _login_id(engine, signed_in_state(DashboardLiveState, world[who]).session_token)
        for who in world
        if who in ("alice", "bob", "admin")
    }
    assert _allowed(engine, strategy_id, set(logins.values())) == {logins["alice"], logins["admin"]}
    _demote(engine, world["admin"])
    with session_scope(engine) as session:
        session.execute(update(LoginSession).where(LoginSession.id == logins["alice"]).values(revoked_at=utcnow()))
    assert _allowed(engine, strategy_id, set(logins.values())) == set()
    assert _allowed(engine, 999_999, set(logins.values())) == set()


def test_a_page_load_sends_nothing_loaded_before_it(world):
    """A hydrate sends the tab's whole state: it is emptied first, and the page's on_load fills it anew."""
    state = _alices_strategy_page(world, "admin")
    call(same_tab(state, AdminState), AdminState.open_admin)
    assert world["alice"].email in browser_view(state)
    asyncio.run(preprocess(state, rx.State.event_handlers["hydrate_and_load"]))
    view = browser_view(state)
    for secret in ("123,456.78", world["alice"].email, world["bob"].email, "Trend"):
        assert secret not in view
    assert live_push.watchers.of(world["strategy_id"]) == []
    call(state, StrategyPageState.open_strategy)  # the page's on_load, for whoever the browser's token says
    assert state.name == "Trend" and "123,456.78" in browser_view(state)


def test_the_app_runs_the_tab_guard_before_every_event(app_services):
    from projectalgo.projectalgo import app

    assert isinstance(app._middlewares[0], TabGuard)


def test_a_disabled_users_open_tab_is_told_so_at_its_next_click(world):
    engine, alice = world["engine"], world["alice"]
    dashboard = signed_in_state(DashboardState, alice)
    visit(dashboard, "/dashboard")
    call(dashboard, DashboardState.open_dashboard)
    with session_scope(engine) as session:
        session.execute(update(User).where(User.id == alice.id).values(disabled_at=utcnow()))
    assert "/login?disabled=1" in str(call(dashboard, DashboardState.resync))
    login = same_tab(dashboard, LoginState)
    visit(login, "/login?disabled=1")
    call(login, LoginState.open_login)
    assert login.error == "This account is disabled; contact an admin."
