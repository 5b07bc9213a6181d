"""Health: /api/v1/health/live, /api/v1/health/ready (and /api/v1/health, the same), with real parts up and down.

Outages are real: DynamoDB's endpoint on a closed port (refused at once) or on a server that never answers,
Redis on a free port where nothing listens.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
import requests

from projectalgo.api import build_api, health
from tests.support import servers
from tests.support.network import closed_port_url, silent_server

READY_PATHS = ("/api/v1/health/ready", "/api/v1/health")


def _get(path: str) -> httpx.Response:
    """GET from the API built in this process, on whatever services() holds now."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_api(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:3999") as client:
            return await client.get(path)

    with ThreadPoolExecutor(max_workers=1) as thread:  # its own event loop
        return thread.submit(anyio.run, get).result()


def _ready() -> tuple[int, dict]:
    answers = [_get(path) for path in READY_PATHS]
    assert answers[0].json() == answers[1].json() and answers[0].status_code == answers[1].status_code
    return answers[0].status_code, answers[0].json()


@pytest.fixture
def no_redis(monkeypatch):
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)


@pytest.fixture
def redis_up(monkeypatch, redis_url):
    monkeypatch.setenv("REFLEX_REDIS_URL", redis_url)


@pytest.fixture
def redis_down(monkeypatch):
    monkeypatch.setenv("REFLEX_REDIS_URL", f"redis://127.0.0.1:{servers.free_port()}/0")  # nothing listens


def _dynamodb_at(monkeypatch, url: str) -> None:
    monkeypatch.setenv("DYNAMODB_TABLE", "snapshots")
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_SECRET_KEY", "test")


@pytest.fixture
def dynamodb_refusing(monkeypatch, no_redis):
    _dynamodb_at(monkeypatch, closed_port_url())


@pytest.fixture
def dynamodb_silent(monkeypatch, no_redis):
    with silent_server() as silent:
        _dynamodb_at(monkeypatch, silent.url)
        yield silent


def test_live_answers_ok_and_touches_nothing(no_redis, app_services, monkeypatch):
    def touched() -> None:
        raise AssertionError("live touched a dependency")

    monkeypatch.setattr(health, "_checks", touched)
    answer = _get("/api/v1/health/live")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_ready_is_200_with_the_database_and_the_store_up(no_redis, app_services):
    assert _ready() == (200, {"status": "ok", "checks": {"database": "ok", "snapshot_store": "ok"}})


def test_ready_checks_redis_when_it_is_configured(redis_up, app_services):
    assert _ready() == (200, {"status": "ok", "checks": {"database": "ok", "snapshot_store": "ok", "redis": "ok"}})


def test_ready_is_503_naming_redis_when_redis_refuses(redis_down, app_services, caplog):
    caplog.set_level(logging.WARNING, logger="projectalgo.health")
    status, body = _ready()
    assert (status, body) == (
        503,
        {"status": "down", "checks": {"database": "ok", "snapshot_store": "ok", "redis": "error"}},
    )
    # Logged by name and error type; nothing of it in the public answer.
    assert "health.check_failed check=redis error=ConnectionError" in caplog.messages


def test_ready_is_503_naming_the_snapshot_store_when_dynamodb_refuses(dynamodb_refusing, app_services, caplog):
    caplog.set_level(logging.WARNING, logger="projectalgo.health")
    assert _ready() == (503, {"status": "down", "checks": {"database": "ok", "snapshot_store": "error"}})
    assert "health.check_failed check=snapshot_store error=StoreUnavailableError" in caplog.messages
    assert _get("/api/v1/health/live").status_code == 200  # alive all the same: nothing to restart


def test_a_store_that_never_answers_is_down_after_the_checks_timeout(dynamodb_silent, app_services, caplog):
    caplog.set_level(logging.WARNING, logger="projectalgo.health")
    started = time.monotonic()
    answer = _get("/api/v1/health/ready")
    assert time.monotonic() - started < health.CHECK_TIMEOUT_SECONDS + 1.5
    assert (answer.status_code, answer.json()["checks"]) == (503, {"database": "ok", "snapshot_store": "error"})
    assert dynamodb_silent.connections >= 1  # it was asked, and never answered
    assert any(m.startswith("health.check_failed check=snapshot_store error=timeout") for m in caplog.messages)


def test_the_running_apps_answer_their_health_routes(app_server, dynamo_app_server):
    for server, store in ((app_server, "sql"), (dynamo_app_server, "dynamodb")):
        live = requests.get(f"{server.url}/api/v1/health/live", timeout=10)
        assert (live.status_code, live.json()) == (200, {"status": "ok"}), store
        for path in READY_PATHS:
            ready = requests.get(f"{server.url}{path}", timeout=10)
            # Names and ok, no version, backend or environment.
            assert (ready.status_code, ready.json()) == (
                200,
                {"status": "ok", "checks": {"database": "ok", "snapshot_store": "ok"}},
            ), (store, path)
