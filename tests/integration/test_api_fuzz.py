"""Fuzzing the three routes that take input from outside, in this process through the API's ASGI app, on a real
SQLite database with the app's services: 3,200 generated requests in all (1,600 bot posts, 800 Stripe webhook
deliveries, 800 CSV downloads; each test prints how many it sent and what came back), in about 15 seconds.

Whatever comes in: no answer is a 5xx; every accepted snapshot is stored exactly once, with the values sent;
a refused request stores nothing; a webhook event is recorded once when received and never when refused, and a
payment grants at most one membership; a CSV link downloads exactly when it is signed here, unexpired, no longer
lived than the server allows, for a live sign-in of a user who may read the strategy.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from projectalgo import billing, exports, members, snapshots
from projectalgo.api import build_api
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Membership, Payment, Strategy, StripeEvent
from projectalgo.snapshots import ALL_TIME_END_MS
from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_WEBHOOK_SECRET
from tests.factories import make_admin, make_member, make_strategy, store_one
from tests.support.webhooks import sign

INGEST_REQUESTS, WEBHOOK_REQUESTS, CSV_REQUESTS = 1600, 800, 800
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InProcessApi:
    """The API's ASGI app behind one HTTP client on one event loop of its own thread, as a server would run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        transport = httpx.ASGITransport(app=build_api(), raise_app_exceptions=False)  # an exception is a 500
        self.client = httpx.AsyncClient(transport=transport, base_url="http://localhost")
        self.sent = 0

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        self.sent += 1
        return asyncio.run_coroutine_threadsafe(self.client.request(method, url, **kwargs), self.loop).result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.client.aclose(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture
def fuzz_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before app_services builds the services: the webhook on, no payments or DynamoDB, and a rate limit the
    fuzzing does not reach (a 429 would only hide the accepting path)."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "DYNAMODB_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", TEST_STRIPE_WEBHOOK_SECRET)
    monkeypatch.setenv("INGEST_RATE_PER_SECOND", "100000")
    monkeypatch.setenv("INGEST_BURST", "1000000")


@pytest.fixture
def api(fuzz_settings, app_services) -> Iterator[InProcessApi]:
    client = InProcessApi()
    yield client
    client.close()


def _no_server_error(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    if answer.headers.get("content-type", "").startswith("application/json") and answer.status_code >= 400:
        assert set(answer.json()) == {"error", "detail"}


# --- POST /api/v1/strategy/ ------------------------------------------------------------------------------------

# Text with half UTF-16 pairs (sent as \\ud800-style escapes), NUL and other control characters too.
odd_text = st.text(st.characters(categories=["Cs", "Cc", "Lu", "Nd"]), max_size=6)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), odd_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
# Within the contract (most get a 201; a created_at ahead of the clock gets a 409) ...
good_numbers = st.one_of(
    st.just(0),
    st.floats(min_value=1e-130, max_value=1e37),
    st.floats(min_value=-1e37, max_value=-1e-130),
    st.integers(min_value=-(10**37), max_value=10**37),
    st.from_regex(snapshots.NUMBER_TEXT_PATTERN),
)
good_created_ats = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2026, 1, 1)).map(lambda when: when.isoformat()),
    st.integers(min_value=snapshots.EARLIEST_S, max_value=1_760_000_000),
    st.integers(min_value=snapshots.EARLIEST_MS, max_value=1_760_000_000_000),
    st.from_regex(snapshots.TIME_TEXT_PATTERN),
)
good_datas = st.fixed_dictionaries(
    dict.fromkeys(snapshots.NUMBER_FIELDS, good_numbers)
    | {"symbol": st.one_of(st.text(max_size=snapshots.SYMBOL_MAX_LENGTH), odd_text)},
    optional={"created_at": good_created_ats, "strategy_access_token": odd_text.map("pa_live_".__add__)},
)
# ... and anything at all.
numbers = st.one_of(
    good_numbers,
    st.floats(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(alphabet="0123456789.-+eE_ ", max_size=12),
    json_values,
)
created_ats = st.one_of(
    good_created_ats,
    st.datetimes(min_value=datetime(1990, 1, 1)).map(lambda when: when.isoformat()),
    st.integers(min_value=snapshots.EARLIEST_S - 10, max_value=2_000_000_000),
    st.integers(min_value=snapshots.EARLIEST_MS - 10, max_value=2_000_000_000_000),
    st.floats(min_value=0, max_value=3e15),
    st.from_regex(snapshots.EPOCH_TEXT_PATTERN),
    json_values,
)
datas = st.fixed_dictionaries(
    dict.fromkeys(snapshots.NUMBER_FIELDS, numbers) | {"symbol": st.one_of(st.text(max_size=40), json_values)},
    optional={"created_at": created_ats, "strategy_access_token": st.one_of(st.none(), st.text(max_size=8))},
)


def _dumped(body: object) -> bytes:
    return json.dumps(body).encode()  # NaN and Infinity literals included


bodies = st.one_of(
    good_datas.map(lambda data: _dumped({"data": data})),
    good_datas.map(lambda data: _dumped({"data": data})),
    datas.map(lambda data: _dumped({"data": data})),
    json_values.map(_dumped),
    st.fixed_dictionaries({"data": json_values}).map(_dumped),
    st.binary(max_size=64),
    st.just(_dumped({"data": {"symbol": "X" * 20_000}})),  # over 16 KB
)


def _exact_ms(created_at: str) -> int:
    """Epoch milliseconds of an answer's created_at, in integers (a float timestamp is off by one now and then)."""
    return (datetime.fromisoformat(created_at.replace("Z", "+00:00")) - EPOCH) // timedelta(milliseconds=1)


WHERE_THE_TOKEN_GOES = ("header", "header", "body", "both", "none", "unknown")
CONTENT_TYPES = ("application/json", "application/json", "application/json; charset=utf-8", "text/plain", None)


def test_fuzzed_bot_posts_store_each_accepted_snapshot_once_and_nothing_else(api, app_services):
    engine, store = app_services, SqlSnapshotStore(app_services)
    owners = [make_member(engine, name=f"Bot owner {n}") for n in range(2)]
    tokens = {make_strategy(engine, owner, name="Fuzz")[1]: owner for owner in owners}
    strategy_of = {}  # token -> strategy id, learnt from the first 201
    accepted: Counter[int] = Counter()
    outcomes: Counter[int] = Counter()

    @settings(FUZZ, max_examples=INGEST_REQUESTS)
    @given(
        body=bodies,
        token=st.sampled_from(sorted(tokens)),
        where=st.sampled_from(WHERE_THE_TOKEN_GOES),
        content_type=st.sampled_from(CONTENT_TYPES),
        path=st.sampled_from(["/api/v1/strategy/", "/api/v1/strategy"]),
    )
    def post(body: bytes, token: str, where: str, content_type: str | None, path: str) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        if where in ("header", "both"):
            headers["Authorization"] = f"Bearer {token}"
        if where == "unknown":
            headers["Authorization"] = "Bearer pa_live_" + "x" * 43
        if where in ("body", "both") and body.startswith(b'{"data": {'):
            body = body.replace(b'{"data": {', b'{"data": {"strategy_access_token": "' + token.encode() + b'", ', 1)
        answer = api.request("POST", path, content=body, headers=headers)
        _no_server_error(answer)
        outcomes[answer.status_code] += 1
        if answer.status_code != 201:
            return
        strategy_id = strategy_of.setdefault(token, answer.json()["strategy_id"])
        assert answer.json()["strategy_id"] == strategy_id
        accepted[strategy_id] += 1
        at_ms = _exact_ms(answer.json()["created_at"])
        [stored] = store.between(strategy_id, at_ms, at_ms + 1).items
        sent = json.loads(body, parse_float=Decimal, parse_int=Decimal)["data"]
        for name in snapshots.NUMBER_FIELDS:
            assert getattr(stored, name) == Decimal(str(sent[name])), name
        assert stored.symbol == sent["symbol"].strip()

    post()
    print(f"\nfuzz: {api.sent} bot posts, answers {dict(sorted(outcomes.items()))}")
    assert api.sent >= INGEST_REQUESTS
    assert outcomes[201] > 100 and len(outcomes) > 4  # both the accepting and the refusing paths were reached
    # Exactly once: each strategy holds as many snapshots as were accepted for it, so no refused post stored one.
    for token in tokens:
        strategy_id = strategy_of.get(token)
        if strategy_id is not None:
            assert len(store.between(strategy_id, 0, ALL_TIME_END_MS, limit=10_000).items) == accepted[strategy_id]


# --- POST /api/v1/stripe/webhook -------------------------------------------------------------------------------


def _billing_state(engine) -> tuple:
    with session_scope(engine) as session:
        events = session.scalar(select(func.count()).select_from(StripeEvent))
        memberships = session.scalar(select(func.count()).select_from(Membership))
        payments = tuple(session.execute(select(Payment.id, Payment.status, Payment.membership_id)).all())
    return events, memberships, payments


def test_fuzzed_webhook_deliveries_record_each_event_once_and_grant_at_most_once(api, app_services):
    engine = app_services
    intents = []
    for n in range(4):
        member = make_member(engine, name=f"Payer {n}")
        intent = billing.Intent(f"pi_{uuid.uuid4().hex}", "requires_confirmation", 49_900, "usd", str(member.id))
        with session_scope(engine) as session:
            billing.record_payment(session, user_id=member.id, intent=intent)
        intents.append(intent)
    event_ids = [f"evt_{n}" for n in range(30)]  # reused: redeliveries
    outcomes: Counter[str] = Counter()

    intent_objects = st.fixed_dictionaries(
        {
            "id": st.one_of(st.sampled_from([i.id for i in intents]), st.text(max_size=10), odd_text, json_values),
            "object": st.one_of(st.just("payment_intent"), st.text(max_size=5)),
            "amount": st.one_of(st.just(49_900), st.integers(), st.floats(), st.booleans(), json_values),
            "currency": st.one_of(st.just("usd"), st.text(max_size=4), json_values),
            "status": st.sampled_from(["succeeded", "requires_payment_method", "processing", "canceled", ""]),
        },
        optional={
            "metadata": st.one_of(
                st.sampled_from([{"user_id": i.user_id} for i in intents]),
                st.dictionaries(st.text(max_size=8), json_values, max_size=2),
                json_values,
            ),
            "last_payment_error": st.one_of(st.none(), st.just({"message": "Declined."}), json_values),
        },
    )
    events = st.fixed_dictionaries(
        {
            "id": st.one_of(st.sampled_from(event_ids), st.text(max_size=12), odd_text, json_values),
            "object": st.just("event"),
            "type": st.one_of(st.sampled_from([*billing.HANDLED_EVENTS, "customer.created"]), st.text(max_size=20)),
            "data": st.one_of(st.fixed_dictionaries({"object": intent_objects}), json_values),
        }
    )
    # Events as Stripe sends them about the payments above (each may grant), often redelivered.
    real_events = st.builds(
        lambda event_id, intent, event_type, status: {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "data": {
                "object": {
                    "id": intent.id,
                    "object": "payment_intent",
                    "amount": intent.amount,
                    "currency": intent.currency,
                    "status": status,
                    "metadata": {"user_id": intent.user_id},
                }
            },
        },
        st.sampled_from(event_ids),
        st.sampled_from(intents),
        st.sampled_from(billing.HANDLED_EVENTS),
        st.sampled_from(["succeeded", "requires_payment_method", "processing"]),
    )
    payloads = st.one_of(
        real_events.map(lambda event: json.dumps(event).encode()),
        events.map(lambda event: json.dumps(event).encode()),
        st.binary(max_size=40),
        json_values.map(lambda value: json.dumps(value).encode()),
    )

    @settings(FUZZ, max_examples=WEBHOOK_REQUESTS)
    @given(
        payload=payloads,
        signing=st.sampled_from(["valid", "valid", "valid", "wrong secret", "stale", "garbled", "missing"]),
    )
    def deliver(payload: bytes, signing: str) -> None:
        now = int(time.time())
        headers = {"Content-Type": "application/json"}
        if signing == "valid":
            headers["Stripe-Signature"] = sign(payload, TEST_STRIPE_WEBHOOK_SECRET, now)
        elif signing == "wrong secret":
            headers["Stripe-Signature"] = sign(payload, "whsec_not_ours", now)
        elif signing == "stale":
            headers["Stripe-Signature"] = sign(payload, TEST_STRIPE_WEBHOOK_SECRET, now - 400)
        elif signing == "garbled":
            headers["Stripe-Signature"] = "t=soon,v1=" + hashlib.sha256(payload).hexdigest()
        before = _billing_state(engine)
        answer = api.request("POST", "/api/v1/stripe/webhook", content=payload, headers=headers)
        _no_server_error(answer)
        after = _billing_state(engine)
        if answer.status_code != 200:
            assert answer.status_code == 400 and after == before  # refused: nothing recorded, nothing changed
            outcomes[answer.json()["error"]] += 1
            return
        assert signing == "valid"
        outcome = answer.json()["outcome"]
        outcomes[outcome] += 1
        event_id = json.loads(payload)["id"]
        with session_scope(engine) as session:
            assert billing.event_recorded(session, event_id)
        assert after[0] == before[0] + (0 if outcome == "duplicate" else 1)  # each event recorded once
        assert after[1] == before[1] + (1 if outcome == "granted" else 0)

    deliver()
    print(f"\nfuzz: {api.sent} webhook deliveries, outcomes {dict(sorted(outcomes.items()))}")
    assert api.sent >= WEBHOOK_REQUESTS
    assert outcomes["granted"] and outcomes["duplicate"] and outcomes["ignored"] and outcomes["invalid_signature"]
    with session_scope(engine) as session:
        granted = session.execute(select(Payment.membership_id).where(Payment.granted_at.is_not(None))).scalars()
        memberships = session.scalar(select(func.count()).select_from(Membership))
    granted = list(granted)
    assert len(set(granted)) == len(granted) == memberships <= len(intents)  # at most one membership per payment


# --- GET /api/v1/strategies/{id}/snapshots.csv -----------------------------------------------------------------


def test_fuzzed_csv_links_download_exactly_when_they_should(api, app_services):
    engine, store = app_services, SqlSnapshotStore(app_services)
    owner, other, admin = make_member(engine, name="Owner"), make_member(engine, name="Other"), make_admin(engine)
    strategy_id, _ = make_strategy(engine, owner, name="Fuzz CSV")
    others_strategy, _ = make_strategy(engine, other, name="Not the owner's")
    with session_scope(engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    for n in range(40):
        values = dict.fromkeys(snapshots.NUMBER_FIELDS, Decimal(n) - 20)
        at_ms = 1_700_000_000_000 + n * 60_000
        store_one(store, snapshots.Snapshot(strategy_id, account_id, at_ms, **values, symbol=f"=X{n}"))
    idle = timedelta(days=1)
    logins = {}  # login session id -> (user id, live)
    with session_scope(engine) as session:
        for user in (owner, other, admin, owner):
            token = members.start_session(session, user=user, days=30)
            logins[members.user_for_session(session, token, idle=idle).login_session_id] = (user.id, token)
    ended = max(logins)  # the owner's second sign-in: signed out
    with session_scope(engine) as session:
        members.end_session(session, logins[ended][1])
    readers = {owner.id: {strategy_id}, admin.id: {strategy_id, others_strategy}, other.id: {others_strategy}}
    outcomes: Counter[int] = Counter()
    live = {login: user_id for login, (user_id, _) in logins.items() if login != ended}
    ids = st.one_of(st.integers(min_value=-5, max_value=10), st.integers(), st.just(2**63))
    times = st.one_of(st.integers(min_value=1_699_999_000_000, max_value=1_700_003_000_000), st.integers())

    @settings(FUZZ, max_examples=CSV_REQUESTS)
    @given(
        data=st.data(),
        coherent=st.booleans(),  # a link as the page makes it (then perhaps spoilt), or anything at all
        start=times,
        end=times,
        signing=st.sampled_from(["ours", "ours", "ours", "other secret", "hex", "text", "tampered"]),
        sig_text=st.text(max_size=70),
    )
    def download(data, coherent, start, end, signing, sig_text) -> None:
        if coherent:
            login = data.draw(st.sampled_from(sorted(live)))
            user = live[login]
            strategy = data.draw(st.sampled_from([strategy_id, others_strategy]))  # perhaps not theirs
            expires_in = data.draw(st.integers(2, exports.LINK_SECONDS - 2))
        else:
            login = data.draw(st.one_of(st.sampled_from(sorted(logins)), ids))
            user = data.draw(st.one_of(st.sampled_from([owner.id, other.id, admin.id]), ids))
            strategy = data.draw(st.one_of(st.sampled_from([strategy_id, others_strategy]), ids))
            expires_in = data.draw(st.one_of(st.integers(-120, 120), st.integers(-(10**9), 10**9)))
        now = int(time.time())
        expires = now + expires_in
        signed = exports.signed_link(
            TEST_SECRET_KEY_BASE if signing != "other secret" else "x" * 40,
            user_id=user,
            login_session_id=login,
            strategy_id=strategy,
            start_ms=start,
            end_ms=end,
            now_s=expires - exports.LINK_SECONDS,
        )
        params = dict(httpx.URL(signed).params)
        if signing == "hex":
            params["sig"] = hashlib.sha256(sig_text.encode()).hexdigest()
        elif signing == "text":
            params["sig"] = sig_text
        elif signing == "tampered":
            params["start"] = str(start + 1)
        answer = api.request("GET", f"/api/v1/strategies/{strategy}/snapshots.csv", params=params)
        _no_server_error(answer)
        outcomes[answer.status_code] += 1
        in_bounds = all(1 <= n < 2**63 for n in (strategy, user, login)) and all(
            0 <= n <= ALL_TIME_END_MS for n in (start, end, expires)
        )
        valid = (
            in_bounds
            and signing == "ours"
            and now - 1 <= expires <= now + exports.LINK_SECONDS + 1  # a second's leeway on either side
            and live.get(login) == user
            and strategy in readers.get(user, set())
        )
        near_a_limit = abs(expires - now) <= 1 or abs(expires - now - exports.LINK_SECONDS) <= 1
        if answer.status_code == 200:
            assert valid, params
            rows = list(csv.reader(io.StringIO(answer.text, newline="")))
            expected = store.between(strategy, start, end, limit=10_000).items if start < end else []
            assert len(rows) == 1 + len(expected)
            assert all(row[-1].startswith("'=") for row in rows[1:])
        else:
            assert not valid or near_a_limit, (answer.status_code, params)
            assert answer.status_code in (403, 404, 422), answer.text

    download()
    print(f"\nfuzz: {api.sent} CSV downloads, answers {dict(sorted(outcomes.items()))}")
    assert api.sent >= CSV_REQUESTS
    assert outcomes[200] > 20 and outcomes[403] and outcomes[404] and outcomes[422]
