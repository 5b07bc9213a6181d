"""POST /api/v1/stripe/webhook: Stripe's events, verified on the raw body, each applied once.

Only payment_intent.succeeded and payment_intent.payment_failed act, and only on a PaymentIntent this app
created (billing.handle_stripe_event). Unset STRIPE_WEBHOOK_SECRET turns the route off (404). When the database
fails, the answer is a 503: Stripe delivers the event again later (it retries for days).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from projectalgo import billing
from projectalgo.api.errors import TooLargeError, error_response, error_responses, read_limited, refusal_response
from projectalgo.db import session_scope
from projectalgo.errors import UnavailableError
from projectalgo.integrations.stripe import WebhookError, WebhookEvent, verify_webhook
from projectalgo.runtime import services

router = APIRouter()
log = logging.getLogger("projectalgo.api.stripe")
MAX_BODY_BYTES = 1_000_000  # Stripe's events are a few kB
RETRY_AFTER_SECONDS = 60


_PAYMENT_INTENT_TYPE = r"^payment_intent\."
_EMPTY = {"anyOf": [{"type": "null"}, {"const": False}, {"const": 0}, {"const": ""}, {"const": []}]}
_OBJECT_OR_EMPTY = {"anyOf": [{"type": "object"}, _EMPTY]}
# What verify_webhook takes for an event: every payment_intent.* event about a PaymentIntent, anything else as is.
EVENT_SCHEMA = {
    "type": "object",
    "required": ["id", "type", "data"],
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string"},
        "data": {"type": "object", "required": ["object"], "properties": {"object": {"type": "object"}}},
    },
    "anyOf": [
        {"properties": {"type": {"not": {"pattern": _PAYMENT_INTENT_TYPE}}}},
        {
            "properties": {
                "type": {"pattern": _PAYMENT_INTENT_TYPE},
                "data": {
                    "properties": {
                        "object": {
                            "required": ["object", "id", "amount", "status", "currency"],
                            "properties": {
                                "object": {"const": "payment_intent"},
                                "id": {"type": "string"},
                                "amount": {"type": "integer"},
                                "metadata": _OBJECT_OR_EMPTY,
                                "last_payment_error": _OBJECT_OR_EMPTY,
                            },
                        }
                    }
                },
            }
        },
    ],
}
OPENAPI = {
    "parameters": [
        {
            "name": "Stripe-Signature",
            "in": "header",
            "required": True,
            "description": "Stripe's signature of the exact body with the endpoint's signing secret (at most 5 "
            "minutes old).",
            "schema": {"type": "string"},
        }
    ],
    "requestBody": {
        "required": True,
        "description": "A Stripe event, verified on these exact bytes.",
        "content": {"application/json": {"schema": EVENT_SCHEMA}},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Received: applied once, a duplicate of an event already applied, or acknowledged and "
        "ignored (another event type, or a PaymentIntent this app did not create).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["received", "outcome"],
                    "properties": {"received": {"const": True}, "outcome": {"type": "string"}},
                }
            }
        },
    },
    **error_responses(
        {
            400: "The Stripe-Signature header is missing or does not sign this body (or is over 5 minutes old), "
            "or the body is not a Stripe event.",
            404: "Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRET is unset).",
            413: "The body is over 1 MB: never a Stripe event.",
            503: "The event could not be recorded now; Stripe sends it again later (see Retry-After).",
        }
    ),
}


@router.post(
    "/api/v1/stripe/webhook",
    tags=["billing"],
    summary="Receive a Stripe event",
    responses=RESPONSES,
    openapi_extra=OPENAPI,
)
async def stripe_webhook(request: Request) -> JSONResponse:
    secret = services().settings.stripe_webhook_secret
    if not secret:
        return error_response(404, "not_found", "Stripe webhooks are not configured on this server.")
    try:
        payload = await read_limited(request, MAX_BODY_BYTES)
    except TooLargeError:
        return error_response(413, "payload_too_large", "A Stripe event is never this large.")
    try:
        event = verify_webhook(payload, request.headers.get("stripe-signature"), secret)
    except WebhookError as error:
        log.warning("stripe.webhook_refused reason=%s", error.code)
        services().stripe_webhook_stats.count("refused")
        return error_response(400, error.code, str(error))
    if not _storable(event):
        log.warning("stripe.webhook_refused reason=unstorable_text")
        services().stripe_webhook_stats.count("refused")
        return error_response(400, "invalid_payload", "The event holds text no database can store.")
    try:
        outcome = await anyio.to_thread.run_sync(_apply, event)
    except SQLAlchemyError:
        log.exception("stripe.webhook_database_error event=%s type=%s", event.id, event.type)
        services().stripe_webhook_stats.count("unavailable")
        return refusal_response(
            UnavailableError(
                "The event could not be recorded right now; send it again later.",
                code="database_unavailable",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        )
    log.info("stripe.webhook event=%s type=%s outcome=%s", event.id, event.type, outcome)
    services().stripe_webhook_stats.count("recorded")
    return JSONResponse({"received": True, "outcome": outcome})


_UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")  # half a UTF-16 pair, as a JSON \\u escape: text no UTF-8 carries


def _storable(event: WebhookEvent) -> bool:
    """Whether every text of the event can be written to the database (Stripe's always can)."""
    texts = [event.id, event.type, *(dataclasses.astuple(event.intent) if event.intent else ())]
    return not any(isinstance(text, str) and _UNPAIRED_SURROGATE.search(text) for text in texts)


def _apply(event: WebhookEvent) -> str:
    engine = services().engine
    try:
        with session_scope(engine) as session:
            return billing.handle_stripe_event(session, event_id=event.id, event_type=event.type, intent=event.intent)
    except IntegrityError:
        # This transaction rolled back whole. A concurrent delivery of the same event committing first
        # (stripe_events.event_id is unique) makes it a duplicate; any other conflict is an error to retry.
        with session_scope(engine) as session:
            if billing.event_recorded(session, event.id):
                return "duplicate"
        raise
