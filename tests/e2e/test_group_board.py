"""The group board in chromium (issue 16): one member puts a strategy on the board, another member's open /group
shows it at once, in percentages under its alias; the owner takes it off and it leaves the open page, without a
reload. Neither that page nor its websocket frames ever carry an amount, the strategy's or account's name, or the
owner's name or email."""

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from projectalgo import group, members
from projectalgo.db import session_scope
from projectalgo.models import User
from projectalgo.snapshots import EXAMPLE_DATA
from tests.factories import PASSWORD, actor_of, grant_membership, make_member, make_strategy

pytestmark = pytest.mark.e2e
# The owner's bot's numbers, as a page or a frame would write them: none may reach the other member.
POSTS = (("24680.13", "0"), ("25802.47", "1122.34"))
AMOUNTS = ("24680.13", "24,680.13", "25802.47", "25,802.47", "1122.34", "1,122.34", "9321.5", "9,321.5", "9300.25")
PRIVATE = ("Otter Strategy Name", "Otter Account Name", "Olga Owner", "olga.owner@example.com", "XBTUSD")


def _post(url: str, token: str, wallet: str, realised: str) -> None:
    body = {**EXAMPLE_DATA, "wallet_balance": wallet, "margin_balance": wallet, "realised_pnl": realised}
    answer = requests.post(
        f"{url}/api/v1/strategy/", json={"data": body}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard/?$"))


def test_a_strategy_put_on_the_board_shows_on_another_members_open_page_and_leaves_it(
    app_server, app_engine, browser, page
):
    owner = make_member(app_engine, name="Olga Owner", email="olga.owner@example.com")
    viewer = make_member(app_engine, name="Victor Viewer", email="victor.viewer@example.com")
    for member in (owner, viewer):
        grant_membership(app_engine, member)
    strategy_id, token = make_strategy(app_engine, owner, name="Otter Strategy Name", account="Otter Account Name")
    for wallet, realised in POSTS:
        _post(app_server.url, token, wallet, realised)

    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda payload: frames.append(str(payload))))
    _sign_in(page, app_server.url, "victor.viewer@example.com")
    page.goto(f"{app_server.url}/group")
    expect(page.locator("#board-empty")).to_be_visible()

    owners = browser.new_context()
    try:
        owner_page = owners.new_page()
        owner_page.set_default_timeout(15_000)
        _sign_in(owner_page, app_server.url, "olga.owner@example.com")
        owner_page.goto(f"{app_server.url}/group")
        own = owner_page.locator(f"#own-{strategy_id}")
        own.get_by_label("Alias").fill("Silent Otter")
        own.get_by_role("button", name="Put on the board").click()
        expect(owner_page.locator(f"#board-row-{strategy_id}")).to_contain_text("Silent Otter")

        # The other member's open page, without a reload: the line, its return over 24H (1,122.34 on 24,680.13).
        row = page.locator(f"#board-row-{strategy_id}")
        expect(row).to_contain_text("1. Silent Otter")
        expect(page.locator(f"#board-return-{strategy_id}")).to_have_text("+4.55%")
        expect(page.locator(f"#board-status-{strategy_id}")).to_have_text("live")

        owner_page.locator(f"#own-{strategy_id}").get_by_role("button", name="Take off the board").click()
        expect(owner_page.locator(f"#own-{strategy_id}").get_by_role("button", name="Put on the board")).to_be_visible()
        expect(row).to_have_count(0)
        expect(page.locator("#board-empty")).to_be_visible()
    finally:
        owners.close()

    shown = page.content()
    received = "\n".join(frames)
    assert "Silent Otter" in received  # the frames read are the board's
    for text in (*AMOUNTS, *PRIVATE):
        assert text not in shown, f"{text} on the page"
        assert text not in received, f"{text} in a websocket frame"


def test_the_board_fits_a_phone(app_server, app_engine, browser):
    """A board line (a long alias, moderator's take-off) and the member's own section stack within the screen."""
    from tests.e2e.test_phone_layout import OVERFLOWS, PHONE

    moderator = make_member(app_engine, name="Mo Phone", email="mo.phone@example.com")
    with session_scope(app_engine) as session:
        members.change_role(session, user=session.get(User, moderator.id), role="moderator", grant=True)
    strategy_id, token = make_strategy(app_engine, moderator, name="A strategy with a rather long name indeed")
    _post(app_server.url, token, "1000", "0")
    with session_scope(app_engine) as session:
        group.join(session, actor_of(session.get(User, moderator.id)), strategy_id, alias="W" * group.ALIAS_MAX_LENGTH)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        phone.set_default_timeout(15_000)
        _sign_in(phone, app_server.url, "mo.phone@example.com")
        phone.goto(f"{app_server.url}/group")
        expect(phone.locator(f"#board-row-{strategy_id}").get_by_role("button", name="Take off")).to_be_visible()
        expect(phone.locator(f"#own-{strategy_id}")).to_be_visible()
        assert phone.evaluate(OVERFLOWS) == []
    finally:
        context.close()
