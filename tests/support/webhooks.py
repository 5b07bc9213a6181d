"""Signing webhook bodies as Stripe does, and waiting for localstripe's own deliveries (about a second late) to
be recorded by the app."""

from __future__ import annotations

import hashlib
import hmac
import time

import stripe
from sqlalchemy import Engine, select

from projectalgo.db import session_scope
from projectalgo.models import StripeEvent
from tests.conftest import TEST_STRIPE_SECRET_KEY, TEST_STRIPE_WEBHOOK_SECRET


def sign(body: bytes, secret: str = TEST_STRIPE_WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends with `body` (now, unless `timestamp` says when)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def event_for(localstripe_url: str, intent_id: str, event_type: str) -> str:
    """The id of localstripe's one `event_type` event about PaymentIntent `intent_id`."""
    client = stripe.StripeClient(TEST_STRIPE_SECRET_KEY, base_addresses={"api": localstripe_url})
    events = client.v1.events.list(params={"type": event_type, "limit": 100}).auto_paging_iter()
    [event_id] = [event.id for event in events if event.to_dict()["data"]["object"]["id"] == intent_id]
    return event_id


def wait_for_recorded_event(
    engine: Engine, localstripe_url: str, intent_id: str, event_type: str, seconds: float = 20.0
) -> str:
    """Wait until the app has recorded localstripe's `event_type` event about `intent_id`; return its id."""
    event_id = event_for(localstripe_url, intent_id, event_type)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            if session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event_id)) is not None:
                return event_id
        time.sleep(0.1)
    raise AssertionError(f"the app did not record {event_type} {event_id} for {intent_id} within {seconds:.0f} s")
