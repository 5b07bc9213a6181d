"""The shared page (/share/<token>) through its event handlers, as a visitor without an account: percentages only
unless the link allows amounts, live updates of the return, and a revoked link empties the page and says so."""

import asyncio
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from projectalgo import sharing
from projectalgo.clock import HOUR_MS, utcnow
from projectalgo.db import session_scope
from projectalgo.live import Viewer
from projectalgo.live_push import live_push
from projectalgo.models import ShareLink, Strategy
from projectalgo.pages.shared import SharedLiveState, SharedPageState
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from tests.factories import actor_of, grant_membership, make_strategy, store_one, strategy_world
from tests.support.states import browser_view, call, same_tab, signed_in_state, visit


def _snapshot(world, at, wallet, realised="0", price="100", strategy="strategy_id"):
    return Snapshot(
        world[strategy],
        world["account_id"] if strategy == "strategy_id" else world["other_account_id"],
        at,
        Decimal(price),
        Decimal(wallet),
        Decimal(wallet),
        Decimal(realised),
        Decimal(0),
        Decimal(0),
        "XBTUSD",
    )


@pytest.fixture
def world(app_services):
    world = strategy_world(app_services)
    grant_membership(app_services, world["alice"], days=30)
    world["other_id"], _ = make_strategy(app_services, world["alice"], name="Hidden Other", account="Side Account")
    with session_scope(app_services) as session:
        world["other_account_id"] = session.get(Strategy, world["other_id"]).account_id
    now = epoch_ms(utcnow())
    world["now"] = now
    # 10,000, then 5,000 deposited, then 150 realised: +1.00 % net of the deposit ($150 on $15,000).
    for at, wallet, realised in ((now - 3 * HOUR_MS, "10000", "0"), (now - 2 * HOUR_MS, "15000", "0")):
        store_one(services().snapshot_store, _snapshot(world, at, wallet, realised))
    store_one(services().snapshot_store, _snapshot(world, now - HOUR_MS, "15150", "150", price="110"))
    store_one(services().snapshot_store, _snapshot(world, now - HOUR_MS, "77777", strategy="other_id"))
    return world


def _link(world, *, strategy=True, amounts=False):
    with session_scope(world["engine"]) as session:
        _, token = sharing.create_link(
            session,
            actor_of(world["alice"]),
            strategy_id=world["strategy_id"] if strategy else None,
            label="Recruiting",
            days=7,
            show_amounts=amounts,
            now=utcnow(),
        )
    return token


def _open(token, client_ip="198.51.100.7"):
    page = signed_in_state(SharedPageState, None)
    visit(page, f"/share/{token}", client_ip=client_ip)
    call(page, SharedPageState.open_share)
    return page, same_tab(page, SharedLiveState)


def test_a_strategy_link_shows_percentages_and_no_amount_nor_anything_else_of_the_owner(world):
    page, live = _open(_link(world))
    assert (page.gone, page.shown, page.label, page.amounts) == ("", True, "Recruiting", False)
    assert live.twr == "+1.00%" and page.drawdown == "0.00%"
    assert page.figure["data"][0]["y"][-1] == pytest.approx(0.01) and page.days_figure
    view = browser_view(page)
    for secret in ("15,150", "5,000", "Hidden Other", "Side Account", "Trend"):
        assert secret not in view, secret
    for amount in ("15150", "10000", "77777"):  # as a number of its own, not digits inside a timestamp
        assert not re.search(rf"(?<![\d.]){amount}(?!\d)", view), amount
    for secret in ("XBTUSD", "Alice", world["alice"].email, "BitMEX main"):
        assert secret not in view, secret
    with session_scope(world["engine"]) as session:
        assert session.query(ShareLink).one().last_viewed_at is not None
    assert live._viewer() == Viewer.link(live._link_id)


def test_amounts_show_only_when_the_link_allows_them(world):
    page, _ = _open(_link(world, amounts=True))
    assert (page.profit, page.deposits) == ("$150.00", "$5,000.00")
    portfolio, live = _open(_link(world, strategy=False, amounts=True))
    assert portfolio.portfolio and live.balance == "$92,927.00"  # both accounts' newest wallets
    hidden, hidden_live = _open(_link(world, strategy=False))
    assert hidden_live.balance == "" and hidden.figure == {} and "92,927" not in browser_view(hidden)


def test_a_pushed_snapshot_updates_the_return_with_ratios_only(world):
    _, live = _open(_link(world))
    snapshot = _snapshot(world, world["now"] - 1000, "15301.5", "301.5", price="121")
    live._apply_snapshot(snapshot)
    assert live.twr == "+2.01%"  # 1.01 x (1 + 151.5 / 15,150), chained
    assert live.tail == {"seq": 1, "points": [[0, snapshot.at_ms, pytest.approx(0.0201)], [1, snapshot.at_ms, 0.21]]}
    live._apply_snapshot(_snapshot(world, world["now"] - 500, "1", strategy="other_id"))  # not this link's
    assert live.tail["seq"] == 1


def test_a_revoked_link_empties_the_page_says_so_and_stops_its_pushes(world):
    token = _link(world)
    page, live = _open(token)
    link_id = live._link_id
    assert live_push.watchers.on(f"share-link:{link_id}")
    with session_scope(world["engine"]) as session:
        sharing.revoke(session, actor_of(world["alice"]), link_id, now=utcnow())
    asyncio.run(live._apply_notice(f"share-link:{link_id}"))
    assert (page.gone, page.shown, live.twr, page.figure) == ("This link was revoked.", False, "—", {})
    assert live._viewer() is None and not live_push.watching(page.router.session.client_token)
    again, _ = _open(token, client_ip="198.51.100.9")
    assert again.gone == "This link was revoked."


def test_an_unknown_link_and_a_client_over_its_limit_get_a_message(world):
    page, _ = _open("sh_nothing-here")
    assert page.gone == sharing.NOT_FOUND and not page.shown
    token = _link(world)
    for _ in range(sharing.VIEWS_PER_WINDOW):
        _open(token, client_ip="203.0.113.5")
    limited, _ = _open(token, client_ip="203.0.113.5")
    assert limited.gone.startswith("Too many views") and not limited.shown


def test_days_and_times_follow_the_browsers_time_zone(world):
    page, _ = _open(_link(world))
    call(page, SharedPageState.set_time_zone, "Not/A_Zone")  # whatever the browser sends: an unknown name is ignored
    assert page.zone == "UTC"
    last = datetime.fromtimestamp((world["now"] - HOUR_MS) / 1000, UTC)
    name = "Pacific/Pago_Pago" if last.hour < 12 else "Pacific/Kiritimati"  # UTC-11 or +14: another day than UTC's
    call(page, SharedPageState.set_time_zone, name)
    there = last.astimezone(ZoneInfo(name)).date()
    assert page.zone == name and there != last.date() and there.isoformat() in json.dumps(page.days_figure)
