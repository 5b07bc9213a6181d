"""The admin page in chromium: raise an invite's uses, grant a membership, promote a moderator; strategy links and
statuses that follow the clock; the command line's changes in the audit log."""

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect

from projectalgo import members
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.models import User
from projectalgo.snapshots import epoch_ms
from tests.factories import make_admin, make_member, make_strategy

pytestmark = pytest.mark.e2e


def test_an_admin_changes_an_invite_a_membership_and_a_role_and_sees_each_in_the_audit_log(
    app_server, app_engine, sign_in, page
):
    boss = make_admin(app_engine, email="boss-admin@example.com", name="Boss")
    member = make_member(app_engine, inviter=boss, name="Zed Candidate", email="zed@example.com")
    with session_scope(app_engine) as session:
        invitation = members.own_invitation(session, member.id)
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
    sign_in("curious@example.com", lands_on="/membership?from=%2Fdashboard")
    page.goto(f"{app_server.url}/admin")
    page.wait_for_url(lambda url: "/admin" not in url)
    assert page.locator("#users-table").count() == 0


def _moderator(engine, email):
    member = make_member(engine, email=email)
    with session_scope(engine) as session:
        members.change_role(session, user=session.get(User, member.id), role="moderator", grant=True)
    return member


def _post(url, token, created_at):
    numbers = dict.fromkeys(("last_price", "margin_balance", "wallet_balance", "realised_pnl", "positions"), 100)
    body = numbers | {"average_entry_price": 100, "symbol": "XBTUSD", "created_at": epoch_ms(created_at)}
    answer = requests.post(
        f"{url}/api/v1/strategy/", json={"data": body}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text


def test_a_moderator_sees_strategies_without_a_link_and_an_admin_opens_one(app_server, app_engine, sign_in, page):
    owner = make_member(app_engine, email="linked-owner@example.com")
    strategy_id, _ = make_strategy(app_engine, owner, name="Linked Trend")
    _moderator(app_engine, "mod-links@example.com")
    make_admin(app_engine, email="admin-links@example.com")

    sign_in("mod-links@example.com")
    page.goto(f"{app_server.url}/admin")
    page.get_by_role("tab", name="Strategies").click()
    cell = page.locator(f"#admin-strategy-{strategy_id}")
    expect(cell).to_have_text("Linked Trend")
    assert cell.get_by_role("link").count() == 0
    page.get_by_role("link", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))

    sign_in("admin-links@example.com")
    page.goto(f"{app_server.url}/admin")
    page.get_by_role("tab", name="Strategies").click()
    page.locator(f"#admin-strategy-{strategy_id}").get_by_role("link", name="Linked Trend").click()
    page.wait_for_url(re.compile(rf"/strategies/{strategy_id}/?$"))
    page.get_by_role("heading", name="Linked Trend").wait_for()
    assert page.get_by_text("No such strategy").count() == 0


def test_statuses_and_ages_change_on_an_open_admin_page_without_a_reload(app_server, app_engine, sign_in, page):
    owner = make_member(app_engine, email="status-owner@example.com")
    fading, fading_token = make_strategy(app_engine, owner, name="Fading", account="Status")
    quiet, quiet_token = make_strategy(app_engine, owner, name="Quiet", account="Status")
    # Live for a few more seconds (STALE_AFTER_MINUTES is 10 on the app under test).
    _post(app_server.url, fading_token, utcnow() - timedelta(minutes=9, seconds=45))
    make_admin(app_engine, email="status-admin@example.com")
    sign_in("status-admin@example.com")
    page.goto(f"{app_server.url}/admin")
    page.get_by_role("tab", name="Strategies").click()
    expect(page.locator(f"#admin-status-{fading}")).to_have_text("live")
    expect(page.locator(f"#admin-status-{quiet}")).to_have_text("never")
    expect(page.locator(f"#admin-last-snapshot-{fading}")).to_contain_text("10 minutes ago")
    page.evaluate("window.loadedOnce = true")  # gone if the page were loaded again
    _post(app_server.url, quiet_token, utcnow())  # Quiet's bot starts while the page is open

    # The tab's timer, a minute after the page opened: no reload, no click.
    minute = {"timeout": 80_000}
    expect(page.locator(f"#admin-status-{fading}")).to_have_text("stale", **minute)
    expect(page.locator(f"#admin-status-{quiet}")).to_have_text("live", **minute)
    expect(page.locator(f"#admin-last-snapshot-{fading}")).to_contain_text("11 minutes ago", **minute)
    # The tab's own timer brought it: the page was not loaded again.
    assert page.evaluate("window.loadedOnce === true") and re.search(r"/admin/?$", page.url)


def test_the_command_lines_changes_are_in_the_audit_log(app_server, app_env, app_engine, sign_in, page):
    make_member(app_engine, email="granted-by-cli@example.com")
    make_admin(app_engine, email="audit-reader@example.com")
    command = [sys.executable, "-m", "projectalgo", "grant-membership", "--email", "granted-by-cli@example.com"]
    granted = subprocess.run(
        [*command, "--days", "1"], env={**os.environ, **app_env}, capture_output=True, text=True, timeout=60
    )
    assert granted.returncode == 0, granted.stderr
    sign_in("audit-reader@example.com")
    page.goto(f"{app_server.url}/admin")
    page.get_by_role("tab", name="Audit log").click()
    row = page.locator("#audit-table tbody tr").filter(has_text="granted-by-cli@example.com")
    expect(row).to_contain_text("command line")
    expect(row).to_contain_text("grant membership 1 day")
