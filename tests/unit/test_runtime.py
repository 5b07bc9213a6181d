import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from projectalgo.ingest_stats import IngestStats, RedisIngestStats
from projectalgo.integrations.stripe import StripeGateway
from projectalgo.ratelimit import RateLimiter, RedisRateLimiter
from projectalgo.runtime import STRIPE_THREADS, build_limiter_and_stats, in_stripe_thread, services
from projectalgo.settings import load_settings
from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_PUBLISHABLE_KEY, TEST_STRIPE_SECRET_KEY


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """services() built from a controlled environment, and forgotten afterwards."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
    services.cache_clear()
    yield monkeypatch
    services.cache_clear()


def test_without_a_stripe_secret_key_there_is_no_payment_gateway(environment):
    assert services().payments is None


def test_with_stripe_keys_there_is_a_payment_gateway(environment):
    environment.setenv("STRIPE_SECRET_KEY", TEST_STRIPE_SECRET_KEY)
    environment.setenv("STRIPE_PUBLISHABLE_KEY", TEST_STRIPE_PUBLISHABLE_KEY)
    assert isinstance(services().payments, StripeGateway)


def test_one_worker_keeps_its_rate_limits_and_figures_in_its_own_memory(environment):
    environment.delenv("REFLEX_REDIS_URL", raising=False)
    limiter, stats, webhooks = build_limiter_and_stats(services().settings)
    assert isinstance(limiter, RateLimiter) and isinstance(stats, IngestStats) and isinstance(webhooks, IngestStats)
    assert isinstance(services().ingest_stats, IngestStats)


def test_with_redis_the_workers_share_rate_limits_and_figures_through_it():
    settings = load_settings({"REFLEX_REDIS_URL": "redis://127.0.0.1:9/0", "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE})
    limiter, stats, webhooks = build_limiter_and_stats(settings)  # Redis is not reached until they are used
    assert isinstance(limiter, RedisRateLimiter) and isinstance(stats, RedisIngestStats)
    assert isinstance(webhooks, RedisIngestStats) and webhooks._prefix != stats._prefix


def test_stripe_work_runs_a_few_at_a_time_on_threads_that_database_work_does_not_need():
    """Each call is held until released, one at a time: the call after the first STRIPE_THREADS starts only once
    one has finished (decided by what it sees at its start, not by how long the test waited for it)."""
    calls = 3 * STRIPE_THREADS
    releases = [threading.Event() for _ in range(calls)]
    lock = threading.Lock()
    started: list[tuple[int, str]] = []  # (calls finished when this one started, its thread's name)
    finished = 0

    def stripe_call(n: int) -> None:
        nonlocal finished
        with lock:
            started.append((finished, threading.current_thread().name))
        releases[n].wait(60)
        with lock:
            finished += 1

    async def until(condition: Callable[[], bool]) -> None:
        deadline = asyncio.get_running_loop().time() + 30
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.01)

    async def scenario() -> str:
        waiting = [asyncio.ensure_future(in_stripe_thread(partial(stripe_call, n))) for n in range(calls)]
        try:
            await until(lambda: len(started) >= STRIPE_THREADS)
            # Every Stripe thread is held: database work still runs at once, on threads of its own.
            database_work = await asyncio.wait_for(asyncio.to_thread(lambda: "done"), timeout=30)
            releases[0].set()
            await until(lambda: len(started) > STRIPE_THREADS)
        finally:
            for release in releases:
                release.set()
            await asyncio.gather(*waiting)
        return database_work

    with ThreadPoolExecutor(max_workers=1) as thread:  # its own event loop: Playwright may hold this thread's
        database_work = thread.submit(asyncio.run, scenario()).result()
    assert database_work == "done"
    assert len(started) == calls and all(name.startswith("stripe") for _, name in started)
    # How many ran at once when each started: its place in the order, less those finished by then.
    at_once = [place + 1 - finished_before for place, (finished_before, _) in enumerate(started)]
    assert max(at_once) == at_once[STRIPE_THREADS - 1] == STRIPE_THREADS
    assert started[STRIPE_THREADS][0] == 1  # the next call waited for the one released
