"""The /membership page's events, called directly as the browser's would be, with Stripe (localstripe, or a
server that never answers, or none at all) behind the app's own gateway, on this test's own database."""

import re
from functools import partial

import pytest
import requests
from sqlalchemy import select

from projectalgo import billing, members
from projectalgo.db import session_scope
from projectalgo.models import Membership, Payment, User
from projectalgo.pages.membership import CARD_NOT_CHECKED, SOMETHING_WRONG, MembershipState, why_sent_here
from projectalgo.runtime import services
from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_PUBLISHABLE_KEY, TEST_STRIPE_SECRET_KEY
from tests.factories import grant_membership, make_admin, make_member
from tests.support.cards import THREE_D_SECURE, VISA, authenticate, enter_card
from tests.support.network import closed_port_url, silent_server
from tests.support.states import call, signed_in_state, visit


@pytest.fixture
def stripe_at(engine, monkeypatch):
    """Build the app's services on this test's database with Stripe's API at the URL given."""

    def use(api_base: str):
        monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
        monkeypatch.setenv("DATABASE_URL", str(engine.url))
        monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
        monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:3999")
        monkeypatch.setenv("STRIPE_SECRET_KEY", TEST_STRIPE_SECRET_KEY)
        monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", TEST_STRIPE_PUBLISHABLE_KEY)
        monkeypatch.setenv("STRIPE_API_BASE", api_base)
        services.cache_clear()
        return services().payments

    yield use
    services.cache_clear()


def _rows(engine, model, user_id):
    with session_scope(engine) as session:
        return session.scalars(select(model).where(model.user_id == user_id)).all()


def _moderator(engine):
    member = make_member(engine)
    with session_scope(engine) as session:
        return members.change_role(session, user=session.get(User, member.id), role="moderator", grant=True)


@pytest.mark.parametrize("make_exempt", [make_admin, _moderator], ids=["admin", "moderator"])
def test_start_payment_does_nothing_for_admins_and_moderators(engine, stripe_at, make_exempt):
    with silent_server() as stripe_api:  # would count any call to Stripe (and never answer it)
        stripe_at(stripe_api.url)
        user = make_exempt(engine)
        state = signed_in_state(MembershipState, user)
        call(state, MembershipState.open_membership)
        assert call(state, MembershipState.start_payment) is None
        assert stripe_api.connections == 0
    assert (state.paying, state.pay_error, state.pay_notice) == (False, "", "")
    assert state.membership_exempt and not _rows(engine, Payment, user.id)


def test_opening_the_page_settles_a_payment_whose_3d_secure_page_never_reported_back(engine, stripe_at, localstripe):
    gateway = stripe_at(localstripe.url)
    member = make_member(engine)
    setup_id, secret = gateway.start_card_setup(user_id=member.id)
    enter_card(localstripe.url, secret, THREE_D_SECURE)
    price = services().settings.membership_price
    sessions = partial(session_scope, engine)
    outcome = billing.pay_with_card_setup(
        sessions, gateway, user_id=member.id, setup_id=setup_id, price=price, currency="usd"
    )
    assert outcome.status == "requires_action"
    authenticate(localstripe.url, outcome.client_secret)  # completed at Stripe; then the tab was closed

    state = signed_in_state(MembershipState, member)
    script = call(state, MembershipState.open_membership)
    assert state.pay_notice == billing.EARLIER_GRANTED and state.pay_error == ""
    assert state.membership_ends_at and [p["status"] for p in state.payments] == ["Paid"]
    assert len(_rows(engine, Membership, member.id)) == 1
    assert state.member_active and state.payments_configured and state.price == "499.00"
    assert "mountCard" in str(script)
    # The page's own grant is not a change of user for the tab: the next event keeps what the page shows.
    call(state, MembershipState.card_field_ready, {})
    assert state.pay_notice == billing.EARLIER_GRANTED and [p["status"] for p in state.payments] == ["Paid"]


