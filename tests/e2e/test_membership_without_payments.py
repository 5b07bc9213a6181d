"""/membership in chromium on an app without Stripe (the DynamoDB app under test has no Stripe keys): what it
says is true for each viewer."""

import re

import pytest

from tests.factories import PASSWORD, grant_membership, make_admin, make_member

pytestmark = pytest.mark.e2e


def _membership_page_of(page, server, email):
    page.goto(f"{server.url}/login?next=%2Fmembership")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/membership/?$"))


def test_without_stripe_a_member_reads_until_when_and_a_newcomer_to_ask_an_admin(
    dynamo_app_server, dynamo_app_engine, browser
):
    paid = make_member(dynamo_app_engine, email="paid-no-stripe@example.com")
    grant_membership(dynamo_app_engine, paid, days=400)
    newcomer = make_member(dynamo_app_engine, email="new-no-stripe@example.com")
    admin = make_admin(dynamo_app_engine, email="admin-no-stripe@example.com")
    readings = {}
    for user in (paid, newcomer, admin):
        context = browser.new_context()
        page = context.new_page()
        _membership_page_of(page, dynamo_app_server, user.email)
        page.locator("#membership-state").wait_for()  # shown once the page has loaded for this viewer
        unconfigured = page.locator("#payments-not-configured")
        readings[user.email] = (
            page.locator("#membership-state").inner_text(),
            unconfigured.inner_text() if unconfigured.count() else "",
        )
        assert page.get_by_role("button", name=re.compile("^Pay")).count() == 0
        context.close()

    state, callout = readings[paid.email]
    assert state.startswith("Active until ") and "ask an admin to grant" not in callout
    assert callout == "Payments are not configured on this server: to extend your membership, ask an admin."
    state, callout = readings[newcomer.email]
    assert state == "You have no membership yet."
    assert callout == "Payments are not configured on this server: ask an admin to grant you a membership."
    assert readings[admin.email] == ("Included with your role: you never need to pay.", "")
