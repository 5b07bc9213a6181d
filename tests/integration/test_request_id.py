"""The request id: on the API's answers and on every log line written while a call is served.

In this process, on the API inside the HTTP policy as the app serves it (http_policy.wrap, Starlette's TestClient),
with the app's JSON log lines captured as the formatter writes them.
"""

import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from projectalgo.api import build_api, http_policy
from projectalgo.api.request_id import MAX_LENGTH
from projectalgo.logs import JsonFormatter
from projectalgo.runtime import services
from tests.conftest import TEST_STRIPE_WEBHOOK_SECRET

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def webhook_on(monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", TEST_STRIPE_WEBHOOK_SECRET)
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)


@pytest.fixture
def logged() -> Iterator[Callable[[], list[dict]]]:
    """The app's log lines (JSON, every level) written so far in the test, read back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    app_logger = logging.getLogger("projectalgo")
    level = app_logger.level
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    app_logger.removeHandler(handler)
    app_logger.setLevel(level)


def _boom() -> None:
    raise RuntimeError("an unexpected failure")


@pytest.fixture
def client(webhook_on, app_services) -> Iterator[TestClient]:
    api = build_api()
    # A route that fails unexpectedly, ahead of the unknown-route catch-all.
    api.router.routes.insert(0, APIRoute("/api/v1/boom", _boom, methods=["GET"]))
    with TestClient(http_policy.wrap(api, services().settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_an_api_answer_carries_a_new_request_id_and_so_do_the_lines_logged_meanwhile(client, logged):
    answer = client.get("/api/v1/health/live")
    request_id = answer.headers["x-request-id"]
    assert NEW_ID.fullmatch(request_id)
    [line] = logged()
    assert (line["event"], line["request_id"]) == ("api.request", request_id)
    assert re.fullmatch(r"api\.request method=GET path=/api/v1/health/live status=200 ms=\d+", line["message"])
    assert client.get("/api/v1/health/live").headers["x-request-id"] != request_id  # one per call


def test_a_sane_incoming_request_id_is_kept(client, logged):
    for sane in ("abc-123", "Root:1-67890abc.def_0", "x" * MAX_LENGTH):
        assert client.get("/api/v1/health/live", headers={"X-Request-ID": sane}).headers["x-request-id"] == sane
    assert [line["request_id"] for line in logged()] == ["abc-123", "Root:1-67890abc.def_0", "x" * MAX_LENGTH]


@pytest.mark.parametrize(
    "insane", ["x" * (MAX_LENGTH + 1), "has space", 'quote"d', "semi;colon", "tab\there", "{json}", "ünï"]
)
def test_an_insane_incoming_request_id_is_replaced(client, insane):
    answer = client.get("/api/v1/health/live", headers={"X-Request-ID": insane.encode("utf-8")})
    assert NEW_ID.fullmatch(answer.headers["x-request-id"])
    assert answer.headers.get_list("x-request-id") == [answer.headers["x-request-id"]]


def test_the_apps_own_events_carry_the_request_id(client, logged):
    answer = client.post("/api/v1/stripe/webhook", content=b"{}", headers={"Stripe-Signature": "t=1,v1=forged"})
    assert answer.status_code == 400
    refused = [line for line in logged() if line.get("event") == "stripe.webhook_refused"]
    assert [line["request_id"] for line in refused] == [answer.headers["x-request-id"]]


def test_an_unexpected_errors_500_and_log_line_carry_the_request_id(client, logged):
    answer = client.get("/api/v1/boom", headers={"X-Request-ID": "boom-1"})
    assert (answer.status_code, answer.headers["x-request-id"]) == (500, "boom-1")
    [error] = [line for line in logged() if line.get("event") == "api.unhandled_error"]
    assert error["request_id"] == "boom-1"
    assert "RuntimeError: an unexpected failure" in error["exception"]
    assert "an unexpected failure" not in answer.text  # the answer says nothing of it


def test_only_api_paths_get_a_request_id(client):
    answer = client.get("/not-the-api")
    assert "x-request-id" not in answer.headers