def test_while_stripe_cannot_say_whether_a_payment_went_through_no_other_starts(engine, stripe_at):
    stripe_at(closed_port_url())
    member = make_member(engine)
    intent = billing.Intent("pi_in_doubt", "requires_confirmation", 49_900, "usd", str(member.id))
    with session_scope(engine) as session:  # confirmed, but Stripe's answer never came back
        billing.record_payment(session, user_id=member.id, intent=intent)
    state = signed_in_state(MembershipState, member)
    call(state, MembershipState.open_membership)
    assert state.pay_notice == billing.IN_DOUBT and state.pay_error == ""

    state._setup_id, state.paying = "seti_from_this_page", True  # a card set up meanwhile, then "Pay"
    assert call(state, MembershipState.card_set_up, {"error": ""}) is None
    assert (state.paying, state.pay_notice) == (False, billing.IN_DOUBT)
    assert [p.stripe_payment_intent_id for p in _rows(engine, Payment, member.id)] == ["pi_in_doubt"]


def test_an_unexpected_error_while_paying_stops_the_spinner_and_says_what_to_do(engine, stripe_at, localstripe):
    gateway = stripe_at(localstripe.url)
    member = make_member(engine)
    state = signed_in_state(MembershipState, member)
    call(state, MembershipState.open_membership)
    state._setup_id, secret = gateway.start_card_setup(user_id=member.id)
    enter_card(localstripe.url, secret, VISA)
    state.paying = True
    with engine.begin() as connection:  # the database refuses the payment row
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_payments BEFORE INSERT ON payments BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    assert call(state, MembershipState.card_set_up, {"error": ""}) is None
    assert (state.paying, state.pay_error, state.pay_notice) == (False, SOMETHING_WRONG, "")
    assert not _rows(engine, Membership, member.id)


# Card set-ups are limited per user, across tabs (issue 12)


def _setup_intents(localstripe_url):
    """Every SetupIntent localstripe holds (shared by the whole test session), by id."""
    found, after = {}, None
    while True:
        params = {"limit": 100, **({"starting_after": after} if after else {})}
        headers = {"Authorization": f"Bearer {TEST_STRIPE_SECRET_KEY}"}
        page = requests.get(f"{localstripe_url}/v1/setup_intents", params=params, headers=headers, timeout=10).json()
        found |= {s["id"]: s for s in page["data"]}
        if not page["has_more"] or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def test_start_payment_creates_at_most_a_few_card_setups_per_user_across_tabs(engine, stripe_at, localstripe):
    stripe_at(localstripe.url)
    member, other = make_member(engine), make_member(engine)
    before = set(_setup_intents(localstripe.url))
    tabs = [signed_in_state(MembershipState, member) for _ in range(3)]
    started = []
    for n in range(billing.CARD_SETUPS_PER_WINDOW):
        tab = tabs[n % len(tabs)]
        call(tab, MembershipState.open_membership)  # a reload: nothing of an earlier click is kept
        script = call(tab, MembershipState.start_payment)
        assert "setUpCard" in str(script) and tab.paying and tab.pay_error == ""
        started.append(tab._setup_id)
    new = {i: s for i, s in _setup_intents(localstripe.url).items() if i not in before}
    assert set(new) == set(started) and {s["metadata"]["user_id"] for s in new.values()} == {str(member.id)}

    for tab in [*tabs, signed_in_state(MembershipState, member)]:  # one more click, in any tab, old or new
        call(tab, MembershipState.open_membership)
        assert call(tab, MembershipState.start_payment) is None
        assert not tab.paying and tab._setup_id == ""
        assert f"You have started {billing.CARD_SETUPS_PER_WINDOW} payments within an hour" in tab.pay_error
        assert "minutes before trying again" in tab.pay_error
    assert set(_setup_intents(localstripe.url)) - before == set(started)

    someone_else = signed_in_state(MembershipState, other)  # counts for themselves
    call(someone_else, MembershipState.open_membership)
    assert "setUpCard" in str(call(someone_else, MembershipState.start_payment))


def test_a_payer_at_the_limit_can_still_pay_with_the_card_set_up_they_started(engine, stripe_at, localstripe):
    stripe_at(localstripe.url)
    member = make_member(engine)
    tab = signed_in_state(MembershipState, member)
    for _ in range(billing.CARD_SETUPS_PER_WINDOW):
        call(tab, MembershipState.open_membership)
        script = str(call(tab, MembershipState.start_payment))
    (secret,) = set(re.findall(r"seti_\w+_secret_\w+", script))  # what the browser received with the last click
    assert secret.startswith(tab._setup_id)
    enter_card(localstripe.url, secret, VISA)
    assert "/dashboard" in str(call(tab, MembershipState.card_set_up, {"error": ""}))
    assert len(_rows(engine, Membership, member.id)) == 1


