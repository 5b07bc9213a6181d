"""Stripe behind billing.BillingGateway (card set-ups, membership PaymentIntents), and webhook verification.

One `stripe.StripeClient` built from Settings, never the global `stripe.api_key`; STRIPE_API_BASE points it at
another API host (localstripe in the tests). Every call blocks on the network: callers run them on the Stripe
threads (runtime.in_stripe_thread).

Why a card set-up first: the card is entered in Stripe.js (its data go from the browser to Stripe, never to
this server) and confirmed as a SetupIntent, which is where Stripe declines a bad card. The server then
creates and confirms the PaymentIntent itself, for exactly the price, and Stripe.js only completes 3-D Secure
when Stripe asks for it. localstripe (the tests' Stripe) supports exactly this path.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import stripe

from projectalgo.billing import (
    BROKEN,
    DECLINED,
    CardSetup,
    Intent,
    PaymentProviderError,
    PaymentUnavailableError,
)
from projectalgo.settings import Settings

log = logging.getLogger("projectalgo.stripe")
# A payer waits for these calls, and so does a worker thread: a slow Stripe answers "unavailable" within about
# TIMEOUT * (RETRIES + 1) seconds instead of stripe-python's default 80 s * 3.
TIMEOUT_SECONDS = 12.0
RETRIES = 1  # stripe-python adds idempotency keys, so POST retries are safe
# Worth trying again later; anything else Stripe refuses (authentication, permission, invalid request) is ours.
TEMPORARY = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        if not settings.stripe_secret_key:
            raise ValueError("StripeGateway needs STRIPE_SECRET_KEY")
        self._client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            max_network_retries=RETRIES,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )

    def start_card_setup(self, *, user_id: int) -> tuple[str, str]:
        setup = _call(
            self._client.v1.setup_intents.create,
            params={"usage": "on_session", "payment_method_types": ["card"], "metadata": {"user_id": str(user_id)}},
        )
        return setup["id"], setup["client_secret"]

    def card_setup(self, setup_id: str) -> CardSetup:
        setup = _call(self._client.v1.setup_intents.retrieve, setup_id, params={"expand": ["payment_method"]})
        method = setup.get("payment_method") or {}
        error = setup.get("last_setup_error") or {}
        return CardSetup(
            id=setup["id"],
            status=setup["status"],
            user_id=str((setup.get("metadata") or {}).get("user_id", "")),
            payment_method=method.get("id"),
            method=_card_label(method.get("card") or {}),
            billing_details=_billing_details(method.get("billing_details") or {}),
            failure=str(error.get("message") or ""),
        )

    def create_payment(
        self, *, user_id: int, amount: int, currency: str, payment_method: str, idempotency_key: str
    ) -> tuple[Intent, str]:
        intent = _call(
            self._client.v1.payment_intents.create,
            params={
                "amount": amount,
                "currency": currency,
                "payment_method": payment_method,
                "payment_method_types": ["card"],
                "metadata": {"user_id": str(user_id)},
            },
            options={"idempotency_key": idempotency_key},
        )
        return intent_from(intent), intent["client_secret"]

    def confirm_payment(self, intent_id: str) -> Intent:
        try:
            return intent_from(self._client.v1.payment_intents.confirm(intent_id).to_dict())
        except stripe.CardError as error:
            # A decline: Stripe keeps it on the PaymentIntent; read it back for the status and the message.
            intent = self.payment(intent_id)
            return intent if intent.failure else dataclasses.replace(intent, failure=error.user_message or DECLINED)
        except stripe.StripeError as error:
            raise _refusal(error) from error

    def payment(self, intent_id: str) -> Intent:
        return intent_from(_call(self._client.v1.payment_intents.retrieve, intent_id))


def _call(method: Callable[..., stripe.StripeObject], *args: object, **kwargs: object) -> dict[str, Any]:
    """The answer as plain dicts (StripeObjects are not mappings), or a readable refusal."""
    try:
        return method(*args, **kwargs).to_dict()
    except stripe.StripeError as error:
        raise _refusal(error) from error


def _refusal(error: stripe.StripeError) -> PaymentUnavailableError | PaymentProviderError:
    """A temporary failure (warning, "try again later") or a refusal that is our fault (error, "tell an admin")."""
    name, code, request = type(error).__name__, error.code, error.request_id
    if isinstance(error, TEMPORARY):
        log.warning("stripe.unavailable error=%s code=%s request=%s", name, code, request)
        return PaymentUnavailableError()
    log.error("stripe.refused error=%s code=%s request=%s message=%s", name, code, request, error.user_message)
    return PaymentProviderError(BROKEN)


def _card_label(card: Mapping[str, Any]) -> str:
    return f"{card.get('brand', 'card')} •••• {card['last4']}" if card.get("last4") else "card"


def _billing_details(details: Mapping[str, Any]) -> dict[str, str]:
    """The few billing details worth keeping with a payment (no full address)."""
    address = details.get("address") or {}
    kept = {
        "name": details.get("name"),
        "email": details.get("email"),
        "country": address.get("country"),
        "postal_code": address.get("postal_code"),
    }
    return {key: str(value)[:100] for key, value in kept.items() if value}


def intent_from(obj: Mapping[str, Any]) -> Intent:
    """An Intent from a PaymentIntent object (API answer or webhook payload); TypeError/KeyError if malformed."""
    amount = obj["amount"]
    if not isinstance(obj["id"], str) or not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError("not a PaymentIntent")
    metadata = obj.get("metadata") or {}
    error = obj.get("last_payment_error") or {}
    return Intent(
        id=obj["id"],
        status=str(obj["status"]),
        amount=amount,
        currency=str(obj["currency"]).lower(),
        user_id=str(metadata.get("user_id", "")),
        failure=str(error.get("message") or ""),
    )


# --- Webhooks -------------------------------------------------------------------------------------------


class WebhookError(ValueError):
    """A webhook request to refuse (HTTP 400); `code` and the message go into the JSON error."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    intent: Intent | None  # for payment_intent.* events


def verify_webhook(payload: bytes, signature: str | None, secret: str) -> WebhookEvent:
    """The event in `payload` if `signature` (the Stripe-Signature header) signs these exact bytes with `secret`
    within Stripe's default tolerance (300 s); WebhookError otherwise."""
    if not signature:
        raise WebhookError("missing_signature", "The Stripe-Signature header is missing.")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE)
    except (UnicodeDecodeError, stripe.SignatureVerificationError):
        raise WebhookError(
            "invalid_signature", "The Stripe-Signature header does not sign this body, or is more than 5 minutes old."
        ) from None
    try:
        event = json.loads(text)
        event_id, event_type, obj = event["id"], event["type"], event["data"]["object"]
        if not (isinstance(event_id, str) and isinstance(event_type, str) and isinstance(obj, Mapping)):
            raise TypeError("not an event")
        intent = None
        if event_type.startswith("payment_intent."):
            if obj.get("object") != "payment_intent":
                raise TypeError("not a PaymentIntent")
            intent = intent_from(obj)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WebhookError("invalid_payload", "The body is not a Stripe event.") from None
    return WebhookEvent(event_id, event_type, intent)
