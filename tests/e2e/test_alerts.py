"""Alerts in chromium (issue 17): a member with two tabs open sends a test in the app from /alerts; the app's own
sweeper (every second here) delivers it, and both tabs' bells count it and show a notice, pushed, without reload;
another member's tab gets nothing. Marking it read clears the other tab's count. On a phone, /alerts fits the
screen."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from projectalgo import strategies
from projectalgo.db import make_engine
from projectalgo.migrations import upgrade_to_head
from tests.conftest import _app_env, _run_app
from tests.e2e.test_phone_layout import OVERFLOWS, PHONE
from tests.factories import PASSWORD, grant_membership, make_member, make_strategy
from tests.support import servers

pytestmark = pytest.mark.e2e
PUSHED_MS = 15_000  # a sweep each second, then the push: far less


@pytest.fixture(scope="module")
def alerts_app(
    app_server: servers.Server, server_logs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[servers.Server, Engine]]:
    """An app sweeping alerts every second, on the run's built pages."""
    env = _app_env(tmp_path_factory, "alerts-app") | {"ALERT_SWEEP_SECONDS": "1"}
    upgrade_to_head(env["DATABASE_URL"])
    for server in _run_app(servers.start_app_on_built_pages(server_logs, env, app_server, "alerts-app")):
        yield server, make_engine(env["DATABASE_URL"])


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard/?$"))


def _member(engine: Engine, name: str, email: str) -> None:
    grant_membership(engine, make_member(engine, name=name, email=email))


def test_a_test_alert_reaches_both_tabs_of_its_member_live_and_no_one_else(alerts_app, browser):
    app, engine = alerts_app
    _member(engine, "Tess Twotabs", "tess@example.com")
    _member(engine, "Otto Outsider", "otto@example.com")
    tess = browser.new_context()
    first = tess.new_page()
    _sign_in(first, app.url, "tess@example.com")
    first.goto(f"{app.url}/alerts")
    first.get_by_role("button", name="Send a test in the app").click()
    expect(first.locator("#bell-count")).to_have_text("1", timeout=PUSHED_MS)

    second = tess.new_page()  # the same browser: signed in too
    second.goto(f"{app.url}/dashboard")
    expect(second.locator("#bell-count")).to_have_text("1")  # read on mount: the bell is registered
    otto = browser.new_context().new_page()
    _sign_in(otto, app.url, "otto@example.com")
    expect(otto.locator("#bell")).to_be_visible()
    for page in (first, second, otto):
        page.evaluate("window.notReloaded = true")

    first.get_by_role("button", name="Send a test in the app").click()
    for page in (first, second):
        expect(page.locator("#bell-count")).to_have_text("2", timeout=PUSHED_MS)
        expect(page.locator(".alert-toast").first).to_contain_text("Test alert")
    expect(second.locator(".alert-toast")).to_have_count(1)  # the first test came before its bell was read
    expect(first.locator("#alert-firings .alert-firing").first).to_contain_text("sent")  # the page follows too
    expect(otto.locator("#bell-count")).to_have_count(0)
    expect(otto.locator(".alert-toast")).to_have_count(0)

    second.locator(".alert-toast").get_by_role("button", name="Dismiss").click()
    expect(second.locator(".alert-toast")).to_have_count(0)
    first.get_by_role("button", name="Mark all as read").click()
    expect(second.locator("#bell-count")).to_have_count(0)  # pushed to the other tab
    assert all(page.evaluate("window.notReloaded === true") for page in (first, second, otto))
    tess.close()
    otto.context.close()


def test_the_alerts_page_fits_a_phone(alerts_app, browser):
    app, engine = alerts_app
    member = make_member(engine, name="Phoebe Phone", email="phoebe@example.com")
    grant_membership(engine, member)
    make_strategy(engine, member, name="L" * strategies.NAME_MAX_LENGTH)  # unbroken: it must wrap
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(15_000)
    _sign_in(phone, app.url, "phoebe@example.com")
    phone.goto(f"{app.url}/alerts")
    expect(phone.locator("#bell")).to_be_visible()  # the page is loaded: its form is not drawn afresh any more
    form = phone.locator("#rule-form")
    form.get_by_role("combobox", name="Strategy").click()
    phone.get_by_role("option", name="L" * 20, exact=False).click()
    expect(form.get_by_role("combobox", name="Strategy")).to_contain_text("L" * 20)
    form.get_by_label("Threshold").fill("15")
    form.get_by_role("button", name="Add alert").click()
    expect(phone.locator("#alert-rules")).to_contain_text("no snapshot for 15 minutes")
    phone.get_by_role("button", name="Send a test in the app").click()
    expect(phone.locator("#alert-firings")).to_contain_text("sent", timeout=PUSHED_MS)
    expect(phone.locator(".alert-toast")).to_contain_text("Test alert")
    assert phone.evaluate(OVERFLOWS) == []
    context.close()