# Crafted arguments from the browser (issue 12)

CRAFTED_RESULTS = [None, "ok", 7, True, [], ["error"], {}, {"error": None}, {"error": ["x"]}, {"error": {"a": 1}},
                   {"error": "e" * 1_000_000}, {"other": "x"}]  # fmt: skip


@pytest.mark.parametrize("handler", ["card_field_ready", "card_set_up", "payment_returned"])
def test_crafted_stripe_js_results_never_raise_nor_charge(engine, stripe_at, handler):
    with silent_server() as stripe_api:  # would count any call to Stripe (and never answer it)
        stripe_at(stripe_api.url)
        member = make_member(engine)
        state = signed_in_state(MembershipState, member)
        for result in CRAFTED_RESULTS:
            state.pay_error = ""
            assert call(state, getattr(MembershipState, handler), result) is None
            assert len(state.pay_error) <= 300 and not state.paying
        assert stripe_api.connections == 0  # nothing was started from this page, so nothing was charged
    assert not _rows(engine, Payment, member.id)


def test_only_stripe_js_text_errors_are_shown_to_the_payer(engine, stripe_at):
    with silent_server() as stripe_api:
        stripe_at(stripe_api.url)
        state = signed_in_state(MembershipState, make_member(engine))
        for result, shown in [
            ({"error": "Stripe.js could not be loaded."}, "Stripe.js could not be loaded."),
            ({"error": "e" * 1_000_000}, "e" * 300),
            ({"error": {"message": "x" * 1000}}, CARD_NOT_CHECKED),
            ({"error": ["x"]}, CARD_NOT_CHECKED),
            ({"error": ""}, ""),
            ("garbage", ""),
        ]:
            state.pay_error = ""
            call(state, MembershipState.card_field_ready, result)
            assert state.pay_error == shown
            if shown:  # the same error closing a card set-up this page started: shown, nothing charged
                state._setup_id, state.paying, state.pay_error = "seti_started_here", True, ""
                assert call(state, MembershipState.card_set_up, result) is None
                assert (state.pay_error, state.paying, state._setup_id) == (shown, False, "")
        assert stripe_api.connections == 0


# What the page says is true for its viewer (issue 13)


def _opened(user, path="/membership"):
    state = signed_in_state(MembershipState, user)
    visit(state, path)
    call(state, MembershipState.open_membership)
    return state


def test_a_non_member_sent_here_by_a_members_page_reads_why(app_services):
    member = make_member(app_services)
    for came_from, why in [
        ("%2Fdashboard", "The dashboard is for members with an active membership"),
        ("/strategies/", "Strategies and their charts are for members"),
        ("%2Fstrategies%2F12", "Strategies and their charts are for members"),
        ("/accounts", "Brokerage accounts are for members"),
    ]:
        assert _opened(member, f"/membership?from={came_from}").why_here.startswith(why), came_from
    for came_from in [
        "",
        "/admin",
        "/dashboardx",
        "https%3A%2F%2Fexample.com%2Fdashboard",
        "%3Cscript%3E",
        "/strategies/x",
    ]:
        assert _opened(member, f"/membership?from={came_from}").why_here == "", came_from
    assert _opened(member).why_here == ""

    grant_membership(app_services, member)  # a member sees no such reason, whatever the link says
    assert _opened(member, "/membership?from=%2Fdashboard").why_here == ""


def test_why_sent_here_takes_only_text_it_knows():
    assert why_sent_here("/dashboard/") == why_sent_here("/dashboard") != ""
    assert [why_sent_here(value) for value in (None, 7, ["/dashboard"], "/dashboard/../admin")] == ["", "", "", ""]


def test_without_stripe_the_page_knows_who_is_a_member(app_services):
    assert services().payments is None
    newcomer, paid = make_member(app_services), make_member(app_services)
    grant_membership(app_services, paid)
    assert (_opened(newcomer).member_active, _opened(newcomer).payments_configured) == (False, False)
    assert _opened(paid).member_active and _opened(paid).membership_ends_at
    assert _opened(make_admin(app_services)).member_active
