"""Several workers (issue 15): the app as `make prod` runs it with WORKERS=3, on PostgreSQL, Redis and DynamoDB
(Local), each started on loopback by the test set-up. Tabs are Socket.IO clients joining a strategy page as a
browser tab does (tests/support/tabs.py); which worker holds each tab's websocket is read from Reflex's own
records in Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import requests

from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.settings import load_settings
from projectalgo.snapshots import all_snapshots
from tests.conftest import WORKERS
from tests.support.tabs import arrange, join
from tests.support.workers import post, workers_holding


def test_a_snapshot_posted_to_any_worker_reaches_every_tab_on_every_worker(start_workers, pg_engine, redis_url):
    """Twelve posts reach every tab on every worker (a thirteenth follows them). When some do not, the message
    says which tabs, whether their websockets were still open, and what the app logged about them."""
    workers_app = start_workers()
    strategy_id, bot_token, session_token = arrange(pg_engine)
    posts = 12

    async def scenario() -> tuple[list[dict[int, float]], dict[str, str], list[str], list[bool]]:
        arrivals: list[dict[int, float]] = []
        clients, tokens = [], []
        # Tabs open until every worker holds some (the workers take turns accepting connections).
        while len(clients) < 2 * WORKERS or len(set(workers_holding(redis_url, tokens).values())) < WORKERS:
            assert len(clients) < 60, "some worker took no tab"
            arrivals.append({})
            client, token = await join(workers_app.url, strategy_id, session_token, arrivals[-1])
            clients.append(client)
            tokens.append(token)
        for n in range(1, posts + 2):
            answer = await asyncio.to_thread(post, workers_app.url, bot_token, n)
            assert answer.status_code == 201, answer.text
        # Each tab's seq counts its own updates from 1: the n-th post is its n-th update.
        deadline = asyncio.get_running_loop().time() + 30
        every = set(range(1, posts + 1))
        while any(not every <= a.keys() for a in arrivals) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        holders = workers_holding(redis_url, tokens)
        connected = [client.connected for client in clients]
        for client in clients:
            await client.disconnect()
        return arrivals, holders, tokens, connected

    arrivals, holders, tokens, connected = asyncio.run(scenario())
    assert len(set(holders.values())) == WORKERS
    missing = {n: sorted(set(range(1, posts + 1)) - set(a)) for n, a in enumerate(arrivals)}
    if any(missing.values()):
        log = workers_app.log_path.read_text(errors="replace").splitlines()
        said = [line for line in log if any(tokens[n][:8] in line for n, seqs in missing.items() if seqs)]
        trouble = [line for line in log if '"level": "WARNING"' in line or '"level": "ERROR"' in line]
        report = {
            f"tab {n} on {holders.get(tokens[n], 'no worker')[:8]} (open: {connected[n]})": seqs
            for n, seqs in missing.items()
            if seqs
        }
        raise AssertionError(f"{report}\nabout them:\n" + "\n".join(said[-40:] + trouble[-20:]))


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
            status = post(workers_app.url, bot_token, n).status_code
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
                answer = post(workers_app.url, bot_token, n)
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
