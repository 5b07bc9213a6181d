"""Several workers (issue 15) in chromium: the app as `make prod` runs it with WORKERS=3 on PostgreSQL, Redis and
DynamoDB (Local), serving the run's built pages (tests/conftest.py `start_workers`). A tab's websocket is held by
one worker (Reflex's record in Redis says which); a bot's post is answered by whichever worker takes its connection
(the pid of its `api.request` log line, found by the answer's X-Request-ID, says which)."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from projectalgo import charts
from projectalgo.ingest_stats import RedisIngestStats
from projectalgo.integrations.redis_client import connect
from tests.conftest import WORKERS
from tests.factories import PASSWORD, grant_membership, make_admin, make_member, make_strategy
from tests.support.servers import Server
from tests.support.workers import listeners, post, served_by, until, workers_holding

pytestmark = pytest.mark.e2e
# Limits far above what the tests post: no post is refused for its rate.
UNLIMITED = {"INGEST_RATE_PER_SECOND": "100000", "INGEST_BURST": "100000"}
MAX_POSTS = 60  # the workers take turns accepting connections: far more than it takes to reach each of them
# The frame that fills a strategy page's chart: sent once its on_load has checked the tab's user and registered the
# tab for live updates (a hydrate's snapshot carries the empty figure, `{}`).
PAGE_LOADED = '"figure_rx_state_":{"'


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard/?$"))


def _member_with_strategy(engine: Engine, email: str) -> tuple[int, str]:
    member = make_member(engine, email=email)
    grant_membership(engine, member)
    return make_strategy(engine, member, name="Spread")


def _wallet(n: int) -> str:
    """The wallet balance the strategy page shows for `post`'s snapshot number n."""
    return charts.money(10_000 + n)


def _post_stored(app: Server, bot_token: str, n: int) -> int:
    """Post snapshot n (answered 201); the pid of the worker that answered it."""
    answer = post(app.url, bot_token, n)
    assert answer.status_code == 201, answer.text
    return until("the post's log line", lambda: served_by(app.log_path, answer.headers["X-Request-ID"]))


def _stored_from(app: Server, bot_token: str, first: int) -> int:
    """Post snapshots from number `first` on until one is stored (a worker that found Redis unreachable refuses
    for a moment more without asking it): that one's number."""
    numbers = itertools.count(first)

    def attempt() -> int | None:
        n = next(numbers)
        answer = post(app.url, bot_token, n)
        assert answer.status_code in (201, 503), answer.text
        return n if answer.status_code == 201 else None

    return until("a post stored", attempt)


def _frames(page: Page) -> list[str]:
    """Every websocket frame the page receives from now on."""
    received: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda payload: received.append(str(payload))))
    return received


def _wait_in_page(page: Page, what: str, condition: Callable[[], bool], timeout_ms: int = 30_000) -> None:
    """Wait until `condition` holds, letting the page receive its events meanwhile."""
    waited = 0
    while not condition():
        assert waited < timeout_ms, f"{what}: not after {timeout_ms // 1000} s"
        page.wait_for_timeout(50)
        waited += 50


@contextlib.contextmanager
def _explained(page: Page, app: Server, client_token: str) -> Iterator[None]:
    """A failure says where the page went and what the app logged about its tab, and its warnings and errors."""
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url) if frame == page.main_frame else None)
    try:
        yield
    except (AssertionError, PlaywrightError) as failure:
        log = app.log_path.read_text(errors="replace").splitlines()
        about = [line[:300] for line in log if client_token[:8] in line]
        trouble = [line[:300] for line in log if '"level": "WARNING"' in line or '"level": "ERROR"' in line]
        lines = "\n".join(about[-30:] + trouble[-20:])
        raise AssertionError(f"{failure}\npages since: {visited}\nthe app's log about the tab:\n{lines}") from failure


