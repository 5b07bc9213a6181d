"""/admin and /membership on a phone (390 by 844 pixels) in chromium: nothing wider than the screen, every tab and every
action of a user in reach."""

import pytest
from playwright.sync_api import expect

from tests.factories import invite_code_of, make_admin, make_member, make_strategy

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}

# Every element the reader can see that reaches past the screen's left or right edge (an element inside a
# scrolled box counts as well: nothing may hide off to the side).
PAST_THE_EDGE = """() => {
  const width = document.documentElement.clientWidth;
  const past = [];
  for (const element of document.querySelectorAll("body *")) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || getComputedStyle(element).visibility === "hidden") continue;
    if (box.right > width + 0.5 || box.left < -0.5) {
      const where = `${Math.round(box.left)}..${Math.round(box.right)}`;
      past.push(`${element.tagName}#${element.id}.${element.className} ${where}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, past: past.slice(0, 10)};
}"""


def _fits(page) -> None:
    """Nothing reaches past the screen's edges. The caller first waits for what the page must show."""
    found = page.evaluate(PAST_THE_EDGE)
    assert found == {"scrollWidth": PHONE["width"], "past": []}, found


def _within_the_screen(locator) -> None:
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def test_admin_fits_a_phone_and_its_tabs_and_a_users_actions_are_in_reach(app_server, app_engine, sign_in, page):
    boss = make_admin(app_engine, email="phone-admin@example.com", name="Phone Admin")
    member = make_member(
        app_engine, inviter=boss, name="Maximilian Longname-Membership", email="a.rather.long.address@example.com"
    )
    strategy_id, _ = make_strategy(
        app_engine, member, name="Mean reversion on hourly candles", account="BitMEX main account"
    )
    page.set_viewport_size(PHONE)
    sign_in("phone-admin@example.com")
    page.goto(f"{app_server.url}/admin")
    # The suite's other tests make users too: find this one, whatever page of the list it falls on.
    page.get_by_label("Search users").fill("a.rather.long.address@")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#users-table tbody tr")).to_have_count(1)
    row = page.locator(f"#user-{member.id}")
    expect(row).to_contain_text("a.rather.long.address@example.com")
    _fits(page)

    for action in ("Make moderator", "Disable", "Grant days", "Reset link", "End membership"):
        _within_the_screen(row.get_by_role("button", name=action, exact=True))
    row.get_by_label("Days").fill("7")
    row.get_by_role("button", name="Grant days").click()
    page.get_by_text("Membership extended by 7 days.").wait_for()
    row.get_by_role("button", name="Make moderator").click()
    expect(row).to_contain_text("member, moderator")
    _fits(page)

    audit = page.locator("#audit-table")
    shown = {  # what each tab must show before it is measured
        "Strategies": page.locator(f"#admin-status-{strategy_id}").get_by_text("never"),
        "Invites": page.locator("#invites-table").get_by_text(invite_code_of(app_engine, boss)),
        "Payments": page.get_by_role("tabpanel", name="Payments"),  # none may be listed
        # The newest such entry: the running app's database is the whole run's, other tests' entries are listed too.
        "Audit log": audit.get_by_text("grant moderator").first,
    }
    for tab, content in shown.items():
        trigger = page.get_by_role("tab", name=tab)
        _within_the_screen(trigger)
        trigger.click()
        expect(trigger).to_have_attribute("aria-selected", "true")
        expect(content).to_be_visible()
        _fits(page)
    expect(audit).to_contain_text("grant membership 7 days")


def test_membership_fits_a_phone(app_server, app_engine, sign_in, page):
    make_member(app_engine, email="phone-member@example.com")
    page.set_viewport_size(PHONE)
    sign_in("phone-member@example.com", lands_on="/membership?from=%2Fdashboard")
    page.locator("#membership-state").get_by_text("no membership yet").wait_for()
    page.locator("#card-element input").first.wait_for()  # Stripe.js's card field, mounted
    _within_the_screen(page.get_by_role("button", name="Pay 499.00 USD"))
    _fits(page)
