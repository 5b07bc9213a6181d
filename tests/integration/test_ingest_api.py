"""POST /api/v1/strategy/ through real HTTP to the running app, on the embedded store and on DynamoDB."""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import pytest
import requests
from sqlalchemy import Engine, select

from projectalgo import strategies
from projectalgo.db import session_scope
from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy, StrategyToken
from projectalgo.settings import load_settings
from projectalgo.snapshots import SnapshotStore
from tests.factories import actor_of, make_member, make_strategy

BODY = {
    "last_price": 9321.5,
    "margin_balance": 10234.12,
    "wallet_balance": 10011.7,
    "realised_pnl": 120.5,
    "positions": 150,
    "symbol": "XBTUSD",
    "average_entry_price": 9300.25,
}


@dataclass
class Target:
    url: str
    engine: Engine
    store: SnapshotStore

    def post(self, body=None, token=None, path="/api/v1/strategy/", **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(
            f"{self.url}{path}", json=body, headers=headers, timeout=10, allow_redirects=False, **kwargs
        )

    def new_strategy(self, name="Bot"):
        member = make_member(self.engine)
        strategy_id, token = make_strategy(self.engine, member, name=name)
        return member, strategy_id, token

    def count(self, strategy_id):
        return len(self.store.between(strategy_id, 0, 2**53).items)


@pytest.fixture(params=["sql", "dynamodb"])
def target(request):
    if request.param == "sql":
        server, engine = request.getfixturevalue("app_server"), request.getfixturevalue("app_engine")
        return Target(server.url, engine, SqlSnapshotStore(engine))
    server, engine = request.getfixturevalue("dynamo_app_server"), request.getfixturevalue("dynamo_app_engine")
    return Target(server.url, engine, DynamoSnapshotStore(load_settings(request.getfixturevalue("dynamo_app_env"))))


def test_a_snapshot_is_stored_exactly_and_answered_201(target):
    _, strategy_id, token = target.new_strategy()
    response = target.post({"data": BODY | {"margin_balance": "1023.4000000000000000000000000000000001"}}, token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] is True and body["strategy_id"] == strategy_id
    stored = target.store.latest(strategy_id)
    assert stored.margin_balance == Decimal("1023.4000000000000000000000000000000001")
    assert (stored.last_price, stored.positions, stored.symbol) == (Decimal("9321.5"), 150, "XBTUSD")
    assert body["created_at"] == stored.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with session_scope(target.engine) as session:
        assert session.get(Strategy, strategy_id).last_snapshot_at == stored.created_at
        used = session.scalars(select(StrategyToken).where(StrategyToken.strategy_id == strategy_id)).one()
        assert used.last_used_at is not None


def test_the_largest_numbers_and_long_trailing_zeros_are_stored_in_every_store(target):
    _, strategy_id, token = target.new_strategy()
    body = BODY | {"positions": "9" * 38, "realised_pnl": "-12.5" + "0" * 60, "last_price": "0E-200"}
    response = target.post({"data": body}, token)
    assert response.status_code == 201, response.text
    stored = target.store.latest(strategy_id)
    assert (stored.positions, stored.realised_pnl, stored.last_price) == (Decimal("9" * 38), Decimal("-12.5"), 0)


def test_the_original_contract_token_in_the_body_and_no_trailing_slash(target):
    _, strategy_id, token = target.new_strategy()
    assert target.post({"data": BODY | {"strategy_access_token": token}}).status_code == 201
    assert target.post({"data": BODY}, token, path="/api/v1/strategy").status_code == 201
    assert target.count(strategy_id) == 2


def test_a_bot_may_send_its_own_time(target):
    _, strategy_id, token = target.new_strategy()
    assert target.post({"data": BODY | {"created_at": "2026-01-02T03:04:05.678Z"}}, token).status_code == 201
    assert target.post({"data": BODY | {"created_at": 1767323045}}, token).status_code == 201
    times = [s.created_at.isoformat() for s in target.store.between(strategy_id, 0, 2**53).items]
    assert times == ["2026-01-02T03:04:05+00:00", "2026-01-02T03:04:05.678000+00:00"]


def test_an_iso_created_at_is_stored_to_the_exact_millisecond(target):
    _, strategy_id, token = target.new_strategy()
    # 1087775656.001 * 1000 is 1087775656000.9999 in floating point: a float timestamp stored it 1 ms early.
    response = target.post({"data": BODY | {"created_at": "2004-06-20T23:54:16.001Z"}}, token)
    assert response.status_code == 201 and response.json()["created_at"] == "2004-06-20T23:54:16.001Z"
    assert target.store.latest(strategy_id).at_ms == 1_087_775_656_001


def test_a_posted_snapshot_lands_in_its_hourly_and_daily_rollups(target):
    _, strategy_id, token = target.new_strategy()
    posts = [("2026-01-02T03:04:05.678Z", 7), ("2026-01-02T03:50:00Z", 5), ("2026-01-02T03:10:00Z", 9)]  # last: late
    for created_at, wallet in posts:
        response = target.post({"data": BODY | {"created_at": created_at, "wallet_balance": wallet}}, token)
        assert response.status_code == 201
    newest = target.store.latest(strategy_id)
    for resolution in ("hour", "day"):
        [bucket] = target.store.rollups(strategy_id, resolution, 0, 2**53)
        assert bucket.last == newest
        assert (bucket.wallet_min, bucket.wallet_max) == (5, 9)


def test_unknown_revoked_and_missing_tokens_get_401(target):
    member, strategy_id, token = target.new_strategy()
    missing = target.post({"data": BODY})
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_token")
    unknown = target.post({"data": BODY}, "pa_live_" + "x" * 43)
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_token")
    with session_scope(target.engine) as session:
        token_id = session.scalar(select(StrategyToken.id).where(StrategyToken.strategy_id == strategy_id))
        strategies.revoke_token(session, actor_of(member), token_id)
    assert target.post({"data": BODY}, token).status_code == 401
    assert target.count(strategy_id) == 0


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({k: v for k, v in BODY.items() if k != "wallet_balance"}, ["wallet_balance: is missing"]),
        (BODY | {"last_price": "abc"}, ["last_price: must be a number, got 'abc'"]),
        (
            BODY | {"positions": "NaN", "realised_pnl": "-Infinity"},
            [
                "realised_pnl: must be a finite number, not NaN or Infinity",
                "positions: must be a finite number, not NaN or Infinity",
            ],
        ),
        (BODY | {"last_price": "1" * 39}, ["last_price: has more than 38 significant digits"]),
        (BODY | {"created_at": 86400}, ["created_at: is before the year 2000 (seconds and milliseconds mixed up?)"]),
        (
            BODY | {"last_price": " 12"},
            ["last_price: must be a number written like 12.5, -0.001 or 1.25e-7, got ' 12'"],
        ),
        (BODY | {"created_at": "soon"}, ["created_at: must be ISO 8601 or epoch seconds/milliseconds"]),
        (BODY | {"symbol": "X" * 33}, ["symbol: must be at most 32 characters"]),
        (BODY | {"symbol": "X\u0000"}, ["symbol: must not contain NUL characters"]),  # PostgreSQL's text cannot
    ],
)
def test_wrong_fields_get_422_naming_each_and_store_nothing(target, data, named):
    _, strategy_id, token = target.new_strategy()
    response = target.post({"data": data}, token)
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_snapshot", "detail": named}
    assert target.count(strategy_id) == 0


