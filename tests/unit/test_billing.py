from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
from sqlalchemy import select

from projectalgo import billing, members, memberships
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.errors import DomainError, NotAllowedError, NotFoundError, RateLimitedError
from projectalgo.models import Attempt, Membership, Payment, User
from tests.factories import make_admin, make_member


def _status(engine, user_id):
    with session_scope(engine) as session:
        return memberships.status(session, session.get(User, user_id))


def test_a_new_member_has_no_membership_and_admins_and_moderators_are_exempt(engine):
    member = make_member(engine)
    assert not _status(engine, member.id).active
    admin = make_admin(engine)
    assert _status(engine, admin.id).active and _status(engine, admin.id).exempt
    with session_scope(engine) as session:
        members.change_role(session, user=session.get(User, member.id), role="moderator", grant=True)
    assert _status(engine, member.id).exempt


def test_granting_starts_now_and_extending_starts_from_the_current_end(engine):
    member = make_member(engine)
    before = utcnow()
    with session_scope(engine) as session:
        first = memberships.grant(session, user_id=member.id, days=365, source="stripe")
    assert before <= first.starts_at <= utcnow()
    assert first.ends_at - first.starts_at == timedelta(days=365)
    with session_scope(engine) as session:
        second = memberships.grant(session, user_id=member.id, days=365, source="admin")
    assert second.starts_at == first.ends_at
    status = _status(engine, member.id)
    assert status.active and status.ends_at == first.ends_at + timedelta(days=365)


def test_an_ended_membership_is_not_extended_from_the_past(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        old = memberships.grant(session, user_id=member.id, days=1, source="admin")
        old.starts_at, old.ends_at = utcnow() - timedelta(days=3), utcnow() - timedelta(days=2)
        session.add(old)
    assert not _status(engine, member.id).active
    with session_scope(engine) as session:
        renewed = memberships.grant(session, user_id=member.id, days=30, source="admin")
    assert renewed.starts_at > utcnow() - timedelta(minutes=1)
    assert _status(engine, member.id).active


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"days": 0}, "between 1 and 3650"),
        ({"days": 3651}, "between 1 and 3650"),
        ({"source": "gift"}, "Unknown"),
        ({"user_id": 999_999}, "does not exist"),
    ],
)
def test_bad_grants_are_refused(engine, change, message):
    member = make_member(engine)
    with session_scope(engine) as session, pytest.raises(DomainError, match=message):
        memberships.grant(session, **({"user_id": member.id, "days": 30, "source": "admin"} | change))
    assert not _status(engine, member.id).active


# --- Payments: one PaymentIntent grants exactly one membership, whatever order things arrive in -----------

PRICE_CENTS = 49_900


def _intent(intent_id, user_id, status="succeeded", **change):
    fields = {"amount": PRICE_CENTS, "currency": "usd", "user_id": str(user_id), "failure": ""} | change
    return billing.Intent(id=intent_id, status=status, **fields)


def _paying_member(engine, intent_id):
    member = make_member(engine)
    with session_scope(engine) as session:
        billing.record_payment(
            session,
            user_id=member.id,
            intent=_intent(intent_id, member.id, "requires_confirmation"),
            method="visa •••• 4242",
            billing_details={"postal_code": "12345"},
        )
    return member


def _memberships(engine, user_id):
    with session_scope(engine) as session:
        return session.scalars(select(Membership).where(Membership.user_id == user_id)).all()


def _payment(engine, intent_id):
    with session_scope(engine) as session:
        return session.scalars(select(Payment).where(Payment.stripe_payment_intent_id == intent_id)).one()


def _event(engine, event_id, event_type, intent):
    with session_scope(engine) as session:
        return billing.handle_stripe_event(session, event_id=event_id, event_type=event_type, intent=intent)


def test_the_price_is_charged_in_cents():
    assert billing.amount_in_cents(Decimal("499.00")) == 49_900
    assert billing.amount_in_cents(Decimal("0.07")) == 7


def test_a_succeeded_payment_grants_365_days_once_and_records_the_membership(engine):
    member = _paying_member(engine, "pi_once")
    with session_scope(engine) as session:
        payment = billing.own_payment(session, user_id=member.id, intent_id="pi_once")
        assert billing.apply_intent(session, payment, _intent("pi_once", member.id)) == "granted"
    with session_scope(engine) as session:
        payment = billing.own_payment(session, user_id=member.id, intent_id="pi_once")
        assert billing.apply_intent(session, payment, _intent("pi_once", member.id)) == "already_granted"
    [membership] = _memberships(engine, member.id)
    assert membership.ends_at - membership.starts_at == timedelta(days=365) and membership.source == "stripe"
    payment = _payment(engine, "pi_once")
    assert payment.status == "succeeded" and payment.granted_at and payment.membership_id == membership.id
    assert payment.method == "visa •••• 4242" and payment.billing_details == {"postal_code": "12345"}


def test_paying_while_active_extends_from_the_current_end(engine):
    member = _paying_member(engine, "pi_extend")
    with session_scope(engine) as session:
        first = memberships.grant(session, user_id=member.id, days=30, source="admin")
    assert _event(engine, "evt_extend", "payment_intent.succeeded", _intent("pi_extend", member.id)) == "granted"
    assert _status(engine, member.id).ends_at == first.ends_at + timedelta(days=365)


