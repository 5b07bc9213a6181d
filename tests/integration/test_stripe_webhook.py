"""POST /api/v1/stripe/webhook on the running app, with events signed here (and by localstripe itself)."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
import requests
from sqlalchemy import select

from projectalgo import billing
from projectalgo.api import build_api
from projectalgo.db import session_scope
from projectalgo.integrations.stripe import StripeGateway
from projectalgo.models import Membership, Payment
from projectalgo.runtime import services
from projectalgo.settings import load_settings
from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_WEBHOOK_SECRET
from tests.factories import make_member
from tests.support.cards import DECLINED_AT_CHARGE, VISA, enter_card
from tests.support.webhooks import sign, wait_for_recorded_event

PATH = "/api/v1/stripe/webhook"


def _event_body(intent_id, user_id, event_type="payment_intent.succeeded", event_id=None, **intent) -> bytes:
    status = "succeeded" if event_type == "payment_intent.succeeded" else "requires_payment_method"
    obj = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": 49_900,
        "currency": "usd",
        "status": status,
        "metadata": {"user_id": str(user_id)},
        "last_payment_error": {"message": "Your card was declined."} if status != "succeeded" else None,
    } | intent
    event = {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": event_type}
    return json.dumps(event | {"data": {"object": obj}}).encode()


def _post(app_server, body: bytes, signature: str | None = "sign") -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = sign(body) if signature == "sign" else signature
    return requests.post(f"{app_server.url}{PATH}", data=body, headers=headers, timeout=10)


@pytest.fixture
def payment(app_engine):
    """A member and the payment row the app would have recorded for their PaymentIntent."""
    member = make_member(app_engine)
    intent = billing.Intent(f"pi_{uuid.uuid4().hex}", "requires_confirmation", 49_900, "usd", str(member.id))
    with session_scope(app_engine) as session:
        billing.record_payment(session, user_id=member.id, intent=intent)
    return intent


def _memberships(engine, user_id):
    with session_scope(engine) as session:
        return session.scalars(select(Membership).where(Membership.user_id == int(user_id))).all()


def _payment_row(engine, intent_id):
    with session_scope(engine) as session:
        return session.scalars(select(Payment).where(Payment.stripe_payment_intent_id == intent_id)).one()


def _outcome(response):
    assert response.status_code == 200, response.text
    return response.json()["outcome"]


def test_a_verified_success_grants_once_however_often_and_in_whatever_order_it_arrives(app_server, app_engine, payment):
    succeeded = _event_body(payment.id, payment.user_id)
    assert _outcome(_post(app_server, succeeded)) == "granted"
    assert _outcome(_post(app_server, succeeded)) == "duplicate"
    assert _outcome(_post(app_server, _event_body(payment.id, payment.user_id))) == "already_granted"
    failed_late = _event_body(payment.id, payment.user_id, "payment_intent.payment_failed")
    assert _outcome(_post(app_server, failed_late)) == "unchanged"
    [membership] = _memberships(app_engine, payment.user_id)
    row = _payment_row(app_engine, payment.id)
    assert row.status == "succeeded" and row.membership_id == membership.id


def test_a_failure_is_recorded_without_granting(app_server, app_engine, payment):
    failed = _event_body(payment.id, payment.user_id, "payment_intent.payment_failed")
    assert _outcome(_post(app_server, failed)) == "updated"
    assert _payment_row(app_engine, payment.id).status == "failed"
    assert not _memberships(app_engine, payment.user_id)


def test_concurrent_deliveries_of_one_event_grant_once_and_never_fail(app_server, app_engine, payment):
    body = _event_body(payment.id, payment.user_id)
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda _: _outcome(_post(app_server, body)), range(6)))
    assert sorted(outcomes) == ["duplicate"] * 5 + ["granted"]
    assert len(_memberships(app_engine, payment.user_id)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"id": "pi_never_created_here"},  # no payment row: not ours
        {"metadata": {"user_id": "999999"}},  # another user than the payment's
        {"metadata": {}},
    ],
)
def test_events_for_payment_intents_we_did_not_create_are_acknowledged_and_ignored(
    app_server, app_engine, payment, change
):
    body = _event_body(payment.id, payment.user_id, **change)
    assert _outcome(_post(app_server, body)) == "ignored"
    assert not _memberships(app_engine, payment.user_id)


def test_other_event_types_are_acknowledged_and_ignored(app_server):
    body = json.dumps({"id": "evt_other_" + uuid.uuid4().hex, "type": "customer.created", "data": {"object": {}}})
    assert _outcome(_post(app_server, body.encode())) == "ignored"


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("tampered body", "invalid_signature"),
        ("wrong secret", "invalid_signature"),
        ("stale timestamp", "invalid_signature"),
        ("missing header", "missing_signature"),
        ("garbled header", "invalid_signature"),
        ("not JSON", "invalid_payload"),
        ("not UTF-8", "invalid_signature"),
        ("JSON but not an event", "invalid_payload"),
        ("event without a PaymentIntent", "invalid_payload"),
        ("half a UTF-16 pair in the event id", "invalid_payload"),
    ],
)
def test_bad_requests_are_refused_with_a_json_400_and_change_nothing(app_server, app_engine, payment, case, error):
    body = _event_body(payment.id, payment.user_id)
    signature = "sign"
    if case == "tampered body":
        signature, body = sign(body), body.replace(b"49900", b"100")
    elif case == "wrong secret":
        signature = sign(body, secret="whsec_not_the_apps")
    elif case == "stale timestamp":
        signature = sign(body, timestamp=int(time.time()) - 301)
    elif case == "missing header":
        signature = None
    elif case == "garbled header":
        signature = "t=yesterday,v1="
    elif case == "not JSON":
        body = b"event: payment_intent.succeeded"
    elif case == "not UTF-8":
        body = b"\xff\xfe" + body
    elif case == "JSON but not an event":
        body = b'["payment_intent.succeeded"]'
    elif case == "event without a PaymentIntent":
        body = body.replace(b'"object": "payment_intent"', b'"object": "charge"')
    elif case == "half a UTF-16 pair in the event id":  # signed, but no database could store it
        body = body.replace(b'"id": "evt_', b'"id": "\\udc00evt_', 1)
    response = _post(app_server, body, signature)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error and response.json()["detail"]
    assert not _memberships(app_engine, payment.user_id)
    assert _payment_row(app_engine, payment.id).status == "requires_confirmation"


def test_a_get_answers_405_with_allow_in_the_error_shape(app_server):
    response = requests.get(f"{app_server.url}{PATH}", timeout=5)
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(("card", "granted"), [(VISA, True), (DECLINED_AT_CHARGE, False)])
def test_localstripes_own_signed_webhook_settles_a_payment_confirmed_elsewhere(
    app_server, app_engine, app_env, localstripe, card, granted
):
    """The PaymentIntent is confirmed by this test, not by the app: only the webhook can tell the app."""
    member = make_member(app_engine)
    gateway = StripeGateway(load_settings(app_env))
    setup_id, secret = gateway.start_card_setup(user_id=member.id)
    enter_card(localstripe.url, secret, card)
    setup = gateway.card_setup(setup_id)
    intent, _ = gateway.create_payment(
        user_id=member.id, amount=49_900, currency="usd", payment_method=setup.payment_method, idempotency_key=setup_id
    )
    with session_scope(app_engine) as session:
        billing.record_payment(session, user_id=member.id, intent=intent)
    gateway.confirm_payment(intent.id)
    event_type = "payment_intent.succeeded" if granted else "payment_intent.payment_failed"
    wait_for_recorded_event(app_engine, localstripe.url, intent.id, event_type)
    assert _payment_row(app_engine, intent.id).status == ("succeeded" if granted else "failed")
    assert len(_memberships(app_engine, member.id)) == (1 if granted else 0)


def _post_in_process(body: bytes) -> httpx.Response:
    """POST to the API built in this process (on whatever services() holds now)."""

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_api(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.post(PATH, content=body, headers={"Stripe-Signature": sign(body)})

    with ThreadPoolExecutor(max_workers=1) as thread:  # its own event loop: Playwright may hold this thread's
        return thread.submit(anyio.run, post).result()


@pytest.fixture
def api_on_own_database(engine, monkeypatch):
    """The API in this process on this test's own database, which the test may break."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", str(engine.url))
    monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", TEST_STRIPE_WEBHOOK_SECRET)
    services.cache_clear()
    yield engine
    services().engine.dispose()
    services.cache_clear()


