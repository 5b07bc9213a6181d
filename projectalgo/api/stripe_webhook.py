"""POST /api/v1/stripe/webhook: Stripe's events, verified on the raw body, each applied once.

Only payment_intent.succeeded and payment_intent.payment_failed act, and only on a PaymentIntent this app
created (billing.handle_stripe_event). Unset STRIPE_WEBHOOK_SECRET turns the route off (404).
"""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from projectalgo import billing
from projectalgo.api.errors import error_response
from projectalgo.db import session_scope
from projectalgo.integrations.stripe import WebhookError, WebhookEvent, verify_webhook
from projectalgo.runtime import services

router = APIRouter()
log = logging.getLogger("projectalgo.api.stripe")
MAX_BODY_BYTES = 1_000_000  # Stripe's events are a few kB


@router.post("/api/v1/stripe/webhook", tags=["billing"])
async def stripe_webhook(request: Request) -> JSONResponse:
    secret = services().settings.stripe_webhook_secret
    if not secret:
        return error_response(404, "not_found", "Stripe webhooks are not configured on this server.")
    payload = bytearray()
    async for chunk in request.stream():
        payload += chunk
        if len(payload) > MAX_BODY_BYTES:
            return error_response(413, "payload_too_large", "A Stripe event is never this large.")
    try:
        event = verify_webhook(bytes(payload), request.headers.get("stripe-signature"), secret)
    except WebhookError as error:
        log.warning("stripe.webhook_refused reason=%s", error.code)
        return error_response(400, error.code, str(error))
    outcome = await anyio.to_thread.run_sync(_apply, event)
    log.info("stripe.webhook event=%s type=%s outcome=%s", event.id, event.type, outcome)
    return JSONResponse({"received": True, "outcome": outcome})


def _apply(event: WebhookEvent) -> str:
    try:
        with session_scope(services().engine) as session:
            return billing.handle_stripe_event(session, event_id=event.id, event_type=event.type, intent=event.intent)
    except IntegrityError:
        # A concurrent delivery of the same event committed first (stripe_events.event_id is unique);
        # this transaction rolled back whole, so nothing was applied twice.
        return "duplicate"
