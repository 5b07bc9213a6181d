"""The dashboard and a strategy page on a phone (390 by 844): nothing wider than the screen, nothing scrolling
sideways unannounced, and the strategy chart's legend clear of its plots."""

import re
from decimal import Decimal

import pytest

from projectalgo import strategies
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot, epoch_ms
from tests.factories import PASSWORD, grant_membership, make_member, make_strategy, store_one

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}

# Every element wider than the screen, or scrolling sideways, as "tag#id.class (left..right)". An element inside
# a box that clips it (overflow other than visible) is that box's matter: the box is checked itself. SVG
# internals (plotly's) are clipped by their <svg>; an element wholly left of the screen is parked there unseen.
OVERFLOWS = """() => {
  const width = document.documentElement.clientWidth;
  const name = (e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${String(e.className).split(" ")[0]}`;
  const clipped = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) if (getComputedStyle(p).overflowX !== "visible") return true;
    return false;
  };
  const found = [];
  const page = document.documentElement.scrollWidth;
  if (page > width) found.push(`the page scrolls sideways: ${page}`);
  for (const e of document.body.querySelectorAll("*")) {
    if (e.closest("svg") && e.tagName.toLowerCase() !== "svg") continue;
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height || r.right <= 0) continue; // hidden, or a helper parked off screen (plotly's)
    if ((r.left < -1 || r.right > width + 1) && !clipped(e)) found.push(`${name(e)} (${r.left}..${r.right})`);
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
    if (scrolls && e.scrollWidth > e.clientWidth + 1) found.push(`${name(e)} scrolls sideways`);
  }
  return found;
}"""

# The strategy chart's legend, and each of its plot areas, as rectangles.
LEGEND_AND_PLOTS = """() => {
  const chart = document.querySelector("#strategy-chart");
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const plots = [...chart.querySelectorAll(".draglayer .nsewdrag")].map(box);
  return {legend: box(chart.querySelector("g.legend")), plots};
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_the_dashboard_and_a_strategy_page_fit_a_phone(app_server, app_engine, phone):
    owner = make_member(app_engine, email="phone@example.com")
    grant_membership(app_engine, owner)
    long_name = "L" * strategies.NAME_MAX_LENGTH  # unbroken: it must wrap
    strategy_id, _ = make_strategy(app_engine, owner, name=long_name, account="A brokerage account with a long name")
    make_strategy(app_engine, owner, name="Second", account="Side")
    store, now = SqlSnapshotStore(app_engine), epoch_ms(utcnow())
    with session_scope(app_engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    for n in range(60):
        values = dict.fromkeys(NUMBER_FIELDS, Decimal(1_234_567 + n * 1000))
        store_one(store, Snapshot(strategy_id, account_id, now - (60 - n) * 60_000, **values, symbol="XBTUSD"))

    phone.goto(f"{app_server.url}/login")
    phone.fill("#email", "phone@example.com")
    phone.fill("#password", PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url(re.compile(r"/dashboard/?$"))
    phone.locator("#equity-chart .legendtoggle, #equity-chart .scatterlayer .trace").first.wait_for(state="attached")
    phone.locator(f"#status-{strategy_id}").get_by_text("live").wait_for()
    assert phone.evaluate(OVERFLOWS) == []
    title, modebar = (
        phone.locator(f"#equity-chart {selector}").first.bounding_box() for selector in (".gtitle", ".modebar")
    )
    assert not _overlap(
        *([box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]] for box in (title, modebar))
    )

    phone.goto(f"{app_server.url}/strategies/{strategy_id}")
    phone.locator("#strategy-chart g.legend").wait_for(state="attached")
    phone.locator("#snapshot-table").get_by_text("$1,293,567.00").first.wait_for()
    assert phone.evaluate(OVERFLOWS) == []
    drawn = phone.evaluate(LEGEND_AND_PLOTS)
    assert len(drawn["plots"]) == 5
    assert not [plot for plot in drawn["plots"] if _overlap(drawn["legend"], plot)]
    assert drawn["legend"][0] >= 0 and drawn["legend"][2] <= PHONE["width"]  # all of it on the screen