def _recorded_payment(engine):
    member = make_member(engine)
    intent = billing.Intent(f"pi_{uuid.uuid4().hex}", "requires_confirmation", 49_900, "usd", str(member.id))
    with session_scope(engine) as session:
        billing.record_payment(session, user_id=member.id, intent=intent)
    return intent


def _assert_retry_later(response):
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "database_unavailable" and response.json()["detail"]
    assert int(response.headers["Retry-After"]) > 0


def test_a_database_error_answers_a_json_503_so_that_stripe_sends_the_event_again(api_on_own_database):
    engine = api_on_own_database
    payment = _recorded_payment(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE stripe_events")
    _assert_retry_later(_post_in_process(_event_body(payment.id, payment.user_id)))
    assert services().stripe_webhook_stats.last_hour() == {"unavailable": 1}  # what the admins' alert reads


def test_only_an_event_already_recorded_is_a_duplicate_any_other_conflict_is_retried(api_on_own_database):
    engine = api_on_own_database
    payment = _recorded_payment(engine)
    body = _event_body(payment.id, payment.user_id)
    # A conflict that is not a redelivery: the membership cannot be written (an IntegrityError, like a duplicate's).
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_memberships BEFORE INSERT ON memberships BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    _assert_retry_later(_post_in_process(body))
    assert _payment_row(engine, payment.id).status == "requires_confirmation"
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER refuse_memberships")
    assert _outcome(_post_in_process(body)) == "granted"  # Stripe's next delivery
    assert _outcome(_post_in_process(body)) == "duplicate"
    assert len(_memberships(engine, payment.user_id)) == 1


@pytest.fixture
def webhook_secret_unset(monkeypatch, tmp_path):
    """The API in this process, on settings without STRIPE_WEBHOOK_SECRET."""
    for name in ("STRIPE_WEBHOOK_SECRET", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
    services.cache_clear()
    yield
    services.cache_clear()


def test_without_a_webhook_secret_the_route_answers_404_json(webhook_secret_unset):
    response = _post_in_process(_event_body("pi_x", 1))
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Stripe webhooks are not configured on this server."}
