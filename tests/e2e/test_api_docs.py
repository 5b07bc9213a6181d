"""The API's interactive docs (/api/docs) in chromium: Swagger UI, served by the app itself, draws the contract and
calls the API under the page's own Content-Security-Policy, with nothing refused."""

import pytest

pytestmark = pytest.mark.e2e
# Runs in the page before its own scripts: reports each refusal the CSP makes, and counts the reports the
# test's side has taken (window.cspReported).
WATCH_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`)
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


def test_swagger_ui_draws_the_contract_and_calls_the_api_without_a_csp_violation(app_server, page, violations):
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("pageerror", lambda error: failed.append(str(error)))

    page.goto(f"{app_server.url}/api/docs")
    bot_route = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/v1/strategy/"))
    bot_route.first.wait_for()  # Swagger UI fetched /api/openapi.json and drew the operations
    page.get_by_text("/api/v1/health/ready", exact=True).wait_for()

    # The readiness check, tried out from the page: Swagger UI calls the API and shows its answer.
    health = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/v1/health/ready"))
    health.locator(".opblock-summary").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    health.locator(".live-responses-table .response-col_status", has_text="200").wait_for()

    # The bot route's request body schema, drawn from the contract.
    bot_route.first.locator(".opblock-summary").click()
    bot_route.first.locator(".model-example, .body-param").first.wait_for()
    page.wait_for_load_state("networkidle")

    assert failed == []
    assert violations == []
    # The watch works in this very page: a load the CSP refuses is reported.
    page.evaluate("() => { new Image().src = 'https://example.org/probe.png'; }")
    page.wait_for_function("() => window.cspReported > 0")  # reported: the test's side has it
    assert violations and all("img-src" in text or "example.org" in text for text in violations), violations
