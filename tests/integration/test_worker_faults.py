"""Several workers (issue 15) while what they share restarts: Redis (it comes back empty, on the same port) or
PostgreSQL. Bots post without pause all along (tests/support/workers.py `Bots`): every post is answered 201 and
stored, or 503 in the API's error shape and not stored; never 500. Once the server is back, posts are stored again
and /api/v1/health/ready says ok. What an open browser tab sees across a Redis restart is
tests/e2e/test_several_workers.py's."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from projectalgo.db import make_engine
from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.migrations import upgrade_to_head
from projectalgo.settings import load_settings
from projectalgo.snapshots import all_snapshots
from tests.conftest import WORKERS
from tests.support.servers import Server, start_postgres
from tests.support.tabs import arrange
from tests.support.workers import Bots, until

# Limits far above what the bots post: every refusal seen is the outage's.
UNLIMITED = {"INGEST_RATE_PER_SECOND": "100000", "INGEST_BURST": "100000"}
STORED_BEFORE = 30  # posts stored before the outage, and again after it
REFUSED = 3 * WORKERS  # posts refused during the outage: enough for each worker to have met it
READY_SECONDS = 60


def _ready(url: str) -> requests.Response:
    return requests.get(f"{url}/api/v1/health/ready", timeout=10)


def _ready_again(url: str) -> None:
    """Wait until a worker says it is ready again; then so do the next few asked (each check goes to whichever
    worker takes its connection)."""
    until("a worker ready again", lambda: _ready(url).status_code == 200, timeout=READY_SECONDS)
    answers = [_ready(url) for _ in range(2 * WORKERS)]
    assert all(answer.status_code == 200 for answer in answers), [answer.text for answer in answers]
    assert all(set(answer.json()["checks"].values()) == {"ok"} for answer in answers)


def _stop_postgres_fast(server: Server, data_dir: Path) -> None:
    """PostgreSQL's fast shutdown, as its operator restarts it: SIGINT to the postmaster ends every session at once.
    (Server.stop's SIGTERM asks for a smart shutdown, which waits for the workers' pooled connections to close.)"""
    if server.process.poll() is None:
        os.kill(int((data_dir / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
        server.process.wait(timeout=60)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[Server, Path, Engine]]:
    """A migrated PostgreSQL cluster of this test's own (its server, data folder and database): restarting it
    disturbs no other test, nor the session's server, whose fixtures keep connections to it."""
    # Not under pytest's temp folder: as root, PostgreSQL runs as another user, who cannot enter that one.
    with tempfile.TemporaryDirectory(prefix="projectalgo-pg-") as folder:
        data_dir = Path(folder)
        server = start_postgres(tmp_path, data_dir)
        try:
            upgrade_to_head(f"{server.url}/postgres")
            engine = make_engine(f"{server.url}/postgres")
            yield server, data_dir, engine
            engine.dispose()
        finally:
            _stop_postgres_fast(server, data_dir)


def _through_an_outage(bots: Bots, server: Server, check: str, app_url: str, stop: Callable[[], None]) -> None:
    """Posts are stored, `server` stops (`stop`), posts are refused (and ready says `check` is down), it starts
    again on the same port, posts are stored again."""
    bots.wait_until("posts stored before the outage", lambda: bots.statuses().count(201) >= STORED_BEFORE)
    stop()
    try:
        down = bots.mark()
        bots.wait_until("posts refused during the outage", lambda: bots.statuses(down).count(503) >= REFUSED)
        ready = _ready(app_url)
        assert ready.status_code == 503 and ready.json()["checks"][check] == "error", ready.text
    finally:
        server.restart()
    back = bots.mark()
    bots.wait_until("posts stored after the outage", lambda: bots.statuses(back).count(201) >= STORED_BEFORE)


def _check_answers(bots: Bots, env: dict[str, str], strategy_id: int) -> None:
    """Only 201 or 503 answered; each 503 in the API's error shape, saying when to try again; the store holds
    exactly the posts answered 201."""
    statuses = bots.statuses()
    assert set(statuses) == {201, 503}, f"only 201 or 503 may answer: {sorted(set(statuses), key=str)}"
    for answer in bots.answers:
        if answer.status == 503:
            assert isinstance(answer.body, dict) and set(answer.body) == {"error", "detail"}, answer.body
            assert answer.body["error"] == "store_unavailable" and answer.retry_after, answer
    store = DynamoSnapshotStore(load_settings(env))
    stored = [int(snapshot.positions) - 10_000 for snapshot in all_snapshots(store, strategy_id)]
    accepted = {answer.n for answer in bots.answers if answer.status == 201}
    assert len(stored) == len(set(stored)), "each post stored once"
    assert set(stored) == accepted, "every post answered 201 is stored, and no post answered 503 is"


def test_while_redis_restarts_posts_are_stored_or_refused_with_503_and_none_answered_201_is_lost(
    start_workers, workers_env, pg_engine, redis_server
):
    workers_app = start_workers(**UNLIMITED)
    strategy_id, bot_token, _ = arrange(pg_engine)
    with Bots(workers_app.url, bot_token) as bots:
        _through_an_outage(bots, redis_server, "redis", workers_app.url, redis_server.stop)
    _ready_again(workers_app.url)
    _check_answers(bots, workers_env, strategy_id)


def test_while_postgresql_restarts_posts_in_flight_fail_with_503_and_the_workers_reconnect(
    own_postgres, start_workers, workers_env
):
    server, data_dir, engine = own_postgres
    workers_app = start_workers(DATABASE_URL=engine.url.render_as_string(hide_password=False), **UNLIMITED)
    strategy_id, bot_token, _ = arrange(engine)
    with Bots(workers_app.url, bot_token) as bots:
        _through_an_outage(bots, server, "database", workers_app.url, lambda: _stop_postgres_fast(server, data_dir))
    _ready_again(workers_app.url)
    _check_answers(bots, workers_env, strategy_id)
