"""Every page in chromium under the app's Content-Security-Policy: nothing the app loads is refused, the live
chart draws and updates, Stripe.js's card form and 3-D Secure work (localstripe's Stripe.js), and no site, the
app's own included, can show a page of it in a frame."""

import re

import pytest
import requests
from playwright.sync_api import expect

from projectalgo import members
from projectalgo.db import session_scope
from projectalgo.models import User
from projectalgo.snapshots import EXAMPLE_DATA
from tests.factories import PASSWORD, grant_membership, invite_code_of, make_admin, make_member, make_strategy
from tests.support.cards import THREE_D_SECURE

pytestmark = pytest.mark.e2e
BODY = EXAMPLE_DATA
# Runs in every document and frame before its own scripts: reports each refusal the CSP makes, and counts the
# reports the test's side has taken (window.cspReported).
WATCH_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} in ${event.documentURI}` +
    ` (${event.sourceFile}:${event.lineNumber})`)
    .then(() => { window.cspReported = (window.cspReported || 0) + 1; });
});
"""


@pytest.fixture
def violations(page) -> list[str]:
    """Every CSP refusal in this page's browser context, as the page's events and its console report them."""
    found: list[str] = []
    page.context.expose_function("reportCspViolation", lambda text: found.append(text))
    page.context.add_init_script(WATCH_VIOLATIONS)
    page.on("console", lambda message: found.append(message.text) if "Content Security Policy" in message.text else 0)
    return found


def _post(url: str, token: str, wallet: float) -> None:
    answer = requests.post(
        f"{url}/api/v1/strategy/",
        json={"data": BODY | {"wallet_balance": wallet}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def _reset_token(engine, user) -> str:
    with session_scope(engine) as session:
        return members.issue_password_reset(session, user=session.get(User, user.id))


def _settle(page) -> None:
    """Let late work (fonts, images, the websocket's first messages) happen before violations are counted."""
    page.wait_for_load_state("networkidle")


def _assert_no_violation(page, violations: list[str]) -> None:
    assert violations == []
    # The watch works in this very page: a load the CSP refuses is reported.
    page.evaluate("() => { new Image().src = 'https://example.org/probe.png'; }")
    page.wait_for_function("() => window.cspReported > 0")  # reported: the test's side has it
    assert violations and all("img-src" in text or "example.org" in text for text in violations), violations


def test_every_page_loads_for_an_admin_without_a_csp_violation_and_the_live_chart_draws(
    app_server, app_engine, sign_in, page, violations
):
    admin = make_admin(app_engine, name="Carla Csp")
    grant_membership(app_engine, admin)
    strategy_id, token = make_strategy(app_engine, admin, name="Guarded", account="Csp")
    _post(app_server.url, token, 1000)
    url = app_server.url

    page.goto(f"{url}/invite/{invite_code_of(app_engine, admin)}")
    page.get_by_text("Carla Csp invited you").wait_for()
    _settle(page)
    sign_in(admin.email)  # /login, then /dashboard
    page.locator("#equity-chart .main-svg").first.wait_for()  # plotly.js drew the chart
    _post(url, token, 1234.5)
    expect(page.locator("#equity-chart")).to_have_attribute("data-seq", "1")  # a live update drawn
    _settle(page)

    page.goto(f"{url}/strategies")
    page.get_by_text("Guarded").first.wait_for()
    _settle(page)
    page.goto(f"{url}/strategies/{strategy_id}")
    page.locator("#strategy-chart .main-svg").first.wait_for()
    page.locator("#strategy-chart .modebar-btn").first.hover()  # plotly's toolbar shows on hover
    with page.expect_download() as download:  # plotly.js draws the PNG through a blob: image
        page.locator("#strategy-chart [data-title='Download plot as a PNG']").click()
    assert download.value.suggested_filename.endswith(".png")
    _settle(page)
    page.goto(f"{url}/accounts")
    page.get_by_text("Csp").first.wait_for()
    _settle(page)
    page.goto(f"{url}/membership")
    page.locator("#membership-state").get_by_text("never need to pay").wait_for()
    _settle(page)
    page.goto(f"{url}/admin")
    page.get_by_role("button", name="Search").wait_for()
    _settle(page)
    page.goto(f"{url}/profile")
    page.get_by_role("heading", name="Your profile").wait_for()
    _settle(page)
    page.goto(f"{url}/reset/{_reset_token(app_engine, make_member(app_engine, inviter=admin))}")
    page.get_by_role("button", name="Set password").wait_for()
    _settle(page)
    page.goto(f"{url}/logout")
    page.wait_for_url(re.compile(r"/login/?$"))
    _settle(page)
    _assert_no_violation(page, violations)


def test_the_card_form_and_3d_secure_work_under_the_csp(app_server, app_engine, page, violations):
    member = make_member(app_engine, name="Paz Payer")
    page.goto(f"{app_server.url}/login?next=%2Fmembership")
    page.fill("#email", member.email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/membership/?$"))
    # localstripe's Stripe.js (loaded from its own origin, as Stripe.js is from js.stripe.com) draws the card field.
    field = page.locator("#card-element")
    for placeholder, value in [("number", THREE_D_SECURE), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123")]:
        field.locator(f"input[placeholder={placeholder}]").fill(value)
    field.locator("input[placeholder=postal_code]").fill("12345")
    page.get_by_role("button", name="Pay 499.00 USD").click()
    page.get_by_role("button", name="Complete authentication").click()  # the card set-up's 3-D Secure
    page.get_by_role("button", name="Complete authentication").click()  # the payment's
    page.wait_for_url(re.compile(r"/dashboard/?$"))
    page.get_by_role("heading", name="Dashboard").wait_for()
    _settle(page)
    _assert_no_violation(page, violations)


def test_no_page_can_be_framed_by_another_site(app_server, localstripe, page):
    # Another site's page (about:blank, with an origin of its own) framing a page that may be framed, and the app's.
    framable, guarded = f"{localstripe.url}/js.stripe.com/v3/", f"{app_server.url}/login"
    page.set_content(
        f'<iframe name="framable" src="{framable}"></iframe><iframe name="guarded" src="{guarded}"></iframe>'
    )
    page.wait_for_load_state("load")
    shown, refused = page.frame(name="framable"), page.frame(name="guarded")
    assert shown.url == framable
    assert refused.url.startswith("chrome-error:")  # the browser refused to show the app's page
    assert refused.locator("#email").count() == 0
