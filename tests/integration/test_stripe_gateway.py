"""The Stripe gateway and the payment flow against localstripe (a real HTTP server speaking Stripe's API)."""

import dataclasses
import logging
import time
from functools import partial

import pytest
import stripe
from sqlalchemy import select

from projectalgo import billing, memberships
from projectalgo.db import session_scope
from projectalgo.errors import NotFoundError
from projectalgo.integrations import stripe as stripe_integration
from projectalgo.integrations.stripe import StripeGateway
from projectalgo.models import Membership, Payment, User
from projectalgo.settings import load_settings
from tests.conftest import TEST_STRIPE_SECRET_KEY
from tests.factories import make_member
from tests.support.cards import DECLINED_AT_CHARGE, DECLINED_AT_SETUP, THREE_D_SECURE, VISA, authenticate, enter_card
from tests.support.gateways import AnswerLostGateway
from tests.support.network import closed_port_url, silent_server


@pytest.fixture(scope="module")
def settings(app_env):
    return load_settings(app_env)


@pytest.fixture(scope="module")
def gateway(settings):
    return StripeGateway(settings)


def _set_up_card(gateway, localstripe, user_id, number):
    setup_id, secret = gateway.start_card_setup(user_id=user_id)
    assert secret.startswith(f"{setup_id}_secret_")
    enter_card(localstripe.url, secret, number)
    return setup_id


def test_a_card_set_up_in_the_browser_is_read_back_server_side(gateway, localstripe):
    setup = gateway.card_setup(_set_up_card(gateway, localstripe, 7, VISA))
    assert (setup.status, setup.user_id) == ("succeeded", "7")
    assert setup.payment_method.startswith("pm_")
    assert setup.method == "visa •••• 4242"
    assert setup.billing_details == {"postal_code": "12345"}


def test_a_card_stripe_declines_at_set_up_never_becomes_a_payment_method(gateway, localstripe):
    setup_id, secret = gateway.start_card_setup(user_id=7)
    response = enter_card(localstripe.url, secret, DECLINED_AT_SETUP)
    assert response.status_code == 402 and response.json()["error"]["message"] == "Your card was declined."
    setup = gateway.card_setup(setup_id)
    assert setup.status != "succeeded"


def test_a_payment_intent_is_created_for_the_price_and_confirmed(gateway, localstripe):
    setup = gateway.card_setup(_set_up_card(gateway, localstripe, 8, VISA))
    intent, secret = gateway.create_payment(
        user_id=8, amount=49_900, currency="usd", payment_method=setup.payment_method, idempotency_key="k-" + setup.id
    )
    assert secret.startswith(f"{intent.id}_secret_")
    assert (intent.status, intent.amount, intent.currency, intent.user_id) == (
        "requires_confirmation",
        49_900,
        "usd",
        "8",
    )
    assert gateway.confirm_payment(intent.id).status == "succeeded"
    assert gateway.payment(intent.id).payment_status == "succeeded"


def test_a_declined_charge_comes_back_as_a_failed_intent_with_stripes_message(gateway, localstripe):
    setup = gateway.card_setup(_set_up_card(gateway, localstripe, 9, DECLINED_AT_CHARGE))
    intent, _ = gateway.create_payment(
        user_id=9, amount=49_900, currency="usd", payment_method=setup.payment_method, idempotency_key="k-" + setup.id
    )
    failed = gateway.confirm_payment(intent.id)
    assert (failed.payment_status, failed.failure) == ("failed", "Your card was declined.")


def test_a_request_stripe_refuses_is_logged_as_an_error_and_not_called_temporary(gateway, settings, caplog):
    caplog.set_level(logging.WARNING, logger="projectalgo.stripe")
    unauthenticated = StripeGateway(dataclasses.replace(settings, stripe_secret_key="sk_"))  # localstripe: 401
    for refused in (lambda: gateway.payment("pi_does_not_exist"), lambda: unauthenticated.payment("pi_x")):
        with pytest.raises(billing.PaymentProviderError, match="problem on our side"):
            refused()
    assert [(r.levelname, r.getMessage().split()[1]) for r in caplog.records] == [
        ("ERROR", "error=InvalidRequestError"),
        ("ERROR", "error=AuthenticationError"),
    ]


def test_a_stripe_that_cannot_be_reached_is_a_temporary_failure_logged_as_a_warning(settings, caplog):
    caplog.set_level(logging.WARNING, logger="projectalgo.stripe")
    unreachable = StripeGateway(dataclasses.replace(settings, stripe_api_base=closed_port_url()))
    with pytest.raises(billing.PaymentUnavailableError, match="try again in a few minutes"):
        unreachable.payment("pi_x")
    [record] = caplog.records
    assert record.levelname == "WARNING" and "error=APIConnectionError" in record.getMessage()


