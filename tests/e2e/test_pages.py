import pytest

pytestmark = pytest.mark.e2e


def test_the_sign_in_page_renders_in_chromium(app_server, page):
    page.goto(f"{app_server.url}/login")
    page.get_by_role("heading", name="Sign in").wait_for()
    assert "ProjectAlgo" in page.title()
    assert page.get_by_text("Built with Reflex").count() == 0
