"""Share links in chromium (issue 16): the owner makes a link on the strategy page; a visitor without an account
sees the figures without amounts, live; the owner revokes it and the open page stops and says so. Neither the
shared page nor its websocket frames carry anything else of the owner's: no name, email, account, other strategy,
symbol or amount."""

import pytest
import requests
from playwright.sync_api import expect

from projectalgo.snapshots import EXAMPLE_DATA
from tests.factories import grant_membership, make_member, make_strategy

pytestmark = pytest.mark.e2e
OWNER_NAME, OWNER_EMAIL = "Olga Sharewell", "olga.sharewell@example.com"
STRATEGY, OTHER_STRATEGY, ACCOUNT = "Kestrel Breakout", "Heron Carry", "Osprey Private Account"
PRICE = 9321.5


def _post(url: str, token: str, balance: float, realised: float, price: float = PRICE) -> None:
    body = EXAMPLE_DATA | {
        "wallet_balance": balance,
        "margin_balance": balance,
        "realised_pnl": realised,
        "last_price": price,
    }
    answer = requests.post(
        f"{url}/api/v1/strategy/", json={"data": body}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text


def _frames(page) -> list[str]:
    received: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(str(payload))))
    return received


def test_a_share_link_shows_percentages_live_stops_when_revoked_and_carries_nothing_else(
    app_server, app_engine, browser, sign_in, page
):
    owner = make_member(app_engine, name=OWNER_NAME, email=OWNER_EMAIL)
    grant_membership(app_engine, owner)
    strategy_id, token = make_strategy(app_engine, owner, name=STRATEGY, account=ACCOUNT)
    _, other_token = make_strategy(app_engine, owner, name=OTHER_STRATEGY, account=ACCOUNT)
    _post(app_server.url, token, 12_340, 0)
    _post(app_server.url, token, 12_463.4, 123.4)  # +1.00 %
    _post(app_server.url, other_token, 55_555.55, 0)

    sign_in(OWNER_EMAIL)
    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    form = page.locator("#share-link-form")
    form.get_by_label("Label").fill("Our best bot")
    form.get_by_label("Days valid").fill("7")
    form.get_by_role("button", name="Make a link").click()
    link = page.locator("#new-share-link").inner_text()
    assert link.startswith(f"{app_server.url}/share/sh_")
    expect(page.locator("#share-links-table")).to_contain_text("Our best bot")

    visitor_context = browser.new_context()
    visitor = visitor_context.new_page()
    frames = _frames(visitor)
    visitor.goto(link)
    expect(visitor.locator("#share-label")).to_have_text("Our best bot")
    expect(visitor.locator("#share-twr")).to_contain_text("+1.00%")
    expect(visitor.locator("#share-best-day")).to_contain_text("+1.00%")
    visitor.wait_for_function("document.querySelector('#share-chart') && document.querySelector('#share-chart').data")

    _post(app_server.url, token, 12_588.034, 248.034, price=PRICE * 1.1)  # +1.00 % again: +2.01 % chained
    expect(visitor.locator("#share-twr")).to_contain_text("+2.01%")
    visitor.wait_for_function("document.querySelector('#share-chart').dataset.seq === '1'")
    assert visitor.url == link  # no reload happened

    expect(page.locator("#share-links-table")).to_contain_text("active")
    page.locator("#share-links-table").get_by_role("button", name="Revoke").click()
    expect(page.locator("#share-links-table")).to_contain_text("revoked")
    expect(visitor.locator("#share-gone")).to_have_text("This link was revoked.")
    expect(visitor.locator("#share-twr")).to_have_count(0)
    _post(app_server.url, token, 99_999.99, 248.034)  # after the revocation: never pushed to the visitor
    expect(page.locator("#latest-wallet")).to_have_text("$99,999.99")  # the owner's page: stored and pushed

    shown = visitor.content() + "".join(frames)
    assert "+2.01%" in "".join(frames)  # the frames were watched
    owners = (OWNER_NAME, OWNER_EMAIL, STRATEGY, OTHER_STRATEGY, ACCOUNT, "XBTUSD")
    amounts = ("12340.0", "12,340", "12463.4", "12,463", "12588.03", "12,588", "55555.5", "55,555", "99999.9", "99,999")
    assert [text for text in owners + amounts if text in shown] == []
    visitor.reload()
    expect(visitor.locator("#share-gone")).to_have_text("This link was revoked.")
    visitor_context.close()
