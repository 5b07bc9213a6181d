"""The strategy page's performance section, through its event handlers: a deposit is not profit, and the owner's
corrections change the figures at once."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from projectalgo.clock import HOUR_MS, utcnow
from projectalgo.db import session_scope
from projectalgo.models import FlowCorrection
from projectalgo.pages.strategy import StrategyLiveState, StrategyPageState
from projectalgo.pages.strategy_performance import StrategyPerformanceState
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from tests.factories import grant_membership, store_as_ingested, store_one, strategy_world
from tests.support.states import browser_view, call, same_tab, signed_in_state, visit


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    grant_membership(app_services, world["alice"], days=30)
    now = epoch_ms(utcnow())
    # 10,000, then 5,000 deposited (no realised PnL moved), then 100 realised: a $100 profit, not $5,100.
    for at, wallet, realised in (
        (now - 3 * HOUR_MS, "10000", "0"),
        (now - 2 * HOUR_MS, "15000", "0"),
        (now - HOUR_MS, "15100", "100"),
    ):
        store_as_ingested(
            Snapshot(
                world["strategy_id"],
                world["account_id"],
                at,
                Decimal(50_000),
                Decimal(wallet),
                Decimal(wallet),
                Decimal(realised),
                Decimal(0),
                Decimal(0),
                "XBTUSD",
            ),
        )
    world["deposit_at"] = now - 2 * HOUR_MS
    return world


def _page(world, who):
    page = signed_in_state(StrategyPageState, world[who])
    visit(page, f"/strategies/{world['strategy_id']}")
    call(page, StrategyPageState.open_strategy)
    return same_tab(page, StrategyPerformanceState)


def test_a_deposit_is_listed_as_a_flow_and_not_counted_as_profit(world):
    performance = _page(world, "alice")
    assert (performance.profit, performance.deposits, performance.owner) == ("$100.00", "$5,000.00", True)
    assert performance.twr == "+0.67%"  # 100 / 15,000
    assert [(f.at_ms, f.shown, f.source) for f in performance.flows] == [(world["deposit_at"], "$5,000.00", "detected")]
    assert performance.days_figure and performance.returns_figure


def test_the_owners_corrections_change_the_figures(world):
    performance = _page(world, "alice")
    call(
        performance,
        StrategyPerformanceState.correct,
        {"at_ms": str(world["deposit_at"]), "amount": "4000"},
    )
    assert performance.error == "" and performance.profit == "$1,100.00"
    assert [(f.shown, f.source, f.found_shown) for f in performance.flows] == [("$4,000.00", "corrected", "$5,000.00")]
    call(performance, StrategyPerformanceState.not_a_flow, world["deposit_at"])
    assert performance.profit == "$5,100.00"
    # Still listed, to undo: counted as $0, with what was found.
    assert [(f.shown, f.source, f.found_shown) for f in performance.flows] == [("$0.00", "dismissed", "$5,000.00")]
    call(performance, StrategyPerformanceState.confirm, world["deposit_at"])
    assert performance.profit == "$100.00"
    call(performance, StrategyPerformanceState.add_flow, {"at": "2000-01-01T00:00", "amount": "1"})
    # Before the range: no change here, and not listed (it counts in no figure of this range).
    assert performance.error == "" and performance.profit == "$100.00"
    assert [f.source for f in performance.flows] == ["confirmed"]


def test_an_admin_sees_the_figures_but_cannot_correct_them(world):
    performance = _page(world, "admin")
    assert performance.profit == "$100.00" and performance.owner is False
    call(performance, StrategyPerformanceState.not_a_flow, world["deposit_at"])
    assert performance.error.startswith("No such") and performance.profit == "$100.00"


def test_another_member_sees_nothing_of_the_figures(world):
    grant_membership(world["engine"], world["bob"], days=30)
    performance = _page(world, "bob")
    assert performance.flows == [] and performance.profit == "—"
    assert "5,000" not in browser_view(performance) and "15100" not in browser_view(performance)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"at": "yesterday", "amount": "5"}, "Pick the date"),
        ({"at": "2024-03-01T12:00", "amount": "lots"}, "is not an amount"),
        ({"at": "2024-03-01T12:00", "amount": "0"}, "no flow"),
    ],
)
def test_a_mistyped_flow_gets_a_readable_message(world, form, message):
    performance = _page(world, "alice")
    call(performance, StrategyPerformanceState.add_flow, form)
    assert message in performance.error and performance.profit == "$100.00"


def test_a_flow_not_on_the_page_cannot_be_corrected_whatever_the_browser_sends(world):
    performance = _page(world, "alice")
    call(performance, StrategyPerformanceState.not_a_flow, world["deposit_at"] + 1)
    assert "not on the page" in performance.error and performance.profit == "$100.00"


def test_a_word_on_the_hourly_view_replaces_the_words_said_on_the_raw_snapshots_inside_its_hour(world):
    raw = _page(world, "alice")  # 24H: raw snapshots
    call(raw, StrategyPerformanceState.correct, {"at_ms": str(world["deposit_at"]), "amount": "4000"})
    assert raw.profit == "$1,100.00"
    page = same_tab(raw, StrategyPageState)
    call(page, StrategyPageState.set_range, "7D")  # hourly: the deposit is in its hour's interval
    [flow] = raw.flows
    assert (flow.shown, flow.source) == ("$4,000.00", "corrected")
    call(raw, StrategyPerformanceState.not_a_flow, flow.at_ms)  # replaces the raw correction: no flow at all
    assert raw.profit == "$5,100.00"
    call(page, StrategyPageState.set_range, "24H")
    assert raw.profit == "$5,100.00"


def test_the_pages_tick_computes_the_figures_again_once_snapshots_came(world):
    performance = _page(world, "alice")
    live = same_tab(performance, StrategyLiveState)
    newest = Snapshot(
        world["strategy_id"],
        world["account_id"],
        epoch_ms(utcnow()),
        Decimal(50_000),
        Decimal(15_300),
        Decimal(15_300),
        Decimal(300),
        Decimal(0),
        Decimal(0),
        "XBTUSD",
    )
    store_one(services().snapshot_store, newest)
    live._apply_snapshot(newest)  # as the live push does
    assert performance.profit == "$100.00"  # not per snapshot ...
    call(live, StrategyLiveState.tick, "")
    assert performance.profit == "$300.00"  # ... but on the minute's tick


def test_a_range_opens_at_the_balance_before_it_as_the_dashboard_measures_it(world):
    before = Snapshot(
        world["strategy_id"],
        world["account_id"],
        epoch_ms(utcnow()) - 30 * HOUR_MS,
        Decimal(50_000),
        Decimal(9_900),
        Decimal(9_900),
        Decimal(-100),
        Decimal(0),
        Decimal(0),
        "XBTUSD",
    )
    store_one(services().snapshot_store, before)
    performance = _page(world, "alice")
    # 9,900 (30 hours ago, before 24H) -> 10,000 earned 100, then the deposit, then 100 more.
    assert performance.profit == "$200.00"


def test_days_and_times_follow_the_viewers_time_zone(world):
    performance = _page(world, "alice")
    assert performance.zone == "UTC" and performance.flows[0].at.endswith(" UTC")
    call(performance, StrategyPerformanceState.set_time_zone, "Asia/Tokyo")
    assert performance.zone == "Asia/Tokyo" and performance.flows[0].at.endswith(" JST")
    call(performance, StrategyPerformanceState.set_time_zone, "Mars/Olympus_Mons")  # not a zone: ignored
    assert performance.zone == "Asia/Tokyo"
    # A flow added by hand at 09:00 in Tokyo is at 00:00 UTC.
    call(performance, StrategyPerformanceState.add_flow, {"at": "2024-03-01T09:00", "amount": "5"})
    with session_scope(world["engine"]) as session:
        assert session.scalar(select(FlowCorrection.at_ms)) == 1_709_251_200_000