def test_webhook_events_are_applied_once_and_never_undo_a_success(engine):
    member = _paying_member(engine, "pi_events")
    succeeded = _intent("pi_events", member.id)
    failed = _intent("pi_events", member.id, "requires_payment_method", failure="Your card was declined.")
    assert _event(engine, "evt_1", "payment_intent.succeeded", succeeded) == "granted"
    assert _event(engine, "evt_1", "payment_intent.succeeded", succeeded) == "duplicate"
    assert _event(engine, "evt_2", "payment_intent.succeeded", succeeded) == "already_granted"
    assert _event(engine, "evt_3", "payment_intent.payment_failed", failed) == "unchanged"
    assert len(_memberships(engine, member.id)) == 1
    assert _payment(engine, "pi_events").status == "succeeded"


def test_a_failure_is_recorded_and_a_later_success_still_grants(engine):
    member = _paying_member(engine, "pi_retry")
    failed = _intent("pi_retry", member.id, "requires_payment_method", failure="Your card was declined.")
    assert _event(engine, "evt_f", "payment_intent.payment_failed", failed) == "updated"
    assert _payment(engine, "pi_retry").status == "failed"
    assert not _memberships(engine, member.id)
    assert _event(engine, "evt_s", "payment_intent.succeeded", _intent("pi_retry", member.id)) == "granted"


@pytest.mark.parametrize(
    ("event_type", "change"),
    [
        ("payment_intent.succeeded", {"id": "pi_not_ours"}),  # no payment row: not a PaymentIntent we created
        ("payment_intent.succeeded", {"user_id": "999999"}),  # metadata names another user than the row's
        ("payment_intent.succeeded", {"user_id": ""}),
        ("charge.refunded", {}),  # an event type the app does not act on
    ],
)
def test_events_for_payments_we_did_not_create_are_ignored(engine, event_type, change):
    member = _paying_member(engine, "pi_ours")
    intent = _intent("pi_ours", member.id)
    intent = billing.Intent(**(vars(intent) | change))
    assert _event(engine, "evt_x", event_type, intent) == "ignored"
    assert _event(engine, "evt_x", event_type, intent) == "duplicate"
    assert not _memberships(engine, member.id)


def test_a_success_for_another_amount_grants_nothing(engine):
    member = _paying_member(engine, "pi_cheap")
    cheap = _intent("pi_cheap", member.id, amount=100)
    assert _event(engine, "evt_cheap", "payment_intent.succeeded", cheap) == "mismatch"
    assert not _memberships(engine, member.id) and _payment(engine, "pi_cheap").granted_at is None


def test_a_payment_is_only_ever_another_users_by_its_own_row(engine):
    member = _paying_member(engine, "pi_mine")
    other = make_member(engine)
    with session_scope(engine) as session, pytest.raises(NotFoundError, match="No such payment"):
        billing.own_payment(session, user_id=other.id, intent_id="pi_mine")
    with session_scope(engine) as session, pytest.raises(NotAllowedError, match="someone else"):
        billing.record_payment(session, user_id=other.id, intent=_intent("pi_mine", other.id))
    with session_scope(engine) as session:
        assert billing.payment_history(session, other.id) == []
        [view] = billing.payment_history(session, member.id)
    assert (view.amount, view.currency, view.status) == (Decimal("499.00"), "usd", "requires_confirmation")


def test_the_history_lists_the_users_payments_newest_first(engine):
    member = _paying_member(engine, "pi_old")
    with session_scope(engine) as session:
        billing.record_payment(session, user_id=member.id, intent=_intent("pi_new", member.id, "processing"))
        history = billing.payment_history(session, member.id)
    assert [view.status for view in history] == ["processing", "requires_confirmation"]


# Card set-ups per user (issue 12)


class CountingGateway:
    """A BillingGateway for the card set-up limit alone: counts the set-ups that reached it."""

    def __init__(self) -> None:
        self.started = 0

    def start_card_setup(self, *, user_id: int) -> tuple[str, str]:
        self.started += 1
        return f"seti_{user_id}_{self.started}", "secret"


def test_card_setups_are_limited_per_user_within_a_sliding_window(engine):
    """Counted in the database, so every tab and every worker shares the limit (Stripe itself is tested
    against localstripe in tests/integration/test_membership_states.py)."""
    sessions, gateway = partial(session_scope, engine), CountingGateway()
    for _ in range(billing.CARD_SETUPS_PER_WINDOW):
        billing.start_card_setup(sessions, gateway, user_id=7)
    with pytest.raises(RateLimitedError, match="wait 60 minutes") as refused:
        billing.start_card_setup(sessions, gateway, user_id=7)
    assert 3590 <= refused.value.retry_after_seconds <= 3600
    assert gateway.started == billing.CARD_SETUPS_PER_WINDOW  # the refused one never reached Stripe
    billing.start_card_setup(sessions, gateway, user_id=8)  # another user counts for themselves
    with session_scope(engine) as session:  # the oldest set-up ages out of the window
        oldest = session.scalars(select(Attempt).where(Attempt.key == "user:7").order_by(Attempt.id)).first()
        oldest.at -= billing.CARD_SETUP_WINDOW
    billing.start_card_setup(sessions, gateway, user_id=7)
    with pytest.raises(RateLimitedError):
        billing.start_card_setup(sessions, gateway, user_id=7)


def test_parallel_card_setups_never_pass_the_limit(engine):
    sessions, gateway = partial(session_scope, engine), CountingGateway()

    def start(_n: int) -> bool:
        try:
            billing.start_card_setup(sessions, gateway, user_id=7)
        except RateLimitedError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert sum(pool.map(start, range(12))) <= billing.CARD_SETUPS_PER_WINDOW
