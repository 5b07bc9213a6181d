"""/accounts and /strategies on a phone (390 by 844 pixels): nothing wider than the screen, nothing scrolling
sideways, and the main actions on screen and clickable (not covered, not cut off), their dialogs and forms too."""

import pytest
from playwright.sync_api import expect

from projectalgo import strategies
from projectalgo.db import session_scope
from tests.factories import actor_of, grant_membership, make_member, make_strategy

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}

# Every rendered element whose visible box (cut by the ancestors that clip, as an ellipsis does) leaves the viewport
# sideways, and every element that scrolls sideways.
SIDEWAYS = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    let [left, right] = [box.left, box.right];
    for (let up = el.parentElement; up; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible') {
        const clip = up.getBoundingClientRect();
        [left, right] = [Math.max(left, clip.left), Math.min(right, clip.right)];
      }
    }
    const name = `${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || '').trim().slice(0, 30)}"`;
    if ((box.width || box.height) && right > left && (left < -0.5 || right > width + 0.5)) {
      found.push(`${name} spans ${Math.round(left)}..${Math.round(right)}`);
    }
    if (['auto', 'scroll'].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${name} scrolls sideways (${el.scrollWidth} > ${el.clientWidth})`);
    }
  }
  return {page: document.documentElement.scrollWidth, width, found};
}"""


def fits(page) -> None:
    seen = page.evaluate(SIDEWAYS)
    assert seen["found"] == [] and seen["page"] <= seen["width"] == PHONE["width"], seen


def reachable(locator) -> None:
    """On screen horizontally, and the element a tap there would hit (trial: checks, does not click)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    locator.click(trial=True)


def test_accounts_and_strategies_fit_a_phone_and_their_actions_are_reachable(app_server, app_engine, page, sign_in):
    member = make_member(app_engine)
    grant_membership(app_engine, member)
    long_account = "BitMEX main account of the hourly bots, shared by three of them"[: strategies.NAME_MAX_LENGTH]
    long_strategy = "Mean reversion on the hourly candles, with a very long name"[: strategies.NAME_MAX_LENGTH]
    strategy_id, _token = make_strategy(app_engine, member, name=long_strategy, account=long_account)
    with session_scope(app_engine) as session:
        actor = actor_of(member)
        strategies.update_strategy(
            session,
            actor,
            strategy_id,
            account_id=session.get(strategies.Strategy, strategy_id).account_id,
            name=long_strategy,
            description="Buys the dip below the 20-hour mean and sells above it; " * 6,
            symbol="XBTUSD_PERPETUAL_QUARTERLY",
        )
        strategies.issue_token(session, actor, strategy_id)
        strategies.create_account(session, actor, name="Spare", exchange="Bybit", notes="for the next bot")
    page.set_viewport_size(PHONE)
    sign_in(member.email)

    page.goto(f"{app_server.url}/accounts")
    page.locator("#signed-in-name").wait_for(state="attached")
    expect(page.locator("#accounts-table")).to_contain_text(long_account)
    fits(page)
    for label in ("Account name", "Exchange", "Notes"):
        reachable(page.get_by_label(label))
    reachable(page.get_by_role("button", name="Add account"))
    for button in ("Rename", "Archive", "Delete"):
        for each in page.locator("#accounts-table").get_by_role("button", name=button, exact=True).all():
            each.scroll_into_view_if_needed()
            reachable(each)
    page.get_by_label("Account name").fill("Kraken futures")
    page.get_by_role("button", name="Add account").click()
    expect(page.locator("#accounts-table")).to_contain_text("Kraken futures")
    fits(page)
    page.locator("#accounts-table").get_by_role("button", name="Rename").first.click()
    dialog = page.get_by_role("dialog")
    reachable(dialog.get_by_label("New name"))
    reachable(dialog.get_by_role("button", name="Save"))
    fits(page)
    dialog.get_by_role("button", name="Cancel").click()

    page.goto(f"{app_server.url}/strategies")
    page.locator("#signed-in-name").wait_for(state="attached")
    expect(page.locator("#strategies-table")).to_contain_text(long_strategy)
    fits(page)
    for label in ("Strategy name", "Brokerage account", "Symbol", "Description"):
        reachable(page.get_by_label(label, exact=True))
    reachable(page.get_by_role("button", name="Create strategy"))
    table = page.locator("#strategies-table")
    for button in ("Edit", "New token", "Archive", "Revoke"):
        for each in table.get_by_role("button", name=button, exact=True).all():
            each.scroll_into_view_if_needed()
            reachable(each)
    table.get_by_role("button", name="Revoke").first.click()
    question = page.get_by_role("alertdialog")
    reachable(question.get_by_role("button", name="Revoke token"))
    fits(page)
    question.get_by_role("button", name="Cancel").click()

    table.get_by_role("button", name="New token").click()
    expect(page.locator("#new-token-card")).to_be_visible()  # the token, its copy button and the bot's request
    fits(page)
    reachable(page.get_by_role("button", name="Copy token"))
    reachable(page.get_by_role("button", name="I have stored it"))

    table.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    for label in ("Name", "Brokerage account", "Symbol", "Description"):
        reachable(dialog.get_by_label(label, exact=True))
    dialog.get_by_role("button", name="Save").scroll_into_view_if_needed()
    reachable(dialog.get_by_role("button", name="Save"))
    fits(page)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text("Strategy saved.")