def test_a_tab_held_by_one_worker_shows_live_the_posts_other_workers_answered(
    start_workers, pg_engine, redis_url, page
):
    """Posts go to the workers in turn, each shown live in one open tab, until two different workers have answered
    some: the tab's websocket is one worker's (the same the whole time), so at least one of those was answered by
    another worker than the one pushing to the tab."""
    strategy_id, bot_token = _member_with_strategy(pg_engine, "spread@example.com")
    workers_app = start_workers(pages=True, **UNLIMITED)
    _sign_in(page, workers_app.url, "spread@example.com")
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.goto(f"{workers_app.url}/strategies/{strategy_id}")
    page.get_by_role("heading", name="Spread").wait_for()
    client_token = page.evaluate("window.sessionStorage.getItem('token')")  # Reflex's token for the tab
    holder = workers_holding(redis_url, [client_token])
    assert holder, "Reflex records the worker holding the tab's websocket"
    until("every worker listening for stored snapshots", lambda: listeners(redis_url) == WORKERS)

    answered_by: dict[int, int] = {}  # a worker's pid: the first post it answered
    with _explained(page, workers_app, client_token):
        for n in range(1, MAX_POSTS):
            answered_by.setdefault(_post_stored(workers_app, bot_token, n), n)
            page.locator("#latest-wallet").get_by_text(_wallet(n), exact=True).wait_for()  # live, not reloaded
            if len(answered_by) == 2:
                break
    assert len(answered_by) == 2, f"after {MAX_POSTS} posts, one worker answered them all"
    assert workers_holding(redis_url, [client_token]) == holder, "the tab's websocket stayed with its worker"
    assert len(sockets) == 1 and not sockets[0].is_closed(), "one websocket all along"
    assert page.url.rstrip("/").endswith(f"/strategies/{strategy_id}")


def test_the_admin_pages_ingestion_figures_count_the_posts_of_every_worker(start_workers, pg_engine, redis_url, page):
    make_admin(pg_engine, email="figures-admin@example.com")
    _, bot_token = _member_with_strategy(pg_engine, "figures@example.com")
    workers_app = start_workers(pages=True, **UNLIMITED)
    workers: set[int] = set()
    posts = 0
    while len(workers) < WORKERS:
        assert posts < MAX_POSTS, f"after {MAX_POSTS} posts, only {len(workers)} workers answered"
        posts += 1
        workers.add(_post_stored(workers_app, bot_token, posts))
    refused = post(workers_app.url, "not-a-token", 0)
    assert refused.status_code == 401, refused.text
    # Each worker adds its own tally to Redis every second: wait until they all have.
    figures = RedisIngestStats(connect(redis_url))
    expected = {"accepted": posts, "invalid_token": 1}
    until("every worker's tally in Redis", lambda: figures.last_hour() == expected)

    _sign_in(page, workers_app.url, "figures-admin@example.com")
    page.goto(f"{workers_app.url}/admin")
    page.get_by_role("tab", name="Strategies").click()
    figures_shown = page.locator("#ingest-figures")
    expect(figures_shown).to_contain_text(f"accepted: {posts}")
    expect(figures_shown).to_contain_text("invalid_token: 1")


def test_after_redis_restarts_an_open_strategy_page_is_live_again_from_its_next_minute_tick(
    start_workers, pg_engine, redis_server, redis_url, page
):
    """Redis comes back empty: every tab's state in it is gone (the tab's websocket, to its worker, needs no
    reconnection). The page's minute timer loads the page again (the tab's sign-in is in the browser), which shows
    the newest snapshot, stored meanwhile, and registers the tab for live updates again."""
    strategy_id, bot_token = _member_with_strategy(pg_engine, "restarted@example.com")
    workers_app = start_workers(pages=True, **UNLIMITED)
    frames = _frames(page)
    page.clock.install()  # the page's timers run as usual, and can be moved on
    _sign_in(page, workers_app.url, "restarted@example.com")
    page.goto(f"{workers_app.url}/strategies/{strategy_id}")
    page.get_by_role("heading", name="Spread").wait_for()
    client_token = page.evaluate("window.sessionStorage.getItem('token')")
    with _explained(page, workers_app, client_token):
        until("every worker listening for stored snapshots", lambda: listeners(redis_url) == WORKERS)
        _post_stored(workers_app, bot_token, 1)
        page.locator("#latest-wallet").get_by_text(_wallet(1), exact=True).wait_for()

        redis_server.stop()
        try:
            refused = post(workers_app.url, bot_token, 2)
            assert refused.status_code == 503 and refused.json()["error"] == "store_unavailable", refused.text
        finally:
            redis_server.restart()
        n = _stored_from(workers_app, bot_token, 3)
        until("every worker listening again", lambda: listeners(redis_url) == WORKERS)

        loads = sum(PAGE_LOADED in frame for frame in frames)
        page.clock.fast_forward(charts.TICK_MS)
        _wait_in_page(page, "the page loaded again", lambda: sum(PAGE_LOADED in frame for frame in frames) > loads)
        page.wait_for_url(re.compile(rf"/strategies/{strategy_id}/?$"))  # the member did not have to sign in again
        page.locator("#latest-wallet").get_by_text(_wallet(n), exact=True).wait_for()  # the newest stored
        _post_stored(workers_app, bot_token, n + 1)
        page.locator("#latest-wallet").get_by_text(_wallet(n + 1), exact=True).wait_for()  # live again
