"""Performance net of deposits in chromium: a bot's account topped up by $5,000 shows a $5,000 deposit, not a
$5,000 profit, on the dashboard and the strategy page, and the owner's corrections change the figures there."""

import pytest
import requests
from playwright.sync_api import expect

from projectalgo.snapshots import EXAMPLE_DATA
from tests.factories import grant_membership, make_member, make_strategy

pytestmark = pytest.mark.e2e


def _post(url: str, token: str, wallet: str, realised: str) -> None:
    body = {**EXAMPLE_DATA, "wallet_balance": wallet, "margin_balance": wallet, "realised_pnl": realised}
    answer = requests.post(
        f"{url}/api/v1/strategy/", json={"data": body}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text


def test_a_deposit_is_not_profit_and_the_owner_corrects_the_flows(app_server, app_engine, page, sign_in):
    member = make_member(app_engine, email="saver@example.com")
    grant_membership(app_engine, member)
    strategy_id, token = make_strategy(app_engine, member, name="Topped up")
    _post(app_server.url, token, "10000", "0")
    _post(app_server.url, token, "15000", "0")  # $5,000 moved in: the realised PnL did not move
    _post(app_server.url, token, "15100", "100")  # $100 earned
    sign_in("saver@example.com")

    # The dashboard: equity 15,100 from 10,000 is $100 earned and $5,000 moved in.
    expect(page.locator("#equity")).to_have_text("$15,100.00")
    expect(page.locator("#pnl")).to_have_text("↑ $100.00")
    expect(page.locator("#pnl-percent")).to_have_text("+0.67%")
    expect(page.locator("#net-flows")).to_have_text("$5,000.00")
    # The comparison table: the same 24H return for the strategy, net of the deposit; sortable.
    expect(page.locator(f"#return-24H-{strategy_id}")).to_have_text("+0.67%")
    page.locator("#sort-24H").click()
    expect(page.locator("#sort-24H")).to_contain_text("↓")

    page.goto(f"{app_server.url}/strategies/{strategy_id}")
    expect(page.locator("#perf-profit")).to_have_text("$100.00")
    expect(page.locator("#perf-deposits")).to_have_text("$5,000.00")
    flows = page.locator("#flows-table")
    expect(flows).to_contain_text("$5,000.00")
    expect(flows).to_contain_text("detected")
    expect(page.locator("#returns-chart")).to_be_visible()
    expect(page.locator("#daily-pnl-chart")).to_be_visible()

    flows.get_by_role("button", name="Not a flow").click()
    expect(page.locator("#perf-profit")).to_have_text("$5,100.00")
    expect(flows).to_contain_text("dismissed")
    flows.get_by_role("button", name="Count as a flow").click()  # undone
    expect(page.locator("#perf-profit")).to_have_text("$100.00")
    flows.get_by_label("Corrected amount").fill("4,000")
    flows.get_by_role("button", name="Correct").click()
    expect(page.locator("#perf-profit")).to_have_text("$1,100.00")
    expect(flows).to_contain_text("(found $5,000.00)")

    page.locator("#add-flow").get_by_label("Amount").fill("abc")
    page.locator("#add-flow").get_by_label("When").fill("2024-03-01T12:00")
    page.locator("#add-flow").get_by_role("button", name="Add a flow").click()
    expect(page.get_by_role("alert")).to_contain_text("is not an amount")
