"""No secret reaches the app's log.

The running app (tests/conftest.py: LOG_LEVEL=DEBUG, JSON lines, on stderr into its log file) is taken through the
flows that carry secrets: bot posts with a token (in the header, in the body, with a body it refuses, revoked,
unknown, a sign-in token sent by mistake), a sign-in over the websocket as a browser sends it (a wrong password,
then the right one, then a page loaded with the sign-in's token), a webhook signed with the webhook secret, and a
payment made on localstripe with the app's Stripe secret key, whose events (holding the PaymentIntent's client
secret) localstripe delivers to the app. Then its whole log, everything the session's tests had it do so far
included, is searched for each of those secret values, and for anything shaped like a secret.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
import requests
import socketio
from sqlalchemy import select

from projectalgo import billing, strategies
from projectalgo.db import session_scope
from projectalgo.integrations.stripe import StripeGateway
from projectalgo.models import StrategyToken
from projectalgo.settings import load_settings
from projectalgo.snapshots import EXAMPLE_DATA
from projectalgo.tokens import new_token, token_hash
from tests.factories import PASSWORD, actor_of, grant_membership, make_member, make_strategy
from tests.support.cards import VISA, enter_card
from tests.support.log_secrets import leaks, shared_secrets
from tests.support.webhooks import sign, wait_for_recorded_event

NAMESPACE = "/_event"
WRONG_PASSWORD = "wrong horse battery staple 7"
SESSION_VAR = "session_token_rx_state_"


def _post(app_server, token: str | None, data: dict, *, in_body: bool = False) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token and not in_body else {}
    body = {"data": data | ({"strategy_access_token": token} if in_body else {})}
    return requests.post(f"{app_server.url}/api/v1/strategy/", json=body, headers=headers, timeout=10)


def _revoked(engine, owner, token: str) -> str:
    with session_scope(engine) as session:
        token_id = session.scalar(select(StrategyToken.id).where(StrategyToken.token_hash == token_hash(token)))
        strategies.revoke_token(session, actor_of(owner), token_id)
    return token


async def _sign_in(url: str, email: str, password: str) -> str:
    """Sign in as the browser's login page does, over the websocket; the sign-in's token the app sends the tab
    (empty when refused)."""
    from projectalgo.pages.dashboard import DashboardState
    from projectalgo.pages.login import LoginState

    updates: list[str] = []
    arrived = asyncio.Event()
    client = socketio.AsyncClient(reconnection=False)

    @client.on("event", namespace=NAMESPACE)
    async def on_event(update: object) -> None:
        updates.append(update if isinstance(update, str) else json.dumps(update))
        arrived.set()

    async def send(handler: str, payload: dict, path: str) -> None:
        arrived.clear()
        router = {"pathname": path, "asPath": path, "query": {}}
        await client.emit("event", {"name": handler, "payload": payload, "router_data": router}, namespace=NAMESPACE)
        await asyncio.wait_for(arrived.wait(), timeout=30)

    await client.connect(
        f"{url}?token={uuid.uuid4()}", socketio_path="_event", transports=["websocket"], namespaces=[NAMESPACE]
    )
    try:
        form = {"email": email, "password": password}
        await send(f"{LoginState.get_full_name()}.sign_in", {"form": form}, "/login")
        token = next((m.group(1) for u in updates if (m := re.search(rf'"{SESSION_VAR}": "([^"]+)"', u))), "")
        if token:  # a page loaded with it, as the next page of a signed-in tab is
            await send(f"{DashboardState.get_full_name()}.open_dashboard", {}, "/dashboard")
        return token
    finally:
        await client.disconnect()


def _pay_on_localstripe(app_engine, app_env, localstripe, member) -> list[str]:
    """A card set-up and a payment with the app's Stripe secret key, whose events localstripe signs and delivers
    to the app; the client secrets they hold."""
    gateway = StripeGateway(load_settings(app_env))
    setup_id, setup_secret = gateway.start_card_setup(user_id=member.id)
    enter_card(localstripe.url, setup_secret, VISA)
    setup = gateway.card_setup(setup_id)
    intent, intent_secret = gateway.create_payment(
        user_id=member.id, amount=49_900, currency="usd", payment_method=setup.payment_method, idempotency_key=setup_id
    )
    with session_scope(app_engine) as session:
        billing.record_payment(session, user_id=member.id, intent=intent)
    gateway.confirm_payment(intent.id)
    wait_for_recorded_event(app_engine, localstripe.url, intent.id, "payment_intent.succeeded")
    return [setup_secret, intent_secret]


def _signed_webhook(app_server, member) -> requests.Response:
    intent_id = f"pi_{uuid.uuid4().hex[:24]}"
    intent = {"id": intent_id, "object": "payment_intent", "amount": 49_900, "currency": "usd", "status": "succeeded"}
    intent |= {"client_secret": f"{intent_id}_secret_{uuid.uuid4().hex}", "metadata": {"user_id": str(member.id)}}
    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.succeeded"}
    body = json.dumps(event | {"data": {"object": intent}}).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body)}
    return requests.post(f"{app_server.url}/api/v1/stripe/webhook", data=body, headers=headers, timeout=10)


def _events(log_text: str) -> list[dict]:
    """The app's JSON log lines (the server's own start-up text aside)."""
    return [json.loads(line) for line in log_text.splitlines() if line.startswith('{"time"')]


@pytest.mark.timeout(240)
def test_no_secret_of_the_apps_flows_reaches_its_log(app_server, app_engine, app_env, localstripe):
    owner = make_member(app_engine)
    grant_membership(app_engine, owner)
    _, token = make_strategy(app_engine, owner, name="Secret keeper")
    _, revoked = make_strategy(app_engine, owner, name="Revoked")
    _revoked(app_engine, owner, revoked)
    unknown = new_token(strategies.TOKEN_PREFIX)

    assert _post(app_server, token, EXAMPLE_DATA).status_code == 201
    assert _post(app_server, token, EXAMPLE_DATA, in_body=True).status_code == 201
    assert _post(app_server, token, {"symbol": "XBTUSD"}).status_code == 422
    assert _post(app_server, revoked, EXAMPLE_DATA).status_code == 401
    assert _post(app_server, unknown, EXAMPLE_DATA, in_body=True).status_code == 401
    assert asyncio.run(_sign_in(app_server.url, owner.email, WRONG_PASSWORD)) == ""
    session_token = asyncio.run(_sign_in(app_server.url, owner.email, PASSWORD))
    assert session_token, "the sign-in gave the tab no token"
    assert _post(app_server, session_token, EXAMPLE_DATA).status_code == 401  # sent as a bot token by mistake
    assert _signed_webhook(app_server, owner).status_code == 200
    client_secrets = _pay_on_localstripe(app_engine, app_env, localstripe, owner)

    secrets = shared_secrets() | {
        "bot token": token,
        "revoked bot token": revoked,
        "unknown bot token": unknown,
        "wrong password": WRONG_PASSWORD,
        "sign-in token": session_token,
        # ingest.refused names a refused bot token by what the pages show of it; of anything else, nothing.
        "the start of the sign-in token": session_token[: strategies.TOKEN_DISPLAY_LENGTH],
        **{f"client secret {n}": secret for n, secret in enumerate(client_secrets)},
    }
    log_text = app_server.log_path.read_text(errors="replace")
    # The flows were logged at DEBUG, each API call with its request id: the log is the app's, and it is full.
    events = _events(log_text)
    names = {line.get("event") for line in events}
    assert {"api.request", "ingest.refused", "stripe.webhook", "billing.membership_granted"} <= names, names
    assert all(line["request_id"] for line in events if line.get("event") == "api.request")
    assert not leaks(log_text, secrets), f"the app's log holds: {', '.join(leaks(log_text, secrets))}"
