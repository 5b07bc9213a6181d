"""Session-wide real servers (DynamoDB Local, localstripe, the app, chromium) and per-test databases."""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from projectalgo.db import make_engine
from projectalgo.migrations import upgrade_to_head
from tests.support import log_secrets, servers
from tests.support.timeouts import ServerStartsUntimed

# A test that hangs fails after this many seconds instead of holding up the run; a browser test gets more.
E2E_TIMEOUT_SECONDS = 300
TEST_SECRET_KEY_BASE = "test-secret-key-base-0123456789abcdef0123456789abcdef"
# Test-mode Stripe keys for localstripe (it accepts any sk_/pk_ key).
TEST_STRIPE_SECRET_KEY = "sk_test_projectalgo_localstripe"
TEST_STRIPE_PUBLISHABLE_KEY = "pk_test_projectalgo_localstripe"
TEST_STRIPE_WEBHOOK_SECRET = "whsec_test_projectalgo_localstripe"
# The test SMTP server's login (tests/support/smtp_server.py), and the folder under server_logs it writes mail to.
TEST_SMTP_USER = "alerts"
TEST_SMTP_PASSWORD = "smtp-test-password-0123456789"
SMTP_MAIL_DIR = "smtp-mail"
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
def smtp_server(server_logs: Path) -> Iterator[servers.Server]:
    """A real SMTP server for the session (aiosmtpd, a separate process): its URL is smtp://127.0.0.1:<port>; what it
    accepts is read with tests.support.smtp_server.received(SMTP_MAIL_DIR under server_logs)."""
    mail_dir = server_logs / SMTP_MAIL_DIR
    yield from _run(servers.start_smtp(server_logs, mail_dir, TEST_SMTP_USER, TEST_SMTP_PASSWORD))


@pytest.fixture(scope="session")
def redis_server(server_logs: Path) -> Iterator[servers.Server]:
    """A throw-away Redis for the session: its URL is `redis_server.url` (redis://127.0.0.1:<port>/0)."""
    yield from _run(servers.start_redis(server_logs))


@pytest.fixture
def redis_url(redis_server: servers.Server) -> Iterator[str]:
    """The session's Redis, emptied (FLUSHALL) before this test: its URL."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    yield redis_server.url


def _app_env(tmp_path_factory: pytest.TempPathFactory, name: str) -> dict[str, str]:
    """An app under test's environment: its own SQLite file and port, test-speed bcrypt."""
    port = servers.free_port()
    return {
        "APP_ENV": "test",
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp(name) / 'app.db'}",
        "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE,
        "BCRYPT_ROUNDS": "4",
        # Production's log format, and every event of the app's: tests/integration/test_log_secrets.py reads them.
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }


def _serves_pages(request: pytest.FixtureRequest) -> bool:
    """Whether the apps under test build and serve their pages: only for a run with browser tests (marked e2e).
    Without, each runs `--backend-only` (its API and websocket) and no front end is built."""
    return any(item.get_closest_marker("e2e") for item in request.session.items)


def _run_app(server: servers.Server) -> Iterator[servers.Server]:
    """_run for an app under test; once it has stopped, its whole log (every test's flows, the browsers' sign-ins and
    payments too) is searched for the tests' secrets, which must not be there (test_log_secrets.py takes the app
    through the flows that carry them)."""
    yield from _run(server)
    if found := log_secrets.leaks(server.log_path.read_text(errors="replace"), log_secrets.shared_secrets()):
        raise AssertionError(f"{server.name}'s log ({server.log_path}) holds: {', '.join(found)}")


def _start_app(env: dict[str, str], server_logs: Path, name: str, pages: bool) -> Iterator[servers.Server]:
    upgrade_to_head(env["DATABASE_URL"])
    yield from _run_app(servers.start_app(server_logs, env, name, pages=pages))


@pytest.fixture(scope="session")
def app_env(tmp_path_factory: pytest.TempPathFactory, localstripe: servers.Server) -> dict[str, str]:
    """The main app under test: embedded defaults (SQLite, the SQL snapshot store), payments on localstripe."""
    return _app_env(tmp_path_factory, "app") | {
        "STRIPE_SECRET_KEY": TEST_STRIPE_SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": TEST_STRIPE_PUBLISHABLE_KEY,
        "STRIPE_API_BASE": localstripe.url,
        "STRIPE_JS_URL": f"{localstripe.url}/js.stripe.com/v3/",
        "STRIPE_WEBHOOK_SECRET": TEST_STRIPE_WEBHOOK_SECRET,
    }


@pytest.fixture(scope="session")
def app_server(
    request: pytest.FixtureRequest, app_env: dict[str, str], server_logs: Path, localstripe: servers.Server
) -> Iterator[servers.Server]:
    """The main app as `reflex run --env prod` runs it; it builds the run's one front end, when one is needed."""
    for server in _start_app(app_env, server_logs, "app", _serves_pages(request)):
        # localstripe signs and delivers its events (about 1 s late) to the app, as Stripe would.
        servers.register_stripe_webhook(localstripe, f"{server.url}/api/v1/stripe/webhook", TEST_STRIPE_WEBHOOK_SECRET)
        yield server


@pytest.fixture(scope="session")
def app_engine(app_server: servers.Server, app_env: dict[str, str]) -> Engine:
    """A connection to the running app's own database, for arranging and checking state."""
    return make_engine(app_env["DATABASE_URL"])


