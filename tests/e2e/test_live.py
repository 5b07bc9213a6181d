"""The live dashboard in chromium: a bot posts, the owner's open tabs update at once, nobody else's.

How fast is bench/live.py's and bench/fanout.py's matter (bench/RESULTS.md): these tests wait for the update,
with no time budget of their own."""

import re
from decimal import Decimal

import pytest
import requests
from playwright.sync_api import expect

from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.snapshots import EXAMPLE_DATA, NUMBER_FIELDS, Snapshot, epoch_ms
from tests.factories import grant_membership, make_member, make_strategy, store_one

pytestmark = pytest.mark.e2e
BODY = EXAMPLE_DATA
# The x values a chart draws (its first trace) as JSON, or null before its first figure.
DRAWN_X = "(c) => { const e = document.querySelector(c); return e && e.data ? JSON.stringify(e.data[0].x) : null; }"


def _post(url, token, **values):
    answer = requests.post(
        f"{url}/api/v1/strategy/",
        json={"data": BODY | values},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def _choose(page, range_key: str, chart: str) -> None:
    """Pick a range once the chart has drawn its first figure, and wait until it draws the range's figure."""
    page.wait_for_function(f"(c) => ({DRAWN_X})(c) !== null", arg=chart)
    before = page.evaluate(DRAWN_X, chart)
    page.get_by_role("radio", name=range_key).click()
    page.wait_for_function(f"([c, b]) => ({DRAWN_X})(c) !== b", arg=[chart, before])


def _frames(page) -> list[str]:
    """Every websocket frame this page receives from now on."""
    received: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(str(payload))))
    return received


def test_a_post_updates_the_owners_dashboard_at_once_and_nobody_elses(app_server, app_engine, browser, sign_in, page):
    owner = make_member(app_engine, email="owner-live@example.com")
    grant_membership(app_engine, owner)
    shared_a, token_a = make_strategy(app_engine, owner, name="Trend", account="Main")
    _, token_b = make_strategy(app_engine, owner, name="Carry", account="Main")  # same account: counted once
    _, token_c = make_strategy(app_engine, owner, name="Grid", account="Side")
    _post(app_server.url, token_a, wallet_balance=1000)
    _post(app_server.url, token_c, wallet_balance=500)

    other = make_member(app_engine, email="other-live@example.com")
    grant_membership(app_engine, other)
    others, other_token = make_strategy(app_engine, other, name="Elsewhere", account="Own")
    other_context = browser.new_context()
    other_page = other_context.new_page()
    other_frames = _frames(other_page)
    other_page.goto(f"{app_server.url}/login")
    other_page.fill("#email", "other-live@example.com")
    other_page.fill("#password", "correct horse battery")
    other_page.get_by_role("button", name="Sign in").click()
    other_page.wait_for_url(re.compile(r"/dashboard/?$"))
    expect(other_page.locator(f"#status-{others}")).to_have_text("never")
    expect(other_page.locator("#equity")).to_have_text("—")

    sign_in("owner-live@example.com")
    page.locator("#equity").get_by_text("$1,500.00").wait_for()
    assert page.locator(f"#status-{shared_a}").inner_text() == "live"

    _post(app_server.url, token_b, wallet_balance=1234.56)  # the shared account's newest wallet
    page.locator("#equity").get_by_text("$1,734.56").wait_for()
    page.wait_for_function("document.querySelector('#equity-chart').dataset.seq === '1'")
    assert page.url.endswith(("/dashboard", "/dashboard/"))  # no reload happened

    # The other member's own bot posts after the owner's: once that reaches their tab, anything pushed to it
    # before has too (one websocket, in order). The owner's snapshot is not among it.
    _post(app_server.url, other_token, wallet_balance=777.77)
    expect(other_page.locator("#equity")).to_have_text("$777.77")
    received = "".join(other_frames)
    assert "777.77" in received  # the frames were watched
    assert "1234.56" not in received and "1,734.56" not in received
    other_context.close()


