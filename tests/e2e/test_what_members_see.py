"""Issue 13 in chromium: what the dashboard and strategy page show is true (All covers all history, the last
snapshot is the newest stored, statuses age on an open page) and usable (first steps, sane axes, dark mode, the
time zone, long names)."""

import csv
import io
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from playwright.sync_api import expect

from projectalgo import charts, clock, strategies
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.settings import load_settings
from projectalgo.snapshots import EXAMPLE_DATA, NUMBER_FIELDS, Snapshot, epoch_ms
from tests.factories import PASSWORD, actor_of, grant_membership, make_member, make_strategy, store_one

pytestmark = pytest.mark.e2e
DAY = clock.DAY_MS
BODY = EXAMPLE_DATA | {"wallet_balance": 9975.5}


def _post(url: str, token: str, **values: object) -> None:
    answer = requests.post(
        f"{url}/api/v1/strategy/",
        json={"data": BODY | values},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def _store(engine, strategy_id: int, at_ms: int, wallet: int = 1000) -> Snapshot:
    """A snapshot written straight to the app's store, as a backfill would leave it."""
    with session_scope(engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    values = dict.fromkeys(NUMBER_FIELDS, Decimal(wallet))
    return store_one(SqlSnapshotStore(engine), Snapshot(strategy_id, account_id, at_ms, **values, symbol="XBTUSD"))


def _member(engine, email: str):
    member = make_member(engine, email=email)
    grant_membership(engine, member)
    return member


def _sign_in(page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard/?$"))


def _until_the_clock_passes(at_ms: int) -> None:
    """Wait until the clock has passed `at_ms` (a moment a few seconds away)."""
    while epoch_ms(utcnow()) <= at_ms:
        time.sleep(0.05)


def _x_ms(page, chart: str) -> list[int]:
    """The x values a chart draws (its first trace), back in epoch ms."""
    return page.evaluate(
        f"document.querySelector('{chart}').data[0].x.map((x) => new Date(x.replace(' ', 'T')).getTime())"
    )


def _choose(page, range_key: str, chart: str) -> None:
    """Pick a range and wait until the chart draws its figure (different from what it drew before)."""
    drawn = "(c) => { const e = document.querySelector(c); return e && e.data ? JSON.stringify(e.data[0].x) : null; }"
    before = page.evaluate(drawn, chart)
    page.get_by_role("radio", name=range_key).click()
    page.wait_for_function(
        f"([c, b]) => {{ const x = ({drawn})(c); return x !== null && x !== b; }}", arg=[chart, before]
    )


def test_all_covers_a_backfilled_history_on_both_pages_and_in_the_csv(app_server, app_engine, sign_in, page):
    """The strategy is created today; its bot backfilled 500 days: "All" shows all of them, more than "1Y"."""
    owner = _member(app_engine, "backfill@example.com")
    strategy_id, _ = make_strategy(app_engine, owner, name="Backfilled")
    now = epoch_ms(utcnow())
    oldest = now - 500 * DAY
    for day in range(500, 0, -1):
        _store(app_engine, strategy_id, now - day * DAY, wallet=1000 + day)
    sign_in("backfill@example.com")
    # The dashboard's first figure first: arriving late, it would pass for the chosen range's.
    page.wait_for_function("() => { const e = document.querySelector('#equity-chart'); return e && e.data; }")
    _choose(page, "1Y", "#equity-chart")
    year = _x_ms(page, "#equity-chart")
    _choose(page, "All", "#equity-chart")
    everything = _x_ms(page, "#equity-chart")
    assert min(everything) <= oldest < min(everything) + DAY  # from the oldest snapshot's day
    assert len(everything) > len(year) >= 360

    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    page.locator("#empty-range").get_by_text("No snapshots in the last 24H").wait_for()  # the newest is a day old
    _choose(page, "1Y", "#strategy-chart")
    year = _x_ms(page, "#strategy-chart")
    _choose(page, "All", "#strategy-chart")
    everything = _x_ms(page, "#strategy-chart")
    assert min(everything) == oldest and len(everything) == 500 > len(year)

    rows = {}
    for key in ("1Y", "All"):
        _choose(page, key, "#strategy-chart")
        with page.expect_download() as download:
            page.locator("#download-csv").click()
        rows[key] = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(rows["All"]) == 500 > len(rows["1Y"])
    assert rows["All"][0]["wallet_balance"] == "1500"  # the oldest, backfilled first


def test_statuses_and_ages_follow_the_clock_on_an_open_page(app_server, app_env, app_engine, sign_in, page):
    """A bot falls silent: the open page turns it stale within a minute, without a reload (one timer per tab)."""
    settings = load_settings(app_env)
    stale_ms = settings.stale_after_ms
    owner = _member(app_engine, "ticking@example.com")
    quiet, _ = make_strategy(app_engine, owner, name="Quiet bot")
    gone, _ = make_strategy(app_engine, owner, name="Gone bot")
    _store(app_engine, gone, epoch_ms(utcnow()) - settings.offline_after_ms - 60_000)
    last = _store(app_engine, quiet, epoch_ms(utcnow()) - stale_ms + 6_000)  # live for six more seconds
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.clock.install()  # the page's timers run as usual, and can be moved on
    sign_in("ticking@example.com")
    page.locator(f"#status-{quiet}").get_by_text("live").wait_for()
    assert page.locator(f"#status-{gone}").inner_text() == "offline"
    before = page.locator(f"#last-snapshot-{quiet}").inner_text()

    _until_the_clock_passes(last.at_ms + stale_ms)  # the server's clock too: one machine
    page.clock.fast_forward(charts.TICK_MS)  # the real timer is still most of a minute away
    page.locator(f"#status-{quiet}").get_by_text("stale").wait_for()
    assert page.locator(f"#last-snapshot-{quiet}").inner_text() != before  # "x minutes ago" moved on too
    assert len(sockets) == 1  # no reload, no reconnection: the page's own timer

    page.goto(f"{app_server.url}/strategies/{quiet}")
    page.locator("#strategy-status").get_by_text("stale").wait_for()
    last = _store(app_engine, quiet, epoch_ms(utcnow()) - stale_ms + 6_000)
    page.reload()
    page.locator("#strategy-status").get_by_text("live").wait_for()
    _until_the_clock_passes(last.at_ms + stale_ms)
    page.clock.fast_forward(charts.TICK_MS)
    page.locator("#strategy-status").get_by_text("stale").wait_for()


def test_the_last_snapshot_shown_is_the_newest_stored_after_a_burst(app_server, app_env, app_engine, sign_in, page):
    """Ingestion notes a strategy's last snapshot at most once a second; the pages read the store instead."""
    assert load_settings(app_env).stale_after_minutes > 9
    owner = _member(app_engine, "burst@example.com")
    strategy_id, token = make_strategy(app_engine, owner, name="Bursty")
    now = utcnow()
    for minutes in (30, 20, 9):  # within a second: only the first is noted in the strategies table
        _post(app_server.url, token, created_at=(now - timedelta(minutes=minutes)).isoformat())
    sign_in("burst@example.com")
    page.locator(f"#status-{strategy_id}").get_by_text("live").wait_for()
    # The newest (9 minutes old when posted; 10 once half a minute has passed on a busy machine), never 20 or 30.
    # (rx.moment draws its text once its library has loaded: expect waits for it.)
    newest = re.compile(r"\b(9|10) minutes ago")
    expect(page.locator(f"#last-snapshot-{strategy_id}")).to_have_text(newest)
    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    page.locator("#strategy-status").get_by_text("live").wait_for()
    expect(page.locator("#strategy-last-update")).to_contain_text(newest)


def _ticks(page, chart: str, axis: str) -> list[str]:
    return page.locator(f"{chart} .{axis}tick text").all_text_contents()  # SVG text has no innerText


def _x_span(page, chart: str) -> int:
    return page.evaluate(
        f"(() => {{ const r = document.querySelector('{chart}')._fullLayout.xaxis.range;"
        " return new Date(r[1].replace(' ', 'T')) - new Date(r[0].replace(' ', 'T')); })()"
    )


MONEY_TICK = re.compile("^[-\u2212]?\\$\\d{1,3}(,\\d{3})*(\\.\\d+)?$")  # plotly writes a minus as U+2212


def _check_first_points(page, chart: str, points: int) -> None:
    """A few points: drawn as markers, on a time axis of minutes, with money ticks."""
    page.wait_for_function(f"document.querySelectorAll('{chart} .scatterlayer .point').length >= {points}")
    assert charts.MIN_X_SPAN_MS <= _x_span(page, chart) <= 2 * charts.MIN_X_SPAN_MS
    assert not any(re.search(r"\d\d:\d\d:\d\d\.\d", tick) for tick in _ticks(page, chart, "x"))
    money = _ticks(page, chart, "y")
    assert money and all(MONEY_TICK.match(tick) for tick in money), money


def test_first_use_says_what_to_do_next_and_draws_the_first_snapshot_sensibly(app_server, app_engine, sign_in, page):
    owner = _member(app_engine, "newcomer@example.com")
    sign_in("newcomer@example.com")
    step = page.locator("#first-step")
    assert step.get_by_role("link").get_attribute("href") == "/accounts"
    assert page.locator("#pnl").inner_text() == "—" and page.locator("#equity-chart").count() == 0

    with session_scope(app_engine) as session:
        strategies.create_account(session, actor_of(owner), name="First account")
    page.reload()
    page.locator("#first-step").get_by_text("create a strategy", exact=False).wait_for()
    assert page.locator("#first-step").get_by_role("link").get_attribute("href") == "/strategies"

    strategy_id, token = make_strategy(app_engine, owner, name="First bot", account="First account")
    page.reload()
    instructions = page.locator("#bot-instructions")
    instructions.get_by_text("curl -X POST", exact=False).wait_for()  # the code block renders in the browser
    assert "/api/v1/strategy/" in instructions.inner_text()
    assert instructions.get_by_role("link", name="Strategies").get_attribute("href") == "/strategies"
    assert page.locator(f"#status-{strategy_id}").inner_text() == "never"

    _post(app_server.url, token)  # the first snapshot: the chart appears on the open page
    page.locator("#equity-chart").wait_for()
    assert page.locator("#bot-instructions").count() == 0
    _check_first_points(page, "#equity-chart", 1)
    page.get_by_role("radio", name="All").click()
    page.locator("#equity-chart").get_by_text("Wallet balance — All").wait_for()
    _check_first_points(page, "#equity-chart", 1)  # one snapshot on "All" is a dot, not nothing

    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    _check_first_points(page, "#strategy-chart", len(charts.STRATEGY_TRACES))
    _post(app_server.url, token, wallet_balance=9990)
    page.wait_for_function("document.querySelector('#strategy-chart').dataset.seq === '1'")
    _check_first_points(page, "#strategy-chart", 2 * len(charts.STRATEGY_TRACES))


def test_a_strategy_without_snapshots_shows_how_its_bot_posts(app_server, app_engine, sign_in, page):
    owner = _member(app_engine, "no-snapshots@example.com")
    strategy_id, _ = make_strategy(app_engine, owner, name="Not yet posting")
    sign_in("no-snapshots@example.com")
    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    instructions = page.locator("#bot-instructions")
    instructions.get_by_text("Authorization: Bearer", exact=False).wait_for()
    assert instructions.get_by_role("link", name="Strategies").get_attribute("href") == "/strategies"
    assert page.locator("#strategy-chart").count() == 0


def test_dark_mode_the_viewers_time_zone_and_a_long_name(app_server, app_engine, browser):
    owner = _member(app_engine, "night-owl@example.com")
    name = "N" * strategies.NAME_MAX_LENGTH  # unbroken
    strategy_id, token = make_strategy(app_engine, owner, name=name)
    _post(app_server.url, token)
    context = browser.new_context(color_scheme="dark", timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        _sign_in(page, app_server.url, "night-owl@example.com")
        assert page.locator("#time-zone").inner_text() == "Asia/Tokyo (UTC+09:00)"
        page.locator("#equity-chart .gridlayer path").first.wait_for(state="attached")
        assert page.evaluate("document.documentElement.classList.contains('dark')")
        colours = page.evaluate(
            "(() => { const c = document.querySelector('#equity-chart'); return {"
            " grid: c.querySelector('.gridlayer path').style.stroke,"
            " gridOpacity: c.querySelector('.gridlayer path').style.strokeOpacity, paper: c._fullLayout.paper_bgcolor,"
            " text: c._fullLayout.font.color}; })()"
        )
        assert (colours["grid"], colours["gridOpacity"]) == ("rgb(128, 128, 128)", "0.2")  # charts.GRID_COLOR
        assert colours["paper"] == "rgba(0, 0, 0, 0)"
        red, green, blue = (int(v) for v in re.findall(r"\d+", colours["text"])[:3])
        assert red + green + blue > 3 * 160  # light text on the dark page

        page.goto(f"{app_server.url}/strategies/{strategy_id}")
        heading = page.locator("#strategy-name")
        heading.get_by_text(name).wait_for()
        assert page.locator("#time-zone").inner_text() == "Asia/Tokyo (UTC+09:00)"
        box = heading.bounding_box()
        assert box["x"] + box["width"] <= page.viewport_size["width"]
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    finally:
        context.close()
