"""Session-wide real servers (DynamoDB Local, localstripe, the app, chromium) and per-test databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from projectalgo.db import make_engine
from projectalgo.migrations import upgrade_to_head
from tests.support import servers

TEST_SECRET_KEY_BASE = "test-secret-key-base-0123456789abcdef0123456789abcdef"
# Test-mode Stripe keys for localstripe (it accepts any sk_/pk_ key).
TEST_STRIPE_SECRET_KEY = "sk_test_projectalgo_localstripe"
TEST_STRIPE_PUBLISHABLE_KEY = "pk_test_projectalgo_localstripe"
TEST_STRIPE_WEBHOOK_SECRET = "whsec_test_projectalgo_localstripe"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


def _run(server: servers.Server) -> Iterator[servers.Server]:
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dynamodb_local(server_logs: Path) -> Iterator[servers.Server]:
    yield from _run(servers.start_dynamodb_local(server_logs))


@pytest.fixture(scope="session")
def localstripe(server_logs: Path) -> Iterator[servers.Server]:
    yield from _run(servers.start_localstripe(server_logs))


@pytest.fixture(scope="session")
def app_env(tmp_path_factory: pytest.TempPathFactory, localstripe: servers.Server) -> dict[str, str]:
    """The environment of the app under test: its own SQLite file and port, test-speed bcrypt, localstripe."""
    port = servers.free_port()
    database_url = f"sqlite:///{tmp_path_factory.mktemp('app-db') / 'app.db'}"
    return {
        "APP_ENV": "test",
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE,
        "BCRYPT_ROUNDS": "4",
        "STRIPE_SECRET_KEY": TEST_STRIPE_SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": TEST_STRIPE_PUBLISHABLE_KEY,
        "STRIPE_API_BASE": localstripe.url,
        "STRIPE_JS_URL": f"{localstripe.url}/js.stripe.com/v3/",
        "STRIPE_WEBHOOK_SECRET": TEST_STRIPE_WEBHOOK_SECRET,
    }


@pytest.fixture(scope="session")
def app_server(app_env: dict[str, str], server_logs: Path, localstripe: servers.Server) -> Iterator[servers.Server]:
    upgrade_to_head(app_env["DATABASE_URL"])
    server = servers.start_app(server_logs, app_env)
    try:
        # localstripe signs and delivers its events (about 1 s late) to the app, as Stripe would.
        servers.register_stripe_webhook(localstripe, f"{server.url}/api/v1/stripe/webhook", TEST_STRIPE_WEBHOOK_SECRET)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_engine(app_server: servers.Server, app_env: dict[str, str]) -> Engine:
    """A connection to the running app's own database, for arranging and checking state."""
    return make_engine(app_env["DATABASE_URL"])


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise servers.ServerStartError(f"chromium: {CHROMIUM} is missing (run scripts/setup test)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated SQLite database for one test."""
    url = f"sqlite:///{tmp_path / 'test.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