def test_a_stripe_that_never_answers_gives_up_after_the_timeout_and_one_retry(settings, monkeypatch):
    assert stripe_integration.TIMEOUT_SECONDS <= 15 and stripe_integration.RETRIES <= 1  # not 80 s, 3 times
    monkeypatch.setattr(stripe_integration, "TIMEOUT_SECONDS", 1.0)
    with silent_server() as silent:
        hanging = StripeGateway(dataclasses.replace(settings, stripe_api_base=silent.url))
        started = time.monotonic()
        with pytest.raises(billing.PaymentUnavailableError):
            hanging.payment("pi_x")
        assert time.monotonic() - started < 30  # two 1 s timeouts, not Stripe's default of 80 s three times
        assert silent.connections == 1 + stripe_integration.RETRIES


def test_paying_with_a_set_up_card_grants_one_membership_and_checking_again_changes_nothing(
    gateway, localstripe, engine, settings
):
    member = make_member(engine)
    sessions = partial(session_scope, engine)
    setup_id = _set_up_card(gateway, localstripe, member.id, VISA)
    pay = partial(billing.pay_with_card_setup, sessions, gateway, price=settings.membership_price, currency="usd")
    assert pay(user_id=member.id, setup_id=setup_id) == billing.PaymentOutcome("granted")
    with session_scope(engine) as session:
        payment = session.scalars(select(Payment).where(Payment.user_id == member.id)).one()
        assert (payment.amount, payment.currency, payment.status) == (49_900, "usd", "succeeded")
        assert payment.method == "visa •••• 4242" and payment.granted_at is not None
    intent_id = payment.stripe_payment_intent_id
    check = partial(billing.check_payment, sessions, gateway, intent_id=intent_id)
    assert check(user_id=member.id) == billing.PaymentOutcome("granted")
    with pytest.raises(NotFoundError, match="No such payment"):
        check(user_id=make_member(engine).id)
    with session_scope(engine) as session:
        assert len(session.scalars(select(Membership).where(Membership.user_id == member.id)).all()) == 1


def test_a_declined_charge_is_recorded_and_grants_nothing(gateway, localstripe, engine, settings):
    member = make_member(engine)
    setup_id = _set_up_card(gateway, localstripe, member.id, DECLINED_AT_CHARGE)
    outcome = billing.pay_with_card_setup(
        partial(session_scope, engine),
        gateway,
        user_id=member.id,
        setup_id=setup_id,
        price=settings.membership_price,
        currency="usd",
    )
    assert outcome == billing.PaymentOutcome("failed", "Your card was declined.")
    with session_scope(engine) as session:
        assert [p.status for p in billing.payment_history(session, member.id)] == ["failed"]
        assert not memberships.status(session, session.get(User, member.id)).active


def test_a_card_set_up_for_someone_else_or_not_completed_is_not_charged(gateway, localstripe, engine, settings):
    member = make_member(engine)
    pay = partial(
        billing.pay_with_card_setup,
        partial(session_scope, engine),
        gateway,
        user_id=member.id,
        price=settings.membership_price,
        currency="usd",
    )
    someone_elses = _set_up_card(gateway, localstripe, member.id + 1000, VISA)
    unfinished, _ = gateway.start_card_setup(user_id=member.id)
    for setup_id in (someone_elses, unfinished):
        assert pay(setup_id=setup_id).status == "failed"
    with session_scope(engine) as session:
        assert billing.payment_history(session, member.id) == []


def test_a_payment_stripe_reports_for_another_amount_than_recorded_is_not_claimed(gateway, localstripe, engine):
    member = make_member(engine)
    setup = gateway.card_setup(_set_up_card(gateway, localstripe, member.id, VISA))
    intent, _ = gateway.create_payment(
        user_id=member.id, amount=100, currency="usd", payment_method=setup.payment_method, idempotency_key=setup.id
    )
    with session_scope(engine) as session:  # the row says the price; Stripe's PaymentIntent says 1.00
        billing.record_payment(session, user_id=member.id, intent=dataclasses.replace(intent, amount=49_900))
    gateway.confirm_payment(intent.id)
    sessions = partial(session_scope, engine)
    outcome = billing.check_payment(sessions, gateway, user_id=member.id, intent_id=intent.id)
    assert outcome.status == "failed" and "does not match" in outcome.message
    with session_scope(engine) as session:
        assert not memberships.status(session, session.get(User, member.id)).active


