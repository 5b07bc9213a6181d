import re

import pytest

from tests.factories import PASSWORD


@pytest.fixture
def sign_in(app_server, page):
    """Sign `email` in through the login form and wait for the page it lands on."""

    def sign_in(email: str, lands_on: str = "/dashboard") -> None:
        page.goto(f"{app_server.url}/login")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(rf"{re.escape(lands_on)}/?$"))

    return sign_in
