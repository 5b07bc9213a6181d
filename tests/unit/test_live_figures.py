"""What each pushed snapshot changes on an open dashboard or strategy page (dashboard.LiveEquity, LiveStrategy),
against values worked out by hand."""

from decimal import Decimal

from projectalgo import charts, dashboard
from projectalgo.clock import HOUR_MS
from projectalgo.snapshots import Snapshot

HOUR = 10 * HOUR_MS  # some hour's start


def snap(strategy_id, account_id, at_ms, wallet="0", margin="0"):
    zero = Decimal(0)
    return Snapshot(strategy_id, account_id, at_ms, zero, Decimal(margin), Decimal(wallet), zero, zero, zero, "XBTUSD")


def test_the_combined_equity_counts_each_account_once_and_ignores_a_backfilled_older_wallet():
    # Strategies 1 and 2 trade on account 10, strategy 3 on account 20; the range started at $120.
    live = dashboard.LiveEquity(
        {1: 10, 2: 10, 3: 20}, {10: (HOUR, Decimal(100)), 20: (HOUR, Decimal(50))}, Decimal(120), HOUR_MS
    )
    assert live.numbers() == dashboard.EquityNumbers(
        "$150.00", "↑ $30.00", "green", "+25.00%", charts.iso_time(HOUR), "$0.00"
    )

    live, tail = live.apply(snap(2, 10, HOUR + 2000, wallet="110"))  # account 10 now holds 110: 110 + 50
    assert tail == {"seq": 1, "points": [[0, HOUR, 160.0]]}
    live, tail = live.apply(snap(1, 10, HOUR + 1500, wallet="999"))  # older than account 10's newest: no change
    assert tail == {"seq": 2, "points": [[0, HOUR, 160.0]]}
    assert live.numbers() == dashboard.EquityNumbers(
        "$160.00", "↑ $40.00", "green", "+33.33%", charts.iso_time(HOUR + 2000), "$0.00"
    )
    live, tail = live.apply(snap(3, 20, HOUR + HOUR_MS + 5, wallet="10"))  # the next hour's bucket: 110 + 10
    assert tail == {"seq": 3, "points": [[0, HOUR + HOUR_MS, 120.0]]}
    assert live.numbers().change == "↑ $0.00" and live.numbers().percent == "+0.00%"
    live, _ = live.apply(snap(3, 20, HOUR + HOUR_MS + 6, wallet="0"))
    shown = live.numbers()
    assert (shown.change, shown.tone, shown.percent) == ("↓ -$10.00", "red", "-8.33%")


def at(strategy_id, account_id, at_ms, wallet, realised):
    d = Decimal
    return Snapshot(strategy_id, account_id, at_ms, d(0), d(wallet), d(wallet), d(realised), d(0), d(0), "X")


def test_money_moved_into_an_account_is_not_profit_and_counted_once():
    # Strategies 1 and 2 share account 10. The range started at $1,000 and has earned $50 (strategy 1's realised).
    opened = dashboard.account_flow(at(1, 10, HOUR, "1050", "50"))
    live = dashboard.LiveEquity(
        {1: 10, 2: 10, 3: 20}, {10: (HOUR, Decimal(1050))}, Decimal(1000), HOUR_MS, 0, Decimal(0), {10: opened}
    )
    assert live.numbers().change == "↑ $50.00"
    # $5,000 deposited: strategy 2 reports the wallet first (its own realised PnL 0) ...
    live, _ = live.apply(at(2, 10, HOUR + 1, "6050", "0"))
    # ... then strategy 1, having earned 10 more: a $5,000 flow, once; its 10 is profit.
    live, _ = live.apply(at(1, 10, HOUR + 2, "6060", "60"))
    shown = live.numbers()
    # 6,060 - 1,000 - 5,000 = 60 profit; at risk 1,000 + 5,000
    assert (shown.equity, shown.change, shown.percent, shown.net_flows) == (
        "$6,060.00",
        "↑ $60.00",
        "+1.00%",
        "$5,000.00",
    )
    live, _ = live.apply(at(1, 10, HOUR + 2, "6060", "60"))  # the same snapshot again (pushed during a load)
    assert live.numbers().net_flows == "$5,000.00"
    # Strategy 2 realises 40 on the shared account: its profit, not a deposit seen from strategy 1's side.
    live, _ = live.apply(at(2, 10, HOUR + 3, "6100", "40"))
    assert (live.numbers().change, live.numbers().net_flows) == ("↑ $100.00", "$5,000.00")
    # Account 20 first reports after the page loaded: its $700 is where it starts, not profit.
    live, _ = live.apply(at(3, 20, HOUR + 4, "700", "0"))
    assert (live.numbers().equity, live.numbers().change) == ("$6,800.00", "↑ $100.00")


def test_another_strategys_snapshot_changes_nothing():
    live = dashboard.LiveEquity({1: 10}, {}, Decimal(0), HOUR_MS)
    assert live.apply(snap(9, 10, HOUR, wallet="5")) is None
    assert live.numbers() == dashboard.NO_EQUITY
    assert dashboard.LiveStrategy(5, 100.0).apply(snap(6, 1, HOUR, margin="1")) is None


def test_the_strategy_drawdown_is_measured_from_the_highest_margin_seen():
    live = dashboard.LiveStrategy(5, peak_margin=100.0, seq=7)  # the chart's range peaked at 100
    live, tail = live.apply(snap(5, 1, HOUR, wallet="100", margin="120"))  # a new peak: no drawdown
    assert (live.peak_margin, tail["seq"], tail["points"][-1]) == (120.0, 8, [7, HOUR, 0.0])
    live, tail = live.apply(snap(5, 1, HOUR + 1, wallet="100", margin="90"))  # 90 / 120 - 1
    assert (live.peak_margin, tail["points"][-1]) == (120.0, [7, HOUR + 1, -0.25])
    assert tail["points"][0] == [0, HOUR + 1, 100.0] and tail["points"][2] == [2, HOUR + 1, -10.0]  # wallet, upnl


def test_a_withdrawal_is_no_fall_of_the_strategy_chart():
    before = snap(5, 1, HOUR, wallet="1000", margin="1000")
    live = dashboard.LiveStrategy(5, peak_margin=1000.0, last_ms=HOUR, last=before)
    live, tail = live.apply(snap(5, 1, HOUR + 1, wallet="600", margin="600"))  # 400 taken out, nothing lost
    assert (live.peak_margin, tail["points"][-1]) == (600.0, [7, HOUR + 1, 0.0])
    live, tail = live.apply(snap(5, 1, HOUR + 2, wallet="600", margin="540"))  # then a 10 % loss
    assert tail["points"][-1] == [7, HOUR + 2, -0.1]


def test_a_snapshot_the_strategy_chart_already_holds_is_not_charted_again():
    # The chart was read with snapshots up to HOUR + 5 (the tab was watched before the read, so it may be pushed).
    live = dashboard.LiveStrategy(5, peak_margin=100.0, seq=3, last_ms=HOUR + 5)
    assert live.apply(snap(5, 1, HOUR + 5, margin="100")) is None
    assert live.apply(snap(5, 1, HOUR + 4, margin="100")) is None
    live, tail = live.apply(snap(5, 1, HOUR + 6, margin="100"))
    assert (live.seq, live.last_ms, tail["seq"]) == (4, HOUR + 6, 4)