def test_a_created_at_ahead_of_the_servers_clock_gets_409_and_stores_nothing(target):
    _, strategy_id, token = target.new_strategy()
    response = target.post({"data": BODY | {"created_at": "2999-01-01T00:00:00Z"}}, token)
    assert response.status_code == 409
    assert response.json() == {
        "error": "created_at_in_future",
        "detail": ["created_at: is more than 5 minutes in the future"],
    }
    assert target.count(strategy_id) == 0


def test_a_null_created_at_means_the_servers_time(target):
    _, strategy_id, token = target.new_strategy()
    response = target.post({"data": BODY | {"created_at": None, "strategy_access_token": None}}, token)
    assert response.status_code == 201, response.text
    assert (
        target.store.latest(strategy_id).created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        == response.json()["created_at"]
    )


def test_bodies_that_are_not_json_objects_too_large_or_not_json_typed(target):
    _, strategy_id, token = target.new_strategy()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    not_json = requests.post(f"{target.url}/api/v1/strategy/", data=b"{oops", headers=auth, timeout=10)
    assert (not_json.status_code, not_json.json()["error"]) == (400, "bad_request")
    array = requests.post(f"{target.url}/api/v1/strategy/", data=b"[1]", headers=auth, timeout=10)
    assert array.status_code == 400
    huge = target.post({"data": BODY | {"padding": "x" * 17_000}}, token)
    assert (huge.status_code, huge.json()["error"]) == (413, "too_large")
    form = requests.post(
        f"{target.url}/api/v1/strategy/", data={"a": "b"}, timeout=10, headers={"Authorization": f"Bearer {token}"}
    )
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    assert target.count(strategy_id) == 0


