"""Accounts, strategies and a token shown once, in the browser: forms that keep what a refusal was given, clicks
that ask before anything goes, and tokens' dates in the viewer's time zone."""

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from projectalgo import strategies
from projectalgo.db import session_scope
from projectalgo.models import BrokerageAccount, Strategy, StrategyToken
from tests.factories import actor_of, grant_membership, make_member, make_strategy, resolve

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


def _member_with_strategy(app_engine, sign_in) -> dict:
    """A signed-in member with "Trend" on "BitMEX main" (one token), and "Other" on the account "Spare"."""
    member = make_member(app_engine)
    grant_membership(app_engine, member)
    strategy_id, token = make_strategy(app_engine, member)
    with session_scope(app_engine) as session:
        spare = strategies.create_account(session, actor_of(member), name="Spare")
        other = strategies.create_strategy(session, actor_of(member), account_id=spare.id, name="Other")
        token_id = session.scalar(select(StrategyToken.id).where(StrategyToken.strategy_id == strategy_id))
    sign_in(member.email)
    return {
        "member": member,
        "strategy_id": strategy_id,
        "token": token,
        "token_id": token_id,
        "spare_id": spare.id,
        "other": other.id,
    }


def _row(page, table: str, name: str):
    return page.locator(f"#{table} tr", has=page.get_by_text(name, exact=True))