@pytest.fixture(scope="session")
def dynamo_backing(tmp_path_factory: pytest.TempPathFactory, server_logs: Path) -> Iterator[servers.Server]:
    """DynamoDB Local on disk for the DynamoDB app, so a test can stop and restart it without losing data."""
    db_path = tmp_path_factory.mktemp("dynamodb-data")
    yield from _run(servers.start_dynamodb_local(server_logs, db_path=db_path, name="dynamodb-backing"))


@pytest.fixture(scope="session")
def dynamo_app_env(tmp_path_factory: pytest.TempPathFactory, dynamo_backing: servers.Server) -> dict[str, str]:
    """A second app under test, storing snapshots in DynamoDB (Local)."""
    env = _app_env(tmp_path_factory, "dynamo-app") | servers.dynamodb_env(dynamo_backing.url, "snapshots")
    servers.create_tables(env)
    return env


@pytest.fixture(scope="session")
def dynamo_app_server(
    request: pytest.FixtureRequest, dynamo_app_env: dict[str, str], server_logs: Path
) -> Iterator[servers.Server]:
    """The DynamoDB app; with pages, those app_server built (one front-end build per run, not one per app)."""
    if not _serves_pages(request):
        yield from _start_app(dynamo_app_env, server_logs, "dynamo-app", pages=False)
        return
    built = request.getfixturevalue("app_server")
    upgrade_to_head(dynamo_app_env["DATABASE_URL"])
    yield from _run_app(servers.start_app_on_built_pages(server_logs, dynamo_app_env, built, "dynamo-app"))


@pytest.fixture(scope="session")
def dynamo_app_engine(dynamo_app_server: servers.Server, dynamo_app_env: dict[str, str]) -> Engine:
    return make_engine(dynamo_app_env["DATABASE_URL"])


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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database that each test's own is copied from: copying is some 100 times faster than
    running the migrations again for every test."""
    path = tmp_path_factory.mktemp("migrated") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Engine]:
    """A fresh, migrated SQLite database for one test."""
    path = tmp_path / "test.db"
    with closing(sqlite3.connect(migrated_sqlite)) as template, closing(sqlite3.connect(path)) as copy:
        template.backup(copy)  # a consistent copy, whatever the template's journal holds
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres(server_logs: Path) -> Iterator[servers.Server]:
    """A PostgreSQL server for the behaviour SQLite cannot show (row locks between concurrent transactions)."""
    # Not under pytest's temp folder: as root, PostgreSQL runs as another user, who cannot enter that one.
    with tempfile.TemporaryDirectory(prefix="projectalgo-pg-") as data_dir:
        yield from _run(servers.start_postgres(server_logs, Path(data_dir)))


@pytest.fixture(scope="session")
def pg_template(postgres: servers.Server) -> str:
    """A migrated PostgreSQL database that each test's own is created from (CREATE DATABASE ... TEMPLATE)."""
    name = "migrated_template"
    admin = create_engine(f"{postgres.url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    upgrade_to_head(f"{postgres.url}/{name}")  # disposes of its connections: a template must have none
    return name


@pytest.fixture
def pg_engine(postgres: servers.Server, pg_template: str) -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"test_{uuid.uuid4().hex}"
    admin = create_engine(f"{postgres.url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    engine = make_engine(f"{postgres.url}/{name}")
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}"')
    admin.dispose()


WORKERS = 3


@pytest.fixture
def workers_env(pg_engine: Engine, redis_url: str, dynamodb_local: servers.Server) -> dict[str, str]:
    """Production's shape for one test: WORKERS workers on this test's PostgreSQL database, the session's Redis
    (emptied) and a DynamoDB Local table of the test's own."""
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
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
        }
        | servers.dynamodb_env(dynamodb_local.url, f"snapshots-{uuid.uuid4().hex[:8]}")
    )
    servers.create_tables(env)
    return env


@pytest.fixture
def start_workers(
    request: pytest.FixtureRequest, workers_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., servers.Server]]:
    """Starts the app with WORKERS workers, with these settings changed; `pages=True` serves the run's one front
    end (app_server builds it) for browser tests."""
    started: list[servers.Server] = []

    def start(pages: bool = False, **settings: str) -> servers.Server:
        workers_env.update(settings)
        if pages:
            built = request.getfixturevalue("app_server")
            server = servers.start_app_on_built_pages(tmp_path, workers_env, built, "workers")
        else:
            server = servers.start_app(tmp_path, workers_env, "workers", pages=False)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        if found := log_secrets.leaks(server.log_path.read_text(errors="replace"), log_secrets.shared_secrets()):
            raise AssertionError(f"{server.name}'s log ({server.log_path}) holds: {', '.join(found)}")


@pytest.fixture
def app_services(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's services (as the Reflex states use them) on this test's fresh database."""
    from projectalgo.live import Watchers
    from projectalgo.live_push import live_push
    from projectalgo.runtime import services

    monkeypatch.setattr(live_push, "watchers", Watchers())  # no tab registered by an earlier test
    monkeypatch.setenv("DATABASE_URL", str(engine.url))
    monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:3999")
    services.cache_clear()
    yield services().engine
    services().engine.dispose()
    services.cache_clear()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ServerStartsUntimed(), "server-starts-untimed")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first: the browser tests run last, with a longer timeout."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_SECONDS))