def test_half_a_utf16_pair_is_a_bad_request_not_a_failed_batch(target):
    _, strategy_id, token = target.new_strategy()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for data in (BODY | {"symbol": "\udc00"}, BODY | {"strategy_access_token": "pa_live_\ud800"}):
        raw = json.dumps({"data": data}).encode()  # the \\udc00 escape: text no UTF-8 can carry
        response = requests.post(f"{target.url}/api/v1/strategy/", data=raw, headers=auth, timeout=10)
        assert (response.status_code, response.json()["error"]) == (400, "bad_request")
    assert target.count(strategy_id) == 0
    assert target.post({"data": BODY}, token).status_code == 201


def test_one_token_over_its_rate_gets_429_with_retry_after(target):
    _, strategy_id, token = target.new_strategy()

    def post(_n):
        return target.post({"data": BODY}, token)

    # All at once: posted one after another, a slow store would let the bucket refill (10 a second) in time.
    with ThreadPoolExecutor(max_workers=60) as pool:
        answers = list(pool.map(post, range(120)))
    limited = [a for a in answers if a.status_code == 429]
    assert limited, "120 posts at once must exceed a burst of 50"
    assert all(int(a.headers["Retry-After"]) >= 1 and a.json()["error"] == "rate_limited" for a in limited)
    assert {a.status_code for a in answers} == {201, 429}
    assert target.count(strategy_id) == sum(a.status_code == 201 for a in answers)
    _, _, other_token = target.new_strategy(name="Other")
    assert target.post({"data": BODY}, other_token).status_code == 201  # limits are per token


def test_cors_preflight_allows_bots_in_browsers(app_server):
    response = requests.options(
        f"{app_server.url}/api/v1/strategy/",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )
    assert response.status_code == 200
    # Any origin, never with credentials: a bot authenticates with its token, not a cookie.
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")}
    assert allowed >= {"authorization", "content-type"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/strategy/", "POST"),
        ("PUT", "/api/v1/strategy", "POST"),
        ("DELETE", "/api/v1/health", "GET"),
        ("TRACE", "/api/v1/stripe/webhook", "POST"),
        ("POST", "/api/v1/strategies/1/snapshots.csv", "GET"),
    ],
)
def test_a_wrong_method_on_an_api_route_answers_405_with_allow_in_the_error_shape(app_server, method, path, allow):
    response = requests.request(method, f"{app_server.url}{path}", timeout=10)
    assert (response.status_code, response.headers["Allow"]) == (405, allow)
    assert response.json()["error"] == "method_not_allowed" and response.json()["detail"]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_api_path_still_answers_404_in_the_error_shape(app_server, method):
    response = requests.request(method, f"{app_server.url}/api/v1/nothing-here", timeout=10)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
