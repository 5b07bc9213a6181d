"""Members in the browser: register from an invite link, sign in, see your own invite, sign out."""

import re

import pytest
from playwright.sync_api import expect

from projectalgo import admin, members
from projectalgo.db import session_scope
from tests.factories import PASSWORD, actor_of, invite_code_of, make_admin

pytestmark = pytest.mark.e2e


def test_register_sign_in_see_own_invite_and_sign_out(app_server, app_engine, page):
    inviter = make_admin(app_engine, name="Grace Hopper")
    page.goto(f"{app_server.url}/invite/{invite_code_of(app_engine, inviter)}")
    page.get_by_text("Grace Hopper invited you").wait_for()
    assert "This invitation has 5 uses left." in page.locator("#invite-summary").inner_text()

    page.fill("#name", "Linus Member")
    page.fill("#email", "Linus@Example.com")
    page.fill("#password", PASSWORD)
    page.fill("#confirmation", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/login\?registered=1"))
    page.get_by_text("Your account is ready").wait_for()

    page.fill("#email", "linus@example.com")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # The dashboard sends a member who has not paid yet to /membership.
    page.wait_for_url(re.compile(r"/membership/?(\?from=[^&]*)?$"))
    page.locator("#membership-state").get_by_text("no membership yet").wait_for()
    assert page.locator("#signed-in-name").inner_text() == "Linus Member"
    link = page.locator("#invite-link").inner_text()
    assert re.fullmatch(rf"{re.escape(app_server.url)}/invite/[\w-]+", link)
    assert page.locator("#invite-uses").inner_text() == "uses left 5/5"

    page.get_by_role("link", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    page.goto(f"{app_server.url}/dashboard")
    page.wait_for_url(re.compile(r"/login\?next=%2Fdashboard$"))
    assert page.locator("#signed-in-name").count() == 0


def test_a_wrong_password_shows_a_message_and_an_unknown_invite_a_friendly_page(app_server, app_engine, page):
    make_admin(app_engine, email="someone@example.com")
    page.goto(f"{app_server.url}/login")
    page.fill("#email", "someone@example.com")
    page.fill("#password", "not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").get_by_text("do not match an account").wait_for()

    page.goto(f"{app_server.url}/invite/no-such-code")
    page.locator("#invite-problem").get_by_text("not valid").wait_for()
    assert page.get_by_role("button", name="Create account").count() == 0


def test_an_invitation_with_one_use_left_says_one_use(app_server, app_engine, page):
    inviter = make_admin(app_engine, name="Una Inviter")
    with session_scope(app_engine) as session:
        invitation = members.own_invitation(session, inviter.id)
        admin.set_invite_uses(session, actor_of(inviter), invitation_id=invitation.id, uses=1)
    page.goto(f"{app_server.url}/invite/{invitation.code}")
    expect(page.locator("#invite-summary")).to_have_text("Una Inviter invited you. This invitation has 1 use left.")
