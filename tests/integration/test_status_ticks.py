"""The pages' one-a-minute tick (issue 13): statuses age from what the tab holds, without reading a snapshot, and
only for whoever is signed in now."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from projectalgo.clock import utcnow
from projectalgo.live_push import live_push
from projectalgo.pages import dashboard as dashboard_page
from projectalgo.pages import strategy as strategy_page
from projectalgo.pages.dashboard import DashboardLiveState, DashboardState
from projectalgo.pages.strategy import StrategyLiveState, StrategyPageState
from projectalgo.runtime import services
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot, epoch_ms
from tests.factories import grant_membership, store_one, strategy_world
from tests.support.states import call, same_tab, signed_in_state, visit


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    grant_membership(app_services, world["alice"], days=30)
    stale = timedelta(minutes=services().settings.stale_after_minutes)
    values = dict.fromkeys(NUMBER_FIELDS, Decimal(1))
    last = epoch_ms(utcnow() - stale + timedelta(minutes=1))  # live for one more minute
    store_one(
        services().snapshot_store, Snapshot(world["strategy_id"], world["account_id"], last, **values, symbol="X")
    )
    world["stale"] = stale
    return world


@pytest.fixture
def statements(app_services):
    """The SQL the app runs from now on."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(services().engine, "before_cursor_execute", note)
    yield seen
    event.remove(services().engine, "before_cursor_execute", note)


def _later(monkeypatch, module, by: timedelta) -> None:
    """The page's clock, moved on (the server's own time, as the tick reads it)."""
    moved = utcnow() + by
    monkeypatch.setattr(module, "utcnow", lambda: moved)


def test_the_dashboard_tick_turns_a_silent_bot_stale_then_offline_reading_no_snapshot(world, statements, monkeypatch):
    page = signed_in_state(DashboardState, world["alice"])
    visit(page, "/dashboard")
    call(page, DashboardState.open_dashboard)
    live = same_tab(page, DashboardLiveState)
    assert [row.status for row in live.statuses] == ["live"]

    statements.clear()
    _later(monkeypatch, dashboard_page, timedelta(minutes=2))
    assert call(live, DashboardLiveState.tick, "") is None
    assert [row.status for row in live.statuses] == ["stale"]
    _later(monkeypatch, dashboard_page, timedelta(milliseconds=services().settings.offline_after_ms) + world["stale"])
    call(live, DashboardLiveState.tick, "")
    assert [row.status for row in live.statuses] == ["offline"]
    assert statements and not [s for s in statements if "snapshot" in s.lower()]  # sign-in checks only


def test_the_strategy_page_tick_turns_a_silent_bot_stale_reading_no_snapshot(world, statements, monkeypatch):
    page = signed_in_state(StrategyPageState, world["alice"])
    visit(page, f"/strategies/{world['strategy_id']}")
    call(page, StrategyPageState.open_strategy)
    live = same_tab(page, StrategyLiveState)
    assert live.status == "live"

    statements.clear()
    _later(monkeypatch, strategy_page, timedelta(minutes=2))
    call(live, StrategyLiveState.tick, "")
    assert live.status == "stale"
    assert not [s for s in statements if "snapshot" in s.lower()]


@pytest.mark.parametrize(
    ("handler", "state_class"),
    [(DashboardLiveState.tick, DashboardLiveState), (StrategyLiveState.tick, StrategyLiveState)],
)
def test_a_tick_from_a_signed_out_tab_goes_to_the_login_page(world, handler, state_class):
    state = signed_in_state(state_class, None)
    assert "/login" in str(call(state, handler, ""))


@pytest.mark.parametrize(
    ("page_class", "live_class", "path"),
    [(DashboardState, DashboardLiveState, "/dashboard"), (StrategyPageState, StrategyLiveState, "/strategies/{id}")],
)
def test_a_tab_this_worker_does_not_push_to_loads_again_on_its_tick_and_is_registered(
    world, page_class, live_class, path
):
    """A tab whose websocket moved here from another worker is not registered here: its next tick loads the page
    again (its own event), which registers it with this worker's live push."""
    page = signed_in_state(page_class, world["alice"])
    visit(page, path.format(id=world["strategy_id"]))
    call(page, page_class.open_dashboard if page_class is DashboardState else page_class.open_strategy)
    live = same_tab(page, live_class)
    token = page.router.session.client_token
    assert call(live, live_class.tick, "") is None  # registered: nothing to do

    live_push.forget(token)  # as on a worker that never saw the page load
    reload = call(live, live_class.tick, "")
    assert reload is not None and reload.fn.__qualname__ == page_class.resync.fn.__qualname__
    call(page, page_class.resync)
    assert live_push.watching(token)
    assert [tab for tab, _, _ in live_push.watchers.of(world["strategy_id"])] == [token]
