"""The admin page in chromium: raise an invite's uses, grant a membership, promote a moderator."""

import pytest
from playwright.sync_api import expect

from projectalgo import accounts
from projectalgo.db import session_scope
from tests.factories import make_admin, make_member

pytestmark = pytest.mark.e2e


def test_an_admin_changes_an_invite_a_membership_and_a_role_and_sees_each_in_the_audit_log(
    app_server, app_engine, sign_in, page
):
    boss = make_admin(app_engine, email="boss-admin@example.com", name="Boss")
    member = make_member(app_engine, inviter=boss, name="Zed Candidate", email="zed@example.com")
    with session_scope(app_engine) as session:
        invitation = accounts.own_invitation(session, member.id)
    sign_in("boss-admin@example.com", lands_on="/dashboard")
    page.goto(f"{app_server.url}/admin")
    page.get_by_role("button", name="Search").wait_for()
    page.get_by_label("Search users").fill("zed@")
    page.get_by_role("button", name="Search").click()
    row = page.locator(f"#user-{member.id}")
    expect(page.locator("#users-table tbody tr")).to_have_count(1)

    row.get_by_role("button", name="Make moderator").click()
    row.get_by_text("member, moderator").wait_for()

    row.get_by_label("Days").fill("30")
    row.get_by_label("Reason").first.fill("early supporter")
    row.get_by_role("button", name="Grant days").click()
    page.get_by_text("Membership extended by 30 days.").wait_for()
    assert row.locator("td").nth(3).inner_text() != "—"

    page.get_by_role("tab", name="Invites").click()
    page.get_by_label(f"Uses for {invitation.code}").fill("10")
    page.get_by_role("button", name="Set uses").nth(0).wait_for()
    page.locator("form").filter(has=page.get_by_label(f"Uses for {invitation.code}")).get_by_role(
        "button", name="Set uses"
    ).click()
    page.locator(f"#invite-uses-{invitation.id}").get_by_text("10").wait_for()

    page.get_by_role("tab", name="Audit log").click()
    audit = page.locator("#audit-table")
    audit.get_by_text("grant moderator").wait_for()
    assert audit.get_by_text("grant membership 30 days").count() == 1
    assert audit.get_by_text("invite uses 5 -> 10").count() == 1
    assert audit.get_by_text("early supporter").count() == 1


def test_a_member_opening_admin_is_sent_away(app_server, app_engine, sign_in, page):
    make_member(app_engine, email="curious@example.com")
    sign_in("curious@example.com", lands_on="/membership")
    page.goto(f"{app_server.url}/admin")
    page.wait_for_url(lambda url: "/admin" not in url)
    assert page.locator("#users-table").count() == 0
