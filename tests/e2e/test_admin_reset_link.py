"""The admin page in chromium: issue a member's password reset link, copy it, and see it gone once closed."""

import pytest
from playwright.sync_api import expect

from projectalgo import members
from projectalgo.db import session_scope
from tests.factories import make_admin, make_member

pytestmark = pytest.mark.e2e


def test_an_admin_copies_a_reset_link_shown_once_and_the_audit_log_names_only_the_user(
    app_server, app_engine, sign_in, page
):
    boss = make_admin(app_engine, email="reset-boss@example.com", name="Reset Boss")
    member = make_member(app_engine, inviter=boss, name="Forgetful Fay", email="fay@example.com")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server.url)
    sign_in("reset-boss@example.com", lands_on="/dashboard")
    page.goto(f"{app_server.url}/admin")
    page.get_by_label("Search users").fill("fay@")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#users-table tbody tr")).to_have_count(1)
    page.locator(f"#user-{member.id}").get_by_role("button", name="Reset link").click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("fay@example.com")
    link = page.locator("#reset-link").inner_text()
    assert link.startswith(f"{app_server.url}/reset/")
    with session_scope(app_engine) as session:
        assert members.password_reset_usable(session, link.rsplit("/", 1)[1])
    dialog.get_by_role("button", name="Copy").click()
    page.wait_for_function("async (link) => (await navigator.clipboard.readText()) === link", arg=link)
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert link not in page.content()

    page.get_by_role("tab", name="Audit log").click()
    audit = page.locator("#audit-table")
    audit.get_by_text("issue password reset link").wait_for()
    assert "fay@example.com" in audit.inner_text() and link.rsplit("/", 1)[1] not in audit.inner_text()
