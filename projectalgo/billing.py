"""Paying for the yearly membership (memberships.py grants it).

Plain Python on a SQL session; no Reflex here. Stripe is behind the `BillingGateway` protocol (implemented
in integrations/stripe.py): this module sees only `Intent` snapshots, whether they come from the Stripe API
or from a verified webhook, and both paths end in `apply_intent`, which grants once per payment.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import throttle
from projectalgo.clock import utcnow
from projectalgo.errors import DomainError, NotAllowedError, NotFoundError, RateLimitedError, UnavailableError
from projectalgo.memberships import MEMBERSHIP_DAYS, grant
from projectalgo.models import Payment, StripeEvent, max_length

# Stripe's PaymentIntent statuses, plus "failed": Stripe reports a declined attempt as
# requires_payment_method with a last_payment_error.
PAYMENT_STATUSES = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "succeeded",
    "failed",
    "canceled",
)
# The webhook events acted on; any other verified event is acknowledged and recorded only.
HANDLED_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")
# Payments whose outcome Stripe may still change without the payer doing anything more here.
OPEN_STATUSES = ("requires_confirmation", "requires_action", "processing")
OPEN_PAYMENTS_CHECKED = 5  # the newest open payments of a user read back from Stripe, within:
OPEN_PAYMENTS_DAYS = 7
# Card set-ups (Stripe SetupIntents) one user may start, across all their tabs, within the window.
CARD_SETUPS_PER_WINDOW = 5
CARD_SETUP_WINDOW = timedelta(hours=1)
METHOD_MAX_LENGTH = max_length(Payment, "method")
DECLINED = "Your card was declined."
UNAVAILABLE = "Payments are unavailable right now. Please try again in a few minutes."
PAYMENTS_RETRY_AFTER_SECONDS = 120
BROKEN = "Payments are not working because of a problem on our side. It has been logged; please tell an admin."
PROCESSING = (
    "Your payment is being processed. Your membership starts as soon as Stripe confirms it; please do not pay again."
)
IN_DOUBT = (
    "We could not find out from Stripe whether your payment went through. Please do not pay again: "
    "this page shows the result as soon as Stripe answers."
)
EARLIER_GRANTED = "An earlier payment of yours went through: your membership is active."

log = logging.getLogger("projectalgo.billing")


class PaymentUnavailableError(UnavailableError):
    """The payment provider could not be reached or did not answer in time: a temporary failure.

    Stripe may still have carried out the request (its answer was lost): after a confirmation, ask Stripe
    for the PaymentIntent's status before telling the payer anything.
    """

    def __init__(self, message: str = UNAVAILABLE) -> None:
        super().__init__(message, retry_after_seconds=PAYMENTS_RETRY_AFTER_SECONDS, code="payments_unavailable")


class PaymentProviderError(DomainError):
    """The payment provider refused the request itself (a wrong key, a missing permission, an invalid request):
    a fault on our side that trying again will not fix."""

    code = "payments_broken"


@dataclass(frozen=True)
class Intent:
    """What the app needs of a Stripe PaymentIntent, read from the API or from a verified webhook."""

    id: str
    status: str  # Stripe's status
    amount: int
    currency: str
    user_id: str  # metadata["user_id"] as Stripe holds it ("" when missing)
    failure: str = ""  # last_payment_error.message: Stripe's words, meant for the payer

    @property
    def payment_status(self) -> str:
        return "failed" if self.status == "requires_payment_method" and self.failure else self.status


@dataclass(frozen=True)
class CardSetup:
    """A card the payer entered in Stripe.js and Stripe checked (a Stripe SetupIntent)."""

    id: str
    status: str
    user_id: str
    payment_method: str | None
    method: str  # e.g. "visa •••• 4242"
    billing_details: dict[str, str]
    failure: str = ""


class BillingGateway(Protocol):
    """The payment provider as the membership flow uses it. Calls block (network): run them off the event loop."""

    def start_card_setup(self, *, user_id: int) -> tuple[str, str]:
        """A new card set-up: its id, and the client secret with which Stripe.js completes it in the browser."""

    def card_setup(self, setup_id: str) -> CardSetup: ...

    def create_payment(
        self, *, user_id: int, amount: int, currency: str, payment_method: str, idempotency_key: str
    ) -> tuple[Intent, str]:
        """A new, unconfirmed PaymentIntent and its client secret (for 3-D Secure in the browser)."""

    def confirm_payment(self, intent_id: str) -> Intent:
        """Confirm server-side; a declined card comes back as a failed Intent, not as an error.

        PaymentUnavailableError does not mean nothing was charged: read the PaymentIntent back.
        """

    def payment(self, intent_id: str) -> Intent: ...


@dataclass(frozen=True)
class PaymentView:
    """One line of a user's own payment history."""

    created_at: datetime
    amount: Decimal
    currency: str
    status: str


