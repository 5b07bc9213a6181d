"""Paying for a membership in chromium, with localstripe's Stripe.js card field on the /membership page."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from projectalgo import billing, memberships
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import Membership, Payment
from tests.conftest import TEST_STRIPE_SECRET_KEY
from tests.factories import PASSWORD, make_admin, make_member
from tests.support.cards import DECLINED_AT_CHARGE, DECLINED_AT_SETUP, THREE_D_SECURE, VISA
from tests.support.webhooks import wait_for_recorded_event

pytestmark = pytest.mark.e2e


def _sign_in_to_membership(page, app_server, email):
    page.goto(f"{app_server.url}/login?next=%2Fmembership")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/membership/?(\?from=[^&]*)?$"))


def _enter_card(page, number):
    # localstripe's Stripe.js renders plain inputs named by their placeholder (real Stripe uses an iframe).
    field = page.locator("#card-element")
    for placeholder, value in [("number", number), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123")]:
        field.locator(f"input[placeholder={placeholder}]").fill(value)
    field.locator("input[placeholder=postal_code]").fill("12345")


def _rows(engine, model, user_id):
    with session_scope(engine) as session:
        return session.scalars(select(model).where(model.user_id == user_id)).all()


def test_a_member_pays_by_card_and_lands_on_the_dashboard(app_server, app_engine, localstripe, page):
    frames = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: frames.append(str(frame))))
    member = make_member(app_engine, name="Paula Payer")
    _sign_in_to_membership(page, app_server, member.email)
    page.get_by_text("499.00 USD").first.wait_for()
    _enter_card(page, VISA)
    page.get_by_role("button", name="Pay 499.00 USD").click()
    page.wait_for_url(re.compile(r"/dashboard/?$"))
    page.get_by_role("heading", name="Dashboard").wait_for()
    assert page.locator("#signed-in-name").inner_text() == "Paula Payer"

    [membership] = _rows(app_engine, Membership, member.id)
    assert membership.source == "stripe" and membership.ends_at - membership.starts_at == timedelta(days=365)
    [payment] = _rows(app_engine, Payment, member.id)
    assert (payment.amount, payment.currency, payment.status) == (49_900, "usd", "succeeded")
    assert payment.method == "visa •••• 4242" and payment.membership_id == membership.id
    # What the server sent this browser: the card set-up's client secret (Stripe's design), nothing else of Stripe's.
    sent = "".join(frames)
    assert "seti_" in sent and TEST_STRIPE_SECRET_KEY not in sent
    assert payment.stripe_payment_intent_id not in sent and "pm_" not in sent

    page.goto(f"{app_server.url}/membership")
    page.locator("#membership-state").get_by_text("Active until").wait_for()
    page.locator("#payments").get_by_text("Paid", exact=True).wait_for()
    assert "499.00 USD" in page.locator("#payments").inner_text()
    # localstripe's own webhook for this payment arrives about a second later: it must not grant again.
    wait_for_recorded_event(app_engine, localstripe.url, payment.stripe_payment_intent_id, "payment_intent.succeeded")
    assert len(_rows(app_engine, Membership, member.id)) == 1


@pytest.mark.parametrize("card", [DECLINED_AT_SETUP, DECLINED_AT_CHARGE])
def test_a_declined_card_shows_stripes_message_and_grants_nothing(app_server, app_engine, page, card):
    member = make_member(app_engine)
    _sign_in_to_membership(page, app_server, member.email)
    _enter_card(page, card)
    page.get_by_role("button", name="Pay 499.00 USD").click()
    page.get_by_role("alert").get_by_text("Your card was declined.").wait_for()
    assert re.search(r"/membership/?$", page.url)
    page.locator("#membership-state").get_by_text("no membership yet").wait_for()
    assert not _rows(app_engine, Membership, member.id)
    with session_scope(app_engine) as session:
        statuses = [view.status for view in billing.payment_history(session, member.id)]
    if card == DECLINED_AT_CHARGE:  # a PaymentIntent was made and refused: it is listed as declined
        assert statuses == ["failed"]
        page.locator("#payments").get_by_text("Declined").wait_for()
    else:  # Stripe refused the card before any PaymentIntent
        assert statuses == []


@pytest.mark.parametrize("authenticated", [True, False])
def test_3d_secure_is_completed_by_stripe_js_and_the_result_read_back_from_stripe(
    app_server, app_engine, page, authenticated
):
    member = make_member(app_engine)
    _sign_in_to_membership(page, app_server, member.email)
    _enter_card(page, THREE_D_SECURE)
    page.get_by_role("button", name="Pay 499.00 USD").click()
    # localstripe's stand-in for the bank's page, once for the card set-up and once for the payment.
    page.get_by_role("button", name="Complete authentication").click()
    choice = "Complete authentication" if authenticated else "Fail authentication"
    page.get_by_role("button", name=choice).click()
    if authenticated:
        page.wait_for_url(re.compile(r"/dashboard/?$"))
        assert len(_rows(app_engine, Membership, member.id)) == 1
    else:
        page.get_by_role("alert").get_by_text("failed authentication").wait_for()
        assert not _rows(app_engine, Membership, member.id)
        [payment] = _rows(app_engine, Payment, member.id)
        assert payment.status == "failed" and payment.granted_at is None


def test_an_admin_is_never_asked_to_pay(app_server, app_engine, page):
    admin = make_admin(app_engine)
    _sign_in_to_membership(page, app_server, admin.email)
    page.locator("#membership-state").get_by_text("never need to pay").wait_for()
    assert page.get_by_role("button", name=re.compile("^Pay")).count() == 0


def test_when_the_payment_script_cannot_load_the_page_says_so(app_server, app_engine, page):
    page.route(re.compile(r"/payments\.js"), lambda route: route.abort())
    member = make_member(app_engine)
    _sign_in_to_membership(page, app_server, member.email)
    page.get_by_role("alert").get_by_text("The payment script could not be loaded.").wait_for()


def test_a_non_member_sent_from_the_dashboard_reads_why_and_whose_membership_ended_reads_when(
    app_server, app_engine, page
):
    member = make_member(app_engine)
    _sign_in_to_membership(page, app_server, member.email)
    page.goto(f"{app_server.url}/membership?from=%2Fdashboard")
    expect(page.locator("#why-here")).to_have_text(
        "The dashboard is for members with an active membership: it opens as soon as yours is."
    )
    expect(page.locator("#membership-state")).to_have_text("You have no membership yet.")
    assert "not part of it" in page.locator("#invite-rule").inner_text()  # inviting is no paid benefit
    page.goto(f"{app_server.url}/membership?from=%2Fprofile%3Cb%3E")  # not a members' page: nothing said
    expect(page.locator("#membership-state")).to_have_text("You have no membership yet.")
    assert page.locator("#why-here").count() == 0

    with session_scope(app_engine) as session:  # a year that has run out
        memberships.grant(session, user_id=member.id, days=1, source="admin")
        session.execute(update(Membership).where(Membership.user_id == member.id).values(ends_at=utcnow()))
    page.goto(f"{app_server.url}/membership?from=%2Fstrategies%2F7")
    expect(page.locator("#membership-state")).to_contain_text("Your membership ended on ")
    expect(page.locator("#why-here")).to_contain_text("Strategies and their charts are for members")
    expect(page.get_by_role("heading", name="Pay for a year")).to_be_visible()

    with session_scope(app_engine) as session:
        memberships.grant(session, user_id=member.id, days=30, source="admin")
    page.goto(f"{app_server.url}/membership?from=%2Fdashboard")
    expect(page.locator("#membership-state")).to_contain_text("Active until ")
    expect(page.get_by_role("heading", name="Add a year")).to_be_visible()
    assert page.locator("#why-here").count() == 0