# --- Answers that never arrive: the payment is read back from Stripe, and never paid twice -----------------


def _pay(gateway, engine, member, setup_id):
    return billing.pay_with_card_setup(
        partial(session_scope, engine),
        gateway,
        user_id=member.id,
        setup_id=setup_id,
        price=load_settings({}).membership_price,
        currency="usd",
    )


def _payments_and_memberships(engine, user_id):
    with session_scope(engine) as session:
        payments = session.scalars(select(Payment.status).where(Payment.user_id == user_id)).all()
        memberships = session.scalars(select(Membership.id).where(Membership.user_id == user_id)).all()
    return payments, len(memberships)


def test_a_payment_stripe_took_although_its_answer_was_lost_is_read_back_and_granted(gateway, localstripe, engine):
    member = make_member(engine)
    outcome = _pay(AnswerLostGateway(gateway), engine, member, _set_up_card(gateway, localstripe, member.id, VISA))
    assert outcome == billing.PaymentOutcome("granted")
    assert _payments_and_memberships(engine, member.id) == (["succeeded"], 1)


def test_when_stripe_cannot_be_asked_either_the_payer_is_told_not_to_pay_again_and_cannot(gateway, localstripe, engine):
    member = make_member(engine)
    lost = AnswerLostGateway(gateway, down_after_confirm=True)
    first = _pay(lost, engine, member, _set_up_card(gateway, localstripe, member.id, VISA))
    assert first == billing.PaymentOutcome("pending", billing.IN_DOUBT)
    assert "do not pay again" in first.message
    assert _payments_and_memberships(engine, member.id) == (["requires_confirmation"], 0)

    second_card = _set_up_card(gateway, localstripe, member.id, VISA)
    assert _pay(lost, engine, member, second_card) == first  # no second PaymentIntent while the first is in doubt
    assert _payments_and_memberships(engine, member.id) == (["requires_confirmation"], 0)

    lost.down = False  # Stripe answers again: the first payment is found to have gone through
    assert _pay(lost, engine, member, second_card) == billing.PaymentOutcome("granted", billing.EARLIER_GRANTED)
    assert _payments_and_memberships(engine, member.id) == (["succeeded"], 1)
    assert billing.settle_open_payments(partial(session_scope, engine), lost, user_id=member.id) is None


def test_a_3d_secure_payment_whose_page_never_reported_back_is_settled_later(gateway, localstripe, engine):
    member = make_member(engine)
    outcome = _pay(gateway, engine, member, _set_up_card(gateway, localstripe, member.id, THREE_D_SECURE))
    assert outcome.status == "requires_action"
    assert authenticate(localstripe.url, outcome.client_secret).status_code == 200  # ...and the page closes
    assert _payments_and_memberships(engine, member.id) == (["requires_action"], 0)
    settled = billing.settle_open_payments(partial(session_scope, engine), gateway, user_id=member.id)
    assert settled == billing.PaymentOutcome("granted", billing.EARLIER_GRANTED)
    assert _payments_and_memberships(engine, member.id) == (["succeeded"], 1)


def test_a_processing_payment_is_pending_until_stripe_settles_it(gateway, localstripe, engine):
    """localstripe processes a refused SEPA debit for half a second before it fails (cards settle at once)."""
    member = make_member(engine)
    client = stripe.StripeClient(TEST_STRIPE_SECRET_KEY, base_addresses={"api": localstripe.url})
    iban = {"iban": "DE62370400440532013001"}  # localstripe's refused account
    debit = client.v1.payment_methods.create(params={"type": "sepa_debit", "sepa_debit": iban})
    intent, _ = gateway.create_payment(
        user_id=member.id, amount=49_900, currency="usd", payment_method=debit.id, idempotency_key=debit.id
    )
    with session_scope(engine) as session:
        payment = billing.record_payment(session, user_id=member.id, intent=intent)
        assert billing.apply_intent(session, payment, gateway.confirm_payment(intent.id)) == "updated"
    assert _payments_and_memberships(engine, member.id) == (["processing"], 0)
    outcomes, deadline = [], time.monotonic() + 10
    while not outcomes or outcomes[-1] is not None:
        assert time.monotonic() < deadline
        outcomes.append(billing.settle_open_payments(partial(session_scope, engine), gateway, user_id=member.id))
        time.sleep(0.1)
    assert outcomes[0] == billing.PaymentOutcome("pending", billing.PROCESSING)  # no new payment may start
    assert set(outcomes[:-1]) == {outcomes[0]}
    assert _payments_and_memberships(engine, member.id) == (["failed"], 0)