def test_a_refused_form_keeps_what_was_typed_and_a_saved_one_empties(app_server, app_engine, page, sign_in):
    _member_with_strategy(app_engine, sign_in)
    page.goto(f"{app_server.url}/accounts")
    page.locator("#signed-in-name").wait_for()
    typed = {"Account name": "bitmex MAIN", "Exchange": "BitMEX", "Notes": "the hedge"}
    for label, value in typed.items():
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Add account").click()
    expect(page.get_by_role("alert")).to_contain_text("You already have an account named 'BitMEX main'")
    for label, value in typed.items():
        expect(page.get_by_label(label)).to_have_value(value)
    page.get_by_label("Account name").fill("BitMEX hedge")
    page.get_by_role("button", name="Add account").click()
    expect(page.get_by_role("status")).to_have_text("Account 'BitMEX hedge' added.")
    for label in typed:
        expect(page.get_by_label(label)).to_have_value("")

    _row(page, "accounts-table", "Spare").get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New name").fill("BITMEX hedge")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("named 'BitMEX hedge' (names that differ only in case")
    expect(dialog.get_by_label("New name")).to_have_value("BITMEX hedge")  # still open, as typed
    dialog.get_by_label("New name").fill("Spare two")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(_row(page, "accounts-table", "Spare two")).to_have_count(1)

    page.goto(f"{app_server.url}/strategies")
    page.locator("#signed-in-name").wait_for()
    typed = {"Strategy name": "tREND", "Symbol": "ETHUSD", "Description": "breakouts on the hour"}
    for label, value in typed.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Brokerage account").click()
    page.get_by_role("option", name="Spare two").click()
    page.get_by_role("button", name="Create strategy").click()
    expect(page.get_by_role("alert")).to_contain_text("You already have a strategy named 'Trend'")
    for label, value in typed.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
    expect(page.get_by_label("Brokerage account")).to_have_text("Spare two")
    page.get_by_label("Strategy name").fill("Breakout")
    page.get_by_role("button", name="Create strategy").click()
    expect(page.locator("#new-token-card")).to_contain_text("Token for Breakout")
    for label in typed:
        expect(page.get_by_label(label, exact=True)).to_have_value("")
    expect(page.get_by_label("Brokerage account")).to_have_text("Brokerage account")  # the placeholder again

    _row(page, "strategies-table", "Other").get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("BREAKOUT")
    dialog.get_by_label("Symbol").fill("XBTUSD")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("You already have a strategy named 'Breakout'")
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("BREAKOUT")
    expect(dialog.get_by_label("Symbol")).to_have_value("XBTUSD")
    dialog.get_by_label("Name", exact=True).fill("Other two")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(_row(page, "strategies-table", "Other two")).to_contain_text("XBTUSD")


def test_revoking_archiving_and_deleting_ask_first_naming_what_goes(app_server, app_engine, page, sign_in):
    world = _member_with_strategy(app_engine, sign_in)
    prefix = world["token"][:14]
    page.goto(f"{app_server.url}/strategies")
    page.locator("#signed-in-name").wait_for()

    page.get_by_role("button", name=f"Revoke token {prefix}").click()
    question = page.get_by_role("alertdialog")
    expect(question).to_contain_text(f"Revoke token {prefix}… of “Trend”?")
    expect(question).to_contain_text("Bots using it will be refused")
    question.get_by_role("button", name="Cancel").click()
    expect(question).to_have_count(0)
    with session_scope(app_engine) as session:
        assert resolve(session, world["token"]) is not None  # cancelled: the bot still posts
    page.get_by_role("button", name=f"Revoke token {prefix}").click()
    question.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_role("status")).to_contain_text("Token revoked")
    expect(page.get_by_role("button", name=f"Revoke token {prefix}")).to_have_count(0)
    with session_scope(app_engine) as session:
        assert resolve(session, world["token"]) is None

    _row(page, "strategies-table", "Trend").get_by_role("button", name="Archive").click()
    expect(question).to_contain_text("Archive the strategy “Trend”?")
    expect(question).to_contain_text("Its bots' tokens are refused until you restore it")
    question.get_by_role("button", name="Cancel").click()
    with session_scope(app_engine) as session:
        assert session.get(Strategy, world["strategy_id"]).archived_at is None
    _row(page, "strategies-table", "Trend").get_by_role("button", name="Archive").click()
    question.get_by_role("button", name="Archive strategy").click()
    expect(_row(page, "strategies-table", "Trend")).to_contain_text("archived")

    page.goto(f"{app_server.url}/accounts")
    page.locator("#signed-in-name").wait_for()
    _row(page, "accounts-table", "BitMEX main").get_by_role("button", name="Delete").click()
    expect(question).to_contain_text("Delete the account “BitMEX main”?")
    expect(question).to_contain_text("strategies, which can be archived but not deleted, so it will not be deleted")
    question.get_by_role("button", name="Delete account").click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("'BitMEX main' still has 1 strategy (archived ones count too).")
    expect(refusal).to_contain_text("Strategies can be archived but not deleted: archive the account instead")
    expect(refusal).not_to_contain_text("delete them")

    with session_scope(app_engine) as session:  # an account without strategies
        session.get(Strategy, world["other"]).account_id = session.get(Strategy, world["strategy_id"]).account_id
    page.reload()
    page.locator("#signed-in-name").wait_for()
    _row(page, "accounts-table", "Spare").get_by_role("button", name="Delete").click()
    expect(question).to_contain_text("Delete the account “Spare”?")
    expect(question).to_contain_text("It is removed for good.")
    question.get_by_role("button", name="Cancel").click()
    with session_scope(app_engine) as session:
        assert session.get(BrokerageAccount, world["spare_id"]) is not None
    _row(page, "accounts-table", "Spare").get_by_role("button", name="Delete").click()
    question.get_by_role("button", name="Delete account").click()
    expect(page.get_by_role("status")).to_have_text("Account deleted.")
    expect(_row(page, "accounts-table", "Spare")).to_have_count(0)
    with session_scope(app_engine) as session:
        assert session.get(BrokerageAccount, world["spare_id"]) is None


def test_token_chips_show_when_each_was_made_and_last_used_in_the_viewers_time_zone(
    app_server, app_engine, page, sign_in
):
    page.context.new_cdp_session(page).send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    world = _member_with_strategy(app_engine, sign_in)
    with session_scope(app_engine) as session:
        unused = strategies.issue_token(session, actor_of(world["member"]), world["strategy_id"])
        used = session.get(StrategyToken, world["token_id"])
        used.created_at = datetime(2026, 1, 15, 20, 30, tzinfo=UTC)  # 05:30 the next day in Tokyo (UTC+9)
        used.last_used_at = datetime(2026, 1, 16, 16, 5, tzinfo=UTC)
    page.goto(f"{app_server.url}/strategies")
    chip = page.locator(".token-chip", has_text=world["token"][:14])
    expect(chip).to_contain_text("created 2026-01-16 05:30 · last used 2026-01-17 01:05")
    expect(page.locator(".token-chip", has_text=unused[:14])).to_contain_text("last used never")
