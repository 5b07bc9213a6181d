"""Accounts, strategies and a token shown once, in the browser."""

import re

import pytest

from projectalgo.db import session_scope
from tests.factories import grant_membership, make_member, resolve

pytestmark = pytest.mark.e2e


def test_create_account_and_strategy_copy_the_token_once_then_see_only_its_prefix(
    app_server, app_engine, page, sign_in
):
    member = make_member(app_engine, email="trader@example.com")
    grant_membership(app_engine, member)
    sign_in("trader@example.com")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    page.goto(f"{app_server.url}/accounts")
    page.locator("#signed-in-name").wait_for()  # the page's state has loaded: typing now is not lost
    page.get_by_label("Account name").fill("Bybit main")
    page.get_by_label("Exchange").fill("Bybit")
    page.get_by_role("button", name="Add account").click()
    page.locator("#accounts-table").get_by_text("Bybit main").wait_for()

    page.goto(f"{app_server.url}/strategies")
    page.get_by_label("Strategy name").fill("Mean reversion")
    page.get_by_label("Brokerage account").click()
    page.get_by_role("option", name="Bybit main").click()
    page.get_by_role("button", name="Create strategy").click()
    token = page.locator("#new-token").inner_text()
    assert re.fullmatch(r"pa_live_[\w-]{43}", token)
    page.get_by_role("button", name="Copy token").click()
    assert page.evaluate("navigator.clipboard.readText()") == token
    with session_scope(app_engine) as session:
        assert resolve(session, token) is not None

    page.reload()
    page.locator("#strategies-table").get_by_text("Mean reversion").wait_for()
    assert page.locator("#new-token").count() == 0
    assert token[:14] in page.locator("#strategies-table").inner_text()
    assert token not in page.content()