@dataclass(frozen=True)
class PaymentOutcome:
    """Where a payment attempt stands, for the page: done, needs 3-D Secure, or a message to show."""

    status: str  # "granted", "requires_action", "failed", "pending" (may still be charged: do not pay again)
    message: str = ""
    # Only with requires_action: the PaymentIntent to check afterwards, and the payer's own secret for Stripe.js.
    intent_id: str = ""
    client_secret: str = ""


def amount_in_cents(price: Decimal) -> int:
    return int((price * 100).to_integral_value())


def record_payment(
    session: Session, *, user_id: int, intent: Intent, method: str = "", billing_details: dict[str, str] | None = None
) -> Payment:
    """The payment row for a PaymentIntent the app has just created for `user_id` (idempotent)."""
    payment = _payment_for_intent(session, intent.id)
    if payment is not None:
        if payment.user_id != user_id:
            raise NotAllowedError("That payment belongs to someone else.")
        return payment
    now = utcnow()
    payment = Payment(
        stripe_payment_intent_id=intent.id,
        user_id=user_id,
        amount=intent.amount,
        currency=intent.currency,
        status=intent.payment_status,
        method=method[:METHOD_MAX_LENGTH],
        billing_details=billing_details or {},
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    return payment


def _payment_for_intent(session: Session, intent_id: str) -> Payment | None:
    return session.scalars(select(Payment).where(col(Payment.stripe_payment_intent_id) == intent_id)).first()


def own_payment(session: Session, *, user_id: int, intent_id: str) -> Payment:
    """The payment row of `intent_id` if it belongs to `user_id`; never another user's."""
    payment = _payment_for_intent(session, intent_id)
    if payment is None or payment.user_id != user_id:
        raise NotFoundError("No such payment.")
    return payment


def apply_intent(session: Session, payment: Payment, intent: Intent) -> str:
    """Bring the payment row up to date with Stripe's view of its PaymentIntent; grant once when it succeeded.

    Returns what happened: "granted", "already_granted", "updated", "unchanged" or "mismatch". A succeeded
    payment never goes back (events can arrive out of order), and the grant happens only through the
    conditional UPDATE that sets granted_at, in this same transaction.
    """
    now = utcnow()
    if intent.status == "succeeded":
        if (intent.amount, intent.currency) != (payment.amount, payment.currency):
            log.error("billing.amount_mismatch payment=%s intent=%s", payment.id, intent.id)
            return "mismatch"
        claimed = session.execute(
            update(Payment)
            .where(col(Payment.id) == payment.id, col(Payment.granted_at).is_(None))
            .values(status="succeeded", granted_at=now, updated_at=now)
            .returning(col(Payment.id))
        ).first()
        if claimed is None:
            return "already_granted"
        membership = grant(
            session, user_id=payment.user_id, days=MEMBERSHIP_DAYS, source="stripe", note=f"Stripe payment {intent.id}"
        )
        session.execute(update(Payment).where(col(Payment.id) == payment.id).values(membership_id=membership.id))
        log.info(
            "billing.membership_granted payment=%s user=%s until=%s", payment.id, payment.user_id, membership.ends_at
        )
        return "granted"
    status = intent.payment_status if intent.payment_status in PAYMENT_STATUSES else payment.status
    changed = session.execute(
        update(Payment)
        .where(col(Payment.id) == payment.id, col(Payment.status) != "succeeded", col(Payment.status) != status)
        .values(status=status, updated_at=now)
        .returning(col(Payment.id))
    ).first()
    return "updated" if changed else "unchanged"


def handle_stripe_event(session: Session, *, event_id: str, event_type: str, intent: Intent | None) -> str:
    """Apply one verified Stripe event once. Returns "duplicate", "ignored" or an `apply_intent` outcome.

    The event id is recorded in the same transaction (unique), so a redelivery is a no-op; a concurrent
    redelivery fails that insert with an IntegrityError, after which `event_recorded` tells the caller whether
    it was a duplicate. An event only acts on a PaymentIntent the app created: one with a payment row whose
    user is the PaymentIntent's metadata user_id. Anything else is acknowledged and ignored.
    """
    if event_recorded(session, event_id):
        return "duplicate"
    session.add(StripeEvent(event_id=event_id[:255], type=event_type[:100], received_at=utcnow()))
    session.flush()
    if event_type not in HANDLED_EVENTS or intent is None:
        return "ignored"
    payment = _payment_for_intent(session, intent.id)
    if payment is None or intent.user_id != str(payment.user_id):
        log.warning("billing.event_for_unknown_payment event=%s type=%s", event_id, event_type)
        return "ignored"
    return apply_intent(session, payment, intent)


def event_recorded(session: Session, event_id: str) -> bool:
    """Whether the webhook event `event_id` has been recorded, and so applied."""
    return (
        session.scalars(select(col(StripeEvent.id)).where(col(StripeEvent.event_id) == event_id[:255])).first()
        is not None
    )


def payment_history(session: Session, user_id: int) -> list[PaymentView]:
    """The user's own payments, newest first."""
    payments = session.scalars(
        select(Payment)
        .where(col(Payment.user_id) == user_id)
        .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
    )
    return [PaymentView(p.created_at, Decimal(p.amount) / 100, p.currency, p.status) for p in payments]


Sessions = Callable[[], AbstractContextManager[Session]]


def start_card_setup(sessions: Sessions, gateway: BillingGateway, *, user_id: int) -> tuple[str, str]:
    """A new card set-up for the user (its id and client secret), unless they started too many lately, from
    whichever tabs or workers. Blocking. Counted before Stripe is called: a set-up whose answer was lost may
    still exist at Stripe."""
    now = utcnow()
    with sessions() as session:
        attempt = throttle.record(session, kind="card_setup", key=f"user:{user_id}", now=now)
        seen = throttle.seen_before(session, attempt, since=now - CARD_SETUP_WINDOW)
        if seen.count >= CARD_SETUPS_PER_WINDOW and seen.oldest is not None:
            throttle.withdraw(session, attempt)
            log.warning("billing.card_setups_limited user=%s", user_id)
            wait = seen.oldest + CARD_SETUP_WINDOW - now
            raise RateLimitedError(
                f"You have started {CARD_SETUPS_PER_WINDOW} payments within an hour. "
                f"Please wait {throttle.wait_text(wait)} before trying again.",
                retry_after_seconds=max(1, math.ceil(wait.total_seconds())),
            )
    return gateway.start_card_setup(user_id=user_id)


# --- The payment flow (several short transactions around network calls; never a transaction held open
# while Stripe answers) -----------------------------------------------------------------------------------


def pay_with_card_setup(
    sessions: Sessions, gateway: BillingGateway, *, user_id: int, setup_id: str, price: Decimal, currency: str
) -> PaymentOutcome:
    """Charge one membership to the card of a completed set-up, and grant it if Stripe says it succeeded.

    Blocking. `setup_id` comes from the server (never from the browser); its status is read from Stripe.
    Nothing is charged while an earlier payment of the user may still go through (see `settle_open_payments`).
    """
    if (earlier := settle_open_payments(sessions, gateway, user_id=user_id)) is not None:
        return earlier
    setup = gateway.card_setup(setup_id)
    if setup.user_id != str(user_id) or setup.status != "succeeded" or not setup.payment_method:
        return PaymentOutcome("failed", setup.failure or "Your card could not be used. Please check it and try again.")
    # One PaymentIntent per card set-up, even if this runs twice.
    intent, client_secret = gateway.create_payment(
        user_id=user_id,
        amount=amount_in_cents(price),
        currency=currency,
        payment_method=setup.payment_method,
        idempotency_key=f"membership-{user_id}-{setup.id}",
    )
    # Recorded before confirming: whatever happens next, a payment Stripe takes is one the app can settle.
    with sessions() as session:
        record_payment(
            session, user_id=user_id, intent=intent, method=setup.method, billing_details=setup.billing_details
        )
    try:
        confirmed = gateway.confirm_payment(intent.id)
    except PaymentUnavailableError as error:
        # The confirmation may have reached Stripe although its answer did not reach us: ask Stripe.
        read_back = _read_back(gateway, intent.id)
        if read_back is None:
            return PaymentOutcome("pending", IN_DOUBT)
        if read_back.status == "requires_confirmation":  # it never reached Stripe: nothing was charged
            return PaymentOutcome("failed", error.message)
        confirmed = read_back
    return _settle(sessions, user_id, confirmed, client_secret)


def check_payment(sessions: Sessions, gateway: BillingGateway, *, user_id: int, intent_id: str) -> PaymentOutcome:
    """After Stripe.js returns: retrieve the user's own PaymentIntent from Stripe and settle it. Blocking."""
    with sessions() as session:
        own_payment(session, user_id=user_id, intent_id=intent_id)
    intent = _read_back(gateway, intent_id)
    if intent is None:  # 3-D Secure may have completed: the payer must not pay again before we know
        return PaymentOutcome("pending", IN_DOUBT)
    outcome = _settle(sessions, user_id, intent, client_secret="")
    if outcome.status == "requires_action":
        return PaymentOutcome("failed", "The payment was not completed. Please try again.")
    return outcome


def settle_open_payments(sessions: Sessions, gateway: BillingGateway, *, user_id: int) -> PaymentOutcome | None:
    """Read the user's recent open payments back from Stripe and settle them. Blocking.

    For when Stripe's answer never reached the app (a lost answer to a confirmation, a 3-D Secure page closed
    before it reported, a payment still processing) and no webhook told it either. Only PaymentIntents the app
    created for this user are read, by the ids on the user's own rows. Returns "pending" when one of them may
    still be charged (Stripe says processing, or could not be asked): no other payment may start then;
    "granted" when one went through; None when nothing is open.
    """
    since = utcnow() - timedelta(days=OPEN_PAYMENTS_DAYS)
    with sessions() as session:
        intent_ids = session.scalars(
            select(col(Payment.stripe_payment_intent_id))
            .where(
                col(Payment.user_id) == user_id,
                col(Payment.status).in_(OPEN_STATUSES),
                col(Payment.created_at) >= since,
            )
            .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
            .limit(OPEN_PAYMENTS_CHECKED)
        ).all()
    outcomes = []
    for intent_id in intent_ids:
        if (intent := _read_back(gateway, intent_id)) is None:
            return PaymentOutcome("pending", IN_DOUBT)  # the others would wait for Stripe in vain too
        outcomes.append(_settle(sessions, user_id, intent, client_secret=""))
    if pending := [outcome for outcome in outcomes if outcome.status == "pending"]:
        return pending[0]
    if any(outcome.status == "granted" for outcome in outcomes):
        return PaymentOutcome("granted", EARLIER_GRANTED)
    return None


def _read_back(gateway: BillingGateway, intent_id: str) -> Intent | None:
    """Stripe's current view of a PaymentIntent, or None when Stripe cannot be reached."""
    try:
        return gateway.payment(intent_id)
    except PaymentUnavailableError:
        return None


def _settle(sessions: Sessions, user_id: int, intent: Intent, client_secret: str) -> PaymentOutcome:
    with sessions() as session:
        applied = apply_intent(session, own_payment(session, user_id=user_id, intent_id=intent.id), intent)
    if applied == "mismatch":
        return PaymentOutcome("failed", "This payment does not match the membership price. Please contact an admin.")
    status = intent.payment_status
    if status == "succeeded":
        return PaymentOutcome("granted")
    if status == "requires_action":
        return PaymentOutcome("requires_action", intent_id=intent.id, client_secret=client_secret)
    if status == "processing":
        return PaymentOutcome("pending", PROCESSING)
    return PaymentOutcome(
        "failed", intent.failure or ("The payment was canceled." if status == "canceled" else DECLINED)
    )
