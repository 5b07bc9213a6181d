import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from projectalgo.integrations.stripe import StripeGateway
from projectalgo.runtime import STRIPE_THREADS, in_stripe_thread, services
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


def test_with_stripe_keys_the_gateway_is_built_once(environment):
    environment.setenv("STRIPE_SECRET_KEY", TEST_STRIPE_SECRET_KEY)
    environment.setenv("STRIPE_PUBLISHABLE_KEY", TEST_STRIPE_PUBLISHABLE_KEY)
    assert isinstance(services().payments, StripeGateway)
    assert services().payments is services().payments


def test_stripe_work_runs_a_few_at_a_time_on_threads_that_database_work_does_not_need():
    release, started = threading.Event(), []

    def slow_stripe_call() -> None:
        started.append(threading.current_thread().name)
        release.wait(10)

    async def scenario() -> tuple[int, str]:
        waiting = [asyncio.ensure_future(in_stripe_thread(slow_stripe_call)) for _ in range(3 * STRIPE_THREADS)]
        await asyncio.sleep(0.3)
        database_work = await asyncio.wait_for(asyncio.to_thread(lambda: "done"), timeout=2)
        running = len(started)
        release.set()
        await asyncio.gather(*waiting)
        return running, database_work

    with ThreadPoolExecutor(max_workers=1) as thread:  # its own event loop: Playwright may hold this thread's
        running, database_work = thread.submit(asyncio.run, scenario()).result()
    assert (running, database_work) == (STRIPE_THREADS, "done")
    assert len(started) == 3 * STRIPE_THREADS and all(name.startswith("stripe") for name in started)
