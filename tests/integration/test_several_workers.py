"""Several workers (issue 15): the app as `make prod` runs it with WORKERS=2, on PostgreSQL, Redis and DynamoDB
(Local), each started on loopback by the test set-up. Tabs are Socket.IO clients joining a strategy page as a
browser tab does (tests/support/tabs.py); which worker holds each tab's websocket is read from Reflex's own
records in Redis."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import Engine

from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.settings import load_settings
from projectalgo.snapshots import NUMBER_FIELDS, all_snapshots
from tests.conftest import TEST_SECRET_KEY_BASE
from tests.support import servers
from tests.support.tabs import arrange, join

WORKERS = 2


@pytest.fixture
def workers_env(pg_engine: Engine, redis_url: str, dynamodb_local: servers.Server) -> dict[str, str]:
    port = servers.free_port()
    env = (
        {
            "APP_ENV": "test",
            "PORT": str(port),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
            "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE,
            "BCRYPT_ROUNDS": "4",
            "REFLEX_REDIS_URL": redis_url,
            "WORKERS": str(WORKERS),
            "GRANIAN_WORKERS": str(WORKERS),  # what scripts/prod sets from WORKERS
            "LOG_LEVEL": "DEBUG",
        }
        | servers.dynamodb_env(dynamodb_local.url, f"snapshots-{uuid.uuid4().hex[:8]}")
    )
    servers.create_tables(env)
    return env


@pytest.fixture
def start_workers(workers_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., servers.Server]]:
    """Starts the app with WORKERS workers, with these settings changed."""
    started: list[servers.Server] = []

    def start(**settings: str) -> servers.Server:
        workers_env.update(settings)
        started.append(servers.start_app(tmp_path, workers_env, "workers", pages=False))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _post(url: str, token: str, n: int) -> requests.Response:
    body = {"data": dict.fromkeys(NUMBER_FIELDS, 10_000 + n) | {"symbol": "XBTUSD"}}
    # A new connection for each post: the workers take turns accepting them.
    return requests.post(
        f"{url}/api/v1/strategy/", json=body, headers={"Authorization": f"Bearer {token}", "Connection": "close"}
    )


def _workers_holding(redis_url: str, client_tokens: list[str]) -> dict[str, str]:
    """Which worker (Reflex's instance id) holds each tab's websocket, from Reflex's socket records in Redis
    (pickled reflex.utils.token_manager.SocketRecord)."""
    with redis.Redis.from_url(redis_url) as client:
        return {
            token: pickle.loads(client.get(f"token_manager_socket_record_{token}")).instance_id
            for token in client_tokens
        }


@pytest.mark.xfail(
    strict=False,
    reason="open (issue 15): in about one full run in four some updates never reach a tab on one worker, though "
    "the app logged them pushed (live.pushed at DEBUG) or a worker's tabs dropped out; never alone in 40 runs",
)
def test_a_snapshot_posted_to_any_worker_reaches_every_tab_on_every_worker(start_workers, pg_engine, redis_url):
    """Twelve posts reach every tab on both workers (a thirteenth follows them). In full runs some updates have
    not reached the tabs on one worker, with nothing logged above DEBUG: once with every push logged as done (so
    lost after Reflex took the delta), once with that worker's tabs dropping out of the push. The finding is open
    (README, Deploying); the app's DEBUG lines say which."""
    workers_app = start_workers()
    strategy_id, bot_token, session_token = arrange(pg_engine)
    posts = 12

    async def scenario() -> tuple[list[dict[int, float]], dict[str, str], list[str]]:
        arrivals: list[dict[int, float]] = []
        clients, tokens = [], []
        # Tabs open until both workers hold some (the workers take turns accepting connections).
        while len(clients) < 6 or len(set(_workers_holding(redis_url, tokens).values())) < WORKERS:
            assert len(clients) < 40, "every tab landed on one worker"
            arrivals.append({})
            client, token = await join(workers_app.url, strategy_id, session_token, arrivals[-1])
            clients.append(client)
            tokens.append(token)
        for n in range(1, posts + 2):
            answer = await asyncio.to_thread(_post, workers_app.url, bot_token, n)
            assert answer.status_code == 201, answer.text
        # Each tab's seq counts its own updates from 1: the n-th post is its n-th update.
        deadline = asyncio.get_running_loop().time() + 30
        every = set(range(1, posts + 1))
        while any(not every <= a.keys() for a in arrivals) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        holders = _workers_holding(redis_url, tokens)
        for client in clients:
            await client.disconnect()
        return arrivals, holders, tokens

    arrivals, holders, tokens = asyncio.run(scenario())
    assert len(set(holders.values())) == WORKERS
    missing = {
        f"tab {n} on {holders[tokens[n]][:8]}": sorted(set(range(1, posts + 1)) - set(a))
        for n, a in enumerate(arrivals)
    }
    assert not {tab: seqs for tab, seqs in missing.items() if seqs}, missing


def test_the_workers_share_one_rate_limit_per_token(start_workers, workers_env, pg_engine):
    """A token's burst of posts is accepted, whichever workers take them, and the rest are 429: one bucket, where
    a bucket per worker would let twice the burst through."""
    # A slow refill: what the limit lets through is the burst, however long the posts take.
    workers_app = start_workers(INGEST_RATE_PER_SECOND="1", INGEST_BURST="20")
    _, bot_token, _ = arrange(pg_engine)
    burst = load_settings(workers_env).ingest_burst
    with_extra = 2 * burst + 10
    answers: list[int] = []
    lock = threading.Lock()

    def post_some(first: int) -> None:
        for n in range(first, with_extra, 4):
            status = _post(workers_app.url, bot_token, n).status_code
            with lock:
                answers.append(status)

    threads = [threading.Thread(target=post_some, args=(first,)) for first in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A post or two may find the bucket refilled meanwhile (one a second): never twice the burst.
    assert burst <= answers.count(201) < burst + 10
    assert answers.count(429) == with_extra - answers.count(201)


def test_on_sigterm_every_snapshot_answered_201_is_stored(start_workers, workers_env, pg_engine):
    """Bots post without pause while the server is told to stop: each post answered 201 is in the store."""
    workers_app = start_workers(INGEST_RATE_PER_SECOND="10000", INGEST_BURST="10000")
    strategy_id, bot_token, _ = arrange(pg_engine)
    accepted: list[str] = []
    other: list[str] = []
    stop = threading.Event()

    def post_until_stopped(first: int) -> None:
        n = first
        while not stop.is_set():
            try:
                answer = _post(workers_app.url, bot_token, n)
            except requests.RequestException as error:  # the server has stopped listening
                other.append(type(error).__name__)
                return
            (accepted if answer.status_code == 201 else other).append(
                answer.json()["created_at"] if answer.status_code == 201 else str(answer.status_code)
            )
            n += 4

    threads = [threading.Thread(target=post_until_stopped, args=(first,)) for first in range(4)]
    for thread in threads:
        thread.start()
    while len(accepted) < 100:  # posts flowing to both workers
        assert all(thread.is_alive() for thread in threads)
        time.sleep(0.01)
    os.killpg(workers_app.process.pid, signal.SIGTERM)
    workers_app.process.wait(timeout=60)
    stop.set()
    for thread in threads:
        thread.join()

    store = DynamoSnapshotStore(load_settings(workers_env))
    stored = {
        s.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for s in all_snapshots(store, strategy_id)
    }
    assert accepted and set(accepted) <= stored
    assert not set(other) - {"503", "429", "ConnectionError"}, other
