"""The page frame in chromium: a phone's one-line header with its menu, and the page for unknown addresses."""

import re

import pytest

from tests.factories import grant_membership, make_member

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}


def test_a_phone_gets_a_one_line_header_whose_menu_reaches_every_page(app_server, app_engine, page, sign_in):
    member = make_member(app_engine, name="Pia Phone")
    grant_membership(app_engine, member)
    page.set_viewport_size(PHONE)
    sign_in(member.email)
    header = page.locator("#menu").locator("xpath=ancestor::div[contains(@class, 'rt-Flex')][last()]")
    assert header.bounding_box()["height"] < 80  # not a third of the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#menu").click()
    page.get_by_role("menuitem", name="Strategies").click()
    page.wait_for_url(re.compile(r"/strategies/?$"))
    page.locator("#menu").click()
    page.get_by_role("menuitem", name="Pia Phone").click()
    page.wait_for_url(re.compile(r"/profile/?$"))
    page.locator("#menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/?$"))


def test_an_unknown_address_says_so_with_the_way_back(app_server, page):
    page.goto(f"{app_server.url}/no/such/page")
    page.get_by_role("heading", name="There is no page at this address").wait_for()
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(re.compile(r"/login/?$"))