def test_the_strategy_page_and_dashboard_in_two_tabs_both_update_and_page_through_snapshots(
    app_server, app_engine, sign_in, page
):
    owner = make_member(app_engine, email="two-tabs@example.com")
    grant_membership(app_engine, owner)
    strategy_id, token = make_strategy(app_engine, owner, name="Momentum", account="Main")
    store, now = SqlSnapshotStore(app_engine), epoch_ms(utcnow())
    with session_scope(app_engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    for n in range(55):  # history, written straight to the app's store (a bot's rate limit is 50 at once)
        values = dict.fromkeys(NUMBER_FIELDS, Decimal(1000 + n))
        store_one(store, Snapshot(strategy_id, account_id, now - (55 - n) * 1000, **values, symbol="XBTUSD"))
    sign_in("two-tabs@example.com")
    dashboard_tab = page
    strategy_tab = page.context.new_page()
    strategy_tab.goto(f"{app_server.url}/strategies/{strategy_id}")
    strategy_tab.get_by_role("heading", name="Momentum").wait_for()
    strategy_tab.locator("#latest-wallet").get_by_text("$1,054.00").wait_for()
    assert strategy_tab.locator("#snapshot-table tbody tr").count() == 50
    strategy_tab.get_by_role("button", name="Older").click()
    strategy_tab.get_by_text("Page 2").wait_for()
    assert strategy_tab.locator("#snapshot-table tbody tr").count() == 5

    _post(app_server.url, token, wallet_balance=2000, margin_balance=2100)
    strategy_tab.locator("#latest-wallet").get_by_text("$2,000.00").wait_for()
    strategy_tab.locator("#latest-unrealised").get_by_text("$100.00").wait_for()
    dashboard_tab.locator("#equity").get_by_text("$2,000.00").wait_for()
    strategy_tab.wait_for_function("document.querySelector('#strategy-chart').dataset.seq === '1'")
    strategy_tab.locator("#show-new").click()
    strategy_tab.get_by_text("Page 1").wait_for()
    assert "$2,000.00" in strategy_tab.locator("#snapshot-table tbody tr").first.inner_text()


def test_another_members_strategy_page_shows_nothing(app_server, app_engine, sign_in, page):
    owner = make_member(app_engine)
    strategy_id, _ = make_strategy(app_engine, owner, name="Secret sauce")
    intruder = make_member(app_engine, email="intruder@example.com")
    grant_membership(app_engine, intruder)
    sign_in("intruder@example.com")
    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    page.get_by_text("No such strategy.").wait_for()
    assert "Secret sauce" not in page.content()


def test_the_csv_button_downloads_the_chosen_range(app_server, app_engine, sign_in, page):
    owner = make_member(app_engine, email="csv-button@example.com")
    grant_membership(app_engine, owner)
    strategy_id, token = make_strategy(app_engine, owner, name="Exported")
    _post(app_server.url, token, wallet_balance=4321)
    sign_in("csv-button@example.com")
    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    page.locator("#latest-wallet").get_by_text("$4,321.00").wait_for()
    with page.expect_download() as download:
        page.locator("#download-csv").click()
    content = download.value.path().read_text()
    assert content.splitlines()[0].startswith("time_utc,last_price") and ",4321," in content
    assert download.value.suggested_filename == "Exported-snapshots.csv"


def test_every_range_draws_from_roll_ups_and_keeps_updating_live(app_server, app_engine, sign_in, page):
    owner = make_member(app_engine, email="ranges@example.com")
    grant_membership(app_engine, owner)
    strategy_id, token = make_strategy(app_engine, owner, name="Long haul")
    store, now = SqlSnapshotStore(app_engine), epoch_ms(utcnow())
    with session_scope(app_engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    for day in range(400):  # more than a year of history, one snapshot every 6 hours
        for quarter in range(4):
            at = now - (400 - day) * 86_400_000 + quarter * 21_600_000
            values = dict.fromkeys(NUMBER_FIELDS, Decimal(1000 + day))
            store_one(store, Snapshot(strategy_id, account_id, at, **values, symbol="XBTUSD"))
    sign_in("ranges@example.com")
    for key in ("7D", "30D", "1Y", "All"):
        page.get_by_role("radio", name=key).click()
        page.locator("#pnl").locator("xpath=..").get_by_text(f"Profit/Loss {key}").wait_for()
        page.locator("#equity-chart").get_by_text(f"Wallet balance — {key}").wait_for()
    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    _choose(page, "1Y", "#strategy-chart")
    points = page.evaluate("document.querySelector('#strategy-chart').data[0].x.length")
    assert 300 <= points <= 400  # one point a day from the daily roll-ups
    _post(app_server.url, token, wallet_balance=5555)
    page.wait_for_function("document.querySelector('#strategy-chart').dataset.seq === '1'")
    assert page.evaluate("document.querySelector('#strategy-chart').data[0].y.at(-1)") == 5555
