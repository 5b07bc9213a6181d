"""Cash flows told apart from profit, and the figures net of them (projectalgo.analytics), against values worked
out by hand in each test; and properties of flows and returns (hypothesis)."""

from datetime import date, timedelta, timezone, tzinfo
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projectalgo import analytics
from projectalgo.analytics import (
    CashFlow,
    ConfirmFlow,
    DailyPnl,
    Drawdown,
    EquityPoint,
    FlowTolerance,
    ManualFlow,
    NotAFlow,
    ReturnPoint,
)
from projectalgo.clock import DAY_MS, HOUR_MS, MINUTE_MS
from projectalgo.snapshots import Snapshot

D = Decimal
T0 = 1_709_251_200_000  # 2024-03-01 00:00:00 UTC
T1, T2, T3, T4, T5 = (T0 + n * HOUR_MS for n in range(1, 6))


def snap(at_ms, wallet, realised="0", margin=None, price="100", symbol="XBTUSD", strategy_id=1):
    return Snapshot(
        strategy_id,
        7,
        at_ms,
        D(price),
        D(margin if margin is not None else wallet),
        D(wallet),
        D(realised),
        D(0),
        D(0),
        symbol,
    )


def points(*pairs):
    return [EquityPoint(at_ms, D(equity)) for at_ms, equity in pairs]


def close(a, b, within="1e-25"):
    return abs(a - b) <= D(within)


def close_relative(a, b):
    """Equal to 25 significant digits: the test's own data are rounded to 28 (Decimal's default context)."""
    return abs(a - b) <= D("1e-25") * max(D(1), abs(b))


# --- Detection -------------------------------------------------------------------------------------------------


def test_a_deposit_is_a_flow_and_not_profit():
    snaps = [snap(T0, "10000"), snap(T1, "15000"), snap(T2, "15300", realised="300")]
    # T0 -> T1: wallet +5000, realised +0: 5000 - 0 = +5000, a deposit. T1 -> T2: +300 - 300 = 0.
    assert analytics.detect_cash_flows(snaps) == (CashFlow(T1, D(5000), "detected", D(5000)),)
    figures = analytics.strategy_performance(snaps)
    assert figures is not None
    # profit = 15300 - 10000 - 5000 = 300, all of it realised
    assert (figures.deposits, figures.withdrawals, figures.net_flows, figures.profit) == (D(5000), 0, D(5000), D(300))
    # r1 = (15000 - 10000 - 5000) / (10000 + 5000) = 0; r2 = 300 / 15000 = 0.02; TWR = 1 * 1.02 - 1
    assert figures.time_weighted_return == D("0.02")


def test_a_withdrawal_is_a_negative_flow_and_earns_until_the_interval_ends():
    snaps = [snap(T0, "10000", realised="200"), snap(T1, "8300", realised="500")]
    # wallet -1700, realised +300: -1700 - 300 = -2000, a withdrawal
    (flow,) = analytics.detect_cash_flows(snaps)
    assert (flow.amount, flow.is_deposit) == (D(-2000), False)
    figures = analytics.strategy_performance(snaps)
    assert figures is not None
    # profit = 8300 - 10000 - (-2000) = 300; the withdrawal lands at the end: r = 300 / 10000 = 0.03
    assert (figures.withdrawals, figures.profit, figures.time_weighted_return) == (D(-2000), D(300), D("0.03"))


def test_a_flow_and_a_loss_in_the_same_interval():
    snaps = [snap(T0, "10000"), snap(T1, "15200", realised="-800")]
    # wallet +5200, realised -800: 5200 - (-800) = +6000 deposited, and 800 lost
    assert analytics.detect_cash_flows(snaps) == (CashFlow(T1, D(6000), "detected", D(6000)),)
    figures = analytics.strategy_performance(snaps)
    assert figures is not None
    # profit = 15200 - 10000 - 6000 = -800; the deposit lands at the start: r = -800 / (10000 + 6000) = -0.05
    assert (figures.profit, figures.time_weighted_return) == (D(-800), D("-0.05"))


def test_the_first_snapshot_is_the_opening_balance_and_a_flow_on_the_first_interval_counts():
    # The bot starts on an empty account, which is funded before the second snapshot.
    snaps = [snap(T0, "0"), snap(T1, "1000"), snap(T2, "1100", realised="100")]
    # The opening balance (0) is no flow; T0 -> T1: +1000 - 0 = +1000 deposited.
    assert analytics.detect_cash_flows(snaps) == (CashFlow(T1, D(1000), "detected", D(1000)),)
    # A flow the bot states on the first snapshot is in the opening balance: left out.
    assert analytics.detect_cash_flows(snaps, stated={T0: D(1000)}) == analytics.detect_cash_flows(snaps)
    figures = analytics.strategy_performance(snaps)
    assert figures is not None
    # r1 = (1000 - 0 - 1000) / (0 + 1000) = 0 (the deposit was all that was at risk); r2 = 100 / 1000 = 0.1
    assert (figures.profit, figures.time_weighted_return) == (D(100), D("0.1"))


def test_a_brokers_reset_of_realised_pnl_is_no_flow():
    tolerance = analytics.DEFAULT_TOLERANCE  # limit on a 10000 wallet: max(1, 0.001 * 10000) = 10
    before = snap(T0, "10000", realised="750")
    # Reset, wallet unchanged: plain reading 0 - (0 - 750) = +750 > 10, but realised is now 0 (<= 10) and was 750
    # (> 10): the counter restarted, flow = 0 - 0 = 0.
    assert analytics.unexplained_change(before, snap(T1, "10000", realised="0"), tolerance) == 0
    # Reset and 4 realised since: plain 4 - (4 - 750) = 750; restarted: 4 - 4 = 0.
    assert analytics.unexplained_change(before, snap(T1, "10004", realised="4"), tolerance) == 0
    # Reset alongside a withdrawal: plain -3000 - (-750) = -2250; restarted: -3000 - 0 = -3000 withdrawn.
    assert analytics.unexplained_change(before, snap(T1, "7000", realised="0"), tolerance) == D(-3000)
    # The wallet fell by exactly the realised PnL that vanished: -750 - (-750) = 0 explains it, a loss, no reset.
    assert analytics.unexplained_change(before, snap(T1, "9250", realised="0"), tolerance) == 0
    # A negative realised PnL reset to 0, wallet unchanged: plain 0 - 300 = -300; restarted: 0. No withdrawal.
    assert analytics.unexplained_change(snap(T0, "10000", "-300"), snap(T1, "10000", "0"), tolerance) == 0
    # In a series: the reset is not profit either; profit = 10000 - 10000 - 0 = 0.
    figures = analytics.strategy_performance([before, snap(T1, "10000", realised="0")])
    assert figures is not None and (figures.net_flows, figures.profit) == (0, 0)


def test_the_tolerance_takes_the_larger_of_its_absolute_and_relative_limits():
    # On 10000: max(1, 0.001 * 10000) = 10. A change of exactly 10 is within; 10.01 is a flow.
    assert analytics.unexplained_change(snap(T0, "10000"), snap(T1, "10010")) == 0
    assert analytics.unexplained_change(snap(T0, "10000"), snap(T1, "10010.01")) == D("10.01")
    # On 100: max(1, 0.1) = 1. A 1.50 change is a flow.
    assert analytics.unexplained_change(snap(T0, "100"), snap(T1, "101.50")) == D("1.50")
    # Absolute only: relative 0 leaves 1, whatever the wallet.
    assert analytics.unexplained_change(snap(T0, "10000"), snap(T1, "10002"), FlowTolerance(relative=D(0))) == D(2)
    # Nothing tolerated: a cent is a flow.
    exact = FlowTolerance(absolute=D(0), relative=D(0))
    assert analytics.unexplained_change(snap(T0, "10000"), snap(T1, "10000.01"), exact) == D("0.01")
    with pytest.raises(ValueError, match="never negative"):
        FlowTolerance(absolute=D(-1))


def test_gaps_in_time_mean_nothing_special():
    week, month = T0 + 7 * DAY_MS, T0 + 30 * DAY_MS
    snaps = [snap(T0, "10000"), snap(week, "10400", realised="400"), snap(month, "12400", realised="400")]
    # week: 400 - 400 = 0; month: 2000 - 0 = +2000 deposited
    assert analytics.detect_cash_flows(snaps) == (CashFlow(month, D(2000), "detected", D(2000)),)
    figures = analytics.strategy_performance(snaps)
    assert figures is not None
    # r1 = 400 / 10000 = 0.04; r2 = (12400 - 10400 - 2000) / (10400 + 2000) = 0; TWR 0.04; profit 400
    assert (figures.profit, figures.time_weighted_return) == (D(400), D("0.04"))
    # The days between hold no snapshot: no bar for them, a bar for each day an interval ends.
    assert [bar.day for bar in figures.days] == [date(2024, 3, 8), date(2024, 3, 31)]
    assert [bar.pnl for bar in figures.days] == [D(400), D(0)]


def test_a_single_snapshot_has_no_flows_and_figures_of_nothing():
    only = [snap(T0, "10000")]
    assert analytics.detect_cash_flows(only, stated={T0: D(5)}) == ()
    figures = analytics.strategy_performance(only)
    assert figures is not None
    assert (figures.profit, figures.time_weighted_return, figures.net_flows) == (0, 0, 0)
    assert figures.max_drawdown is None and figures.days == () and figures.curve == (ReturnPoint(T0, D(0)),)
    assert (figures.best_day, figures.worst_day, figures.winning_day_share, figures.sharpe) == (None,) * 4
    assert analytics.strategy_performance([]) is None and analytics.performance([]) is None


def test_snapshots_are_taken_in_time_order_and_of_one_strategy():
    snaps = [snap(T1, "15000"), snap(T0, "10000")]
    assert analytics.detect_cash_flows(snaps) == (CashFlow(T1, D(5000), "detected", D(5000)),)
    with pytest.raises(ValueError, match="several strategies"):
        analytics.detect_cash_flows([snap(T0, "1"), snap(T1, "1", strategy_id=2)])


def test_stated_flows_take_precedence_over_detection_for_their_interval():
    snaps = [snap(T0, "10000"), snap(T1, "15000"), snap(T2, "15000"), snap(T3, "14000")]
    # Detection alone: +5000 at T1, -1000 at T3.
    assert [flow.amount for flow in analytics.detect_cash_flows(snaps)] == [D(5000), D(-1000)]
    # The bot says 4000 came in at T1 (the other 1000 is profit) and nothing moved at T3 (a 1000 loss); a flow
    # stated between snapshots (T1 + 1 min) lands in the interval (T1, T2]; two there add up: 20 + 30.
    stated = {T1: D(4000), T3: D(0), T1 + MINUTE_MS: D(20), T1 + 2 * MINUTE_MS: D(30), T0 - 1: D(9), T3 + 1: D(9)}
    assert analytics.detect_cash_flows(snaps, stated=stated) == (
        CashFlow(T1, D(4000), "stated", D(4000)),
        CashFlow(T2, D(50), "stated", D(50)),
    )
    figures = analytics.strategy_performance(snaps, stated=stated)
    assert figures is not None
    # profit = 14000 - 10000 - (4000 + 50) = -50: +1000 at T1, -50 at T2, -1000 at T3
    assert figures.profit == D(-50)


def test_a_coarse_series_counts_the_raw_intervals_flows_added_up_not_what_its_points_suggest():
    """Hourly points T0, T2, T4 over raw snapshots each hour. Between raw snapshots, $8 of fees a time (below the
    $10 tolerance: profit and loss), a $500 deposit ending at T1, a stated -$100 ending at T3: the raw intervals'
    flow points. Between the hourly points the wallet fell $16 beyond realised PnL twice; found there, that
    would be two "flows" of -$16 and -$116 (beyond the tolerance); counted from the flow points it is +$500 at T2
    and the stated -$100 at T4, and the fees stay losses."""
    hourly = [snap(T0, "10000"), snap(T2, "10484"), snap(T4, "10368")]
    points = [analytics.FlowPoint(T1, D(500), False), analytics.FlowPoint(T3, D(-100), True)]
    assert analytics.flows_over(points, [T0, T2, T4]) == (
        analytics.CashFlow(T2, D(500), "detected", D(500)),
        analytics.CashFlow(T4, D(-100), "stated", D(-100)),
    )
    found = analytics.strategy_performance(hourly, analytics.FlowTolerance(D(10), D(0)), points=points)
    assert (found.net_flows, found.profit) == (D(400), D(-32))
    # Outside the series: a flow at or before its first point is in the opening balance, after the last unseen.
    assert (
        analytics.flows_over([analytics.FlowPoint(T0, D(5), False), analytics.FlowPoint(T5, D(5), False)], [T0, T4])
        == ()
    )
    # A deposit and a withdrawal in one interval are one net flow; netting to 0 they are none.
    both = [analytics.FlowPoint(T1, D(300), False), analytics.FlowPoint(T2, D(-300), False)]
    assert analytics.flows_over(both, [T0, T4]) == ()


def test_a_member_confirms_a_flow_as_found():
    snaps = [snap(T0, "10000"), snap(T1, "15000")]
    assert analytics.cash_flows(snaps, corrections=[ConfirmFlow(T1, D(5000))]) == (
        CashFlow(T1, D(5000), "confirmed", D(5000)),
    )
    # Confirming where nothing was found changes nothing.
    assert analytics.cash_flows(snaps, corrections=[ConfirmFlow(T0 - 1, D(0))]) == analytics.detect_cash_flows(snaps)


def test_a_member_corrects_a_flows_amount():
    snaps = [snap(T0, "10000"), snap(T1, "15000")]
    flows = analytics.cash_flows(snaps, corrections=[ConfirmFlow(T1, D(5000), D(4500))])
    assert flows == (CashFlow(T1, D(4500), "corrected", D(5000)),)  # what was found is kept beside it
    figures = analytics.strategy_performance(snaps, corrections=[ConfirmFlow(T1, D(5000), D(4500))])
    assert figures is not None
    # profit = 15000 - 10000 - 4500 = 500; r = 500 / (10000 + 4500) = 500 / 14500
    assert figures.profit == D(500) and close(figures.time_weighted_return, D(500) / D(14500))
    # An amount where detection found nothing (under the tolerance): the member's word, 0 seen, 5 set.
    quiet = [snap(T0, "10000"), snap(T1, "10005")]
    assert analytics.cash_flows(quiet, corrections=[ConfirmFlow(T1, D(0), D(5))]) == (CashFlow(T1, D(5), "corrected"),)
    # A corrected amount of 0 is no flow.
    assert analytics.cash_flows(snaps, corrections=[ConfirmFlow(T1, D(5000), D(0))]) == ()


def test_a_member_marks_a_change_as_not_a_flow():
    snaps = [snap(T0, "10000"), snap(T1, "15000")]
    assert analytics.cash_flows(snaps, corrections=[NotAFlow(T1, D(5000))]) == ()
    figures = analytics.strategy_performance(snaps, corrections=[NotAFlow(T1, D(5000))])
    assert figures is not None
    # The 5000 now counts as profit: 15000 - 10000 - 0; r = 5000 / 10000
    assert (figures.profit, figures.time_weighted_return) == (D(5000), D("0.5"))
    # The last word for an at_ms wins: marked, then confirmed again as found.
    assert analytics.cash_flows(snaps, corrections=[NotAFlow(T1, D(5000)), ConfirmFlow(T1, D(5000))]) == (
        CashFlow(T1, D(5000), "confirmed", D(5000)),
    )


def test_a_correction_made_on_raw_snapshots_holds_on_the_hourly_roll_ups():
    # Raw: 10000 at T0, a 5000 deposit seen at T0 + 20 min, then 300 earned by T1 + 40 min.
    raw = [
        snap(T0, "10000"),
        snap(T0 + 20 * MINUTE_MS, "15000"),
        snap(T1, "15100", realised="100"),
        snap(T1 + 40 * MINUTE_MS, "15300", realised="300"),
    ]
    said = [ConfirmFlow(T0 + 20 * MINUTE_MS, D(5000), D(4000))]  # 1000 of it was a transfer of profit
    assert [flow.amount for flow in analytics.cash_flows(raw, corrections=said)] == [D(4000)]
    # Each hour's last snapshot (T1, T1 + 40 min): detection finds the 5000 in (T0, T1]; the correction's -1000 too.
    hourly = [raw[0], raw[2], raw[3]]
    assert analytics.cash_flows(hourly, corrections=said) == (CashFlow(T1, D(4000), "corrected", D(5000)),)
    raw_figures = analytics.strategy_performance(raw, corrections=said)
    hourly_figures = analytics.strategy_performance(hourly, corrections=said)
    assert raw_figures and hourly_figures and raw_figures.profit == hourly_figures.profit == D(1300)


def test_a_member_adds_a_flow_by_hand_at_a_date():
    # Wallet 10000 -> 10008 (under the tolerance of 10): nothing found. The member says 8 came in at T1 - 10 min.
    snaps = [snap(T0, "10000"), snap(T1, "10008"), snap(T2, "10108", realised="100")]
    manual = ManualFlow(T1 - 10 * MINUTE_MS, D(8))
    assert analytics.cash_flows(snaps, corrections=[manual, ManualFlow(T2, D(0))]) == (
        CashFlow(T1 - 10 * MINUTE_MS, D(8), "manual"),
    )
    figures = analytics.strategy_performance(snaps, corrections=[manual])
    assert figures is not None
    # It lands in (T0, T1]: profit = 10108 - 10000 - 8 = 100; r1 = 0 / 10008 = 0, r2 = 100 / 10008
    assert figures.profit == D(100) and close(figures.time_weighted_return, D(100) / D(10008))
    # A manual flow adds to a found one in the same interval: 5000 found + 250 by hand.
    both = analytics.cash_flows([snap(T0, "10000"), snap(T1, "15000")], corrections=[ManualFlow(T1, D(250))])
    assert [(flow.amount, flow.source) for flow in both] == [(D(5000), "detected"), (D(250), "manual")]


# --- Figures ---------------------------------------------------------------------------------------------------


def test_twr_and_max_drawdown_with_its_dates_worked_by_hand():
    series = points((T0, "1000"), (T1, "1200"), (T2, "900"), (T3, "2100"), (T4, "1810"), (T5, "2172"))
    flows = [CashFlow(T3, D(1100), "detected"), CashFlow(T4, D(-500), "detected")]
    figures = analytics.performance(series, flows)
    assert figures is not None
    # r1 = 200 / 1000 = 0.2                            index 1.2     (a peak, at T1)
    # r2 = -300 / 1200 = -0.25                         index 0.9     (0.9 / 1.2 - 1 = -0.25, the trough, at T2)
    # r3 = (2100 - 900 - 1100) / (900 + 1100) = 0.05  index 0.945   (deposit at the interval's start)
    # r4 = (1810 - 2100 + 500) / 2100 = 0.1            index 1.0395  (withdrawal at its end)
    # r5 = (2172 - 1810) / 1810 = 0.2                  index 1.2474  (above 1.2: recovered at T5)
    assert [point.value for point in figures.curve] == [
        D(0),
        D("0.2"),
        D("-0.1"),
        D("-0.055"),
        D("0.0395"),
        D("0.2474"),
    ]
    assert figures.time_weighted_return == D("0.2474")
    assert figures.max_drawdown == Drawdown(D("-0.25"), T1, T2, T5)
    # profit = 2172 - 1000 - (1100 - 500) = 572 = 200 - 300 + 100 + 210 + 362
    assert (figures.deposits, figures.withdrawals, figures.profit) == (D(1100), D(-500), D(572))
    # The raw equity's fall (900 after 1200) and the deposit's jump (to 2100) mean nothing to the index.


def test_a_drawdown_not_yet_recovered_and_a_rise_without_any():
    falling = analytics.performance(points((T0, "100"), (T1, "120"), (T2, "90"), (T3, "96")))
    # 120 peak at T1; 90 / 120 - 1 = -0.25 at T2; 96 < 120: not recovered
    assert falling is not None and falling.max_drawdown == Drawdown(D("-0.25"), T1, T2, None)
    rising = analytics.performance(points((T0, "100"), (T1, "100"), (T2, "110")))
    assert rising is not None and rising.max_drawdown is None
    # The deeper of two drawdowns: from 1.2 to 1.08 (-0.1), recovered at T3 (1.32), then to 0.99 (-0.25).
    two = analytics.performance(points((T0, "100"), (T1, "120"), (T2, "108"), (T3, "132"), (T4, "99")))
    assert two is not None and two.max_drawdown == Drawdown(D("-0.25"), T3, T4, None)


def day_series():
    """22:00 and 23:30 on 29 February (UTC), then 00:30, 01:00 (a 500 deposit) and 23:59 on 1 March."""
    at = [T0 - 2 * HOUR_MS, T0 - 30 * MINUTE_MS, T0 + 30 * MINUTE_MS, T0 + HOUR_MS, T0 + DAY_MS - MINUTE_MS]
    equity = ["1000", "1010", "1030.2", "1530.2", "1499.596"]
    # r: 10 / 1000 = 0.01; 20.2 / 1010 = 0.02; (1530.2 - 1030.2 - 500) / 1530.2 = 0; -30.604 / 1530.2 = -0.02
    return points(*zip(at, equity, strict=True)), [CashFlow(at[3], D(500), "detected")]


def test_daily_bars_across_a_utc_midnight():
    series, flows = day_series()
    figures = analytics.performance(series, flows)
    assert figures is not None
    # 29 Feb: 22:00 opens, 23:30 ends an interval: +10, r 0.01.
    # 1 Mar: +20.2 + 0 - 30.604 = -10.404; r = 1.02 * 1 * 0.98 - 1 = -0.0004; 500 came in.
    assert figures.days == (
        DailyPnl(date(2024, 2, 29), D(10), D("0.01"), D(0), D(1010)),
        DailyPnl(date(2024, 3, 1), D("-10.404"), D("-0.0004"), D(500), D("1499.596")),
    )
    assert figures.best_day == figures.days[0] and figures.worst_day == figures.days[1]
    assert figures.winning_day_share == D("0.5")
    # The bars' PnL adds up to the profit: 10 - 10.404 = -0.404 = 1499.596 - 1000 - 500
    assert sum(bar.pnl for bar in figures.days) == figures.profit == D("-0.404")


def test_daily_bars_in_a_viewers_time_zone():
    series, flows = day_series()
    # UTC+2 (120 minutes east): the points fall at 00:00, 01:30, 02:30, 03:00 on 1 March and 01:59 on 2 March.
    east = analytics.performance(series, flows, zone=120)
    assert east is not None
    assert east.days == (
        DailyPnl(date(2024, 3, 1), D("30.2"), D("0.0302"), D(500), D("1530.2")),  # 10 + 20.2; 1.01 * 1.02 - 1
        DailyPnl(date(2024, 3, 2), D("-30.604"), D("-0.02"), D(0), D("1499.596")),
    )
    # UTC-1 as a tzinfo: 21:00, 22:30, 23:30 on 29 Feb; the deposit's point at exactly 00:00 on 1 March opens it.
    west = analytics.performance(series, flows, zone=timezone(timedelta(hours=-1)))
    assert west is not None
    assert west.days == (
        DailyPnl(date(2024, 2, 29), D("30.2"), D("0.0302"), D(0), D("1030.2")),
        DailyPnl(date(2024, 3, 1), D("-30.604"), D("-0.02"), D(500), D("1499.596")),
    )

    class MinusOneHour(tzinfo):  # a zone that is not a fixed `timezone`: the general path, same days
        def utcoffset(self, dt):
            return timedelta(hours=-1)

        def dst(self, dt):
            return timedelta(0)

    assert analytics.performance(series, flows, zone=MinusOneHour()) == west


def test_a_day_with_no_gain_is_not_a_winning_day():
    figures = analytics.performance(points((T0, "100"), (T0 + DAY_MS, "100"), (T0 + 2 * DAY_MS, "101")))
    # days: 2 Mar +0, 3 Mar +1: one winning day of two
    assert figures is not None and figures.winning_day_share == D("0.5")
    assert figures.best_day is not None and figures.best_day.day == date(2024, 3, 3)


def test_sharpe_from_daily_returns_worked_by_hand():
    noon = T0 + 12 * HOUR_MS
    series = points(
        (noon, "100"),
        (noon + DAY_MS, "101"),  # +1 %
        (noon + 2 * DAY_MS, "103.02"),  # 101 * 1.02: +2 %
        (noon + 3 * DAY_MS, "106.1106"),  # 103.02 * 1.03: +3 %
    )
    figures = analytics.performance(series)
    assert figures is not None
    assert [bar.day_return for bar in figures.days] == [D("0.01"), D("0.02"), D("0.03")]
    # mean 0.02; sample variance ((-0.01)^2 + 0 + 0.01^2) / (3 - 1) = 0.0001; stdev 0.01;
    # 0.02 / 0.01 * sqrt(365) = 2 * 19.10497317454280... = 38.20994634908560...
    assert figures.sharpe is not None and close(figures.sharpe, D("38.2099463490856003583365915"), "1e-24")
    # Fewer than two days, or no spread: no ratio.
    assert analytics.sharpe_ratio([D("0.01")]) is None
    assert analytics.sharpe_ratio([D("0.01"), D("0.01")]) is None


def test_buy_and_hold_of_the_symbol_over_the_same_snapshots():
    snaps = [
        snap(T0, "1", price="0"),  # no price yet: the curve starts at the first positive one
        snap(T1, "1", price="9000"),
        snap(T2, "1", price="9450"),  # 9450 / 9000 - 1 = 0.05
        snap(T3, "1", price="3", symbol="ETHUSD"),  # another symbol: skipped
        snap(T4, "1", price="8550"),  # 8550 / 9000 - 1 = -0.05
    ]
    assert analytics.buy_and_hold(snaps) == (
        ReturnPoint(T1, D(0)),
        ReturnPoint(T2, D("0.05")),
        ReturnPoint(T4, D("-0.05")),
    )
    assert analytics.buy_and_hold([snap(T0, "1", price="0")]) == ()


def test_the_equity_basis_is_the_margin_balance_unless_asked():
    snaps = [snap(T0, "1000", margin="1000"), snap(T1, "1000", margin="950")]  # an open position down 50
    margin = analytics.strategy_performance(snaps)
    wallet = analytics.strategy_performance(snaps, basis="wallet_balance")
    assert margin is not None and wallet is not None
    assert (margin.profit, wallet.profit) == (D(-50), D(0))
    assert margin.max_drawdown == Drawdown(D("-0.05"), T0, T1, None)  # 950 / 1000 - 1


def test_flows_outside_the_series_are_left_out():
    series = points((T1, "100"), (T2, "100"))
    flows = [CashFlow(T0, D(5), "manual"), CashFlow(T1, D(5), "manual"), CashFlow(T3, D(5), "manual")]
    figures = analytics.performance(series, flows)
    # T0 and T1 are in the opening balance, T3 is after the last point: none counts.
    assert figures is not None and (figures.net_flows, figures.profit) == (0, 0)


def test_the_callers_decimal_context_does_not_change_the_figures():
    from decimal import localcontext

    series = points((T0, "3"), (T1, "4"))
    expected = analytics.performance(series)
    with localcontext() as context:
        context.prec = 3
        assert analytics.performance(series) == expected


# --- Properties ------------------------------------------------------------------------------------------------

steps = st.lists(st.integers(min_value=-10_000, max_value=10_000), min_size=1, max_size=30)


@given(start=st.integers(min_value=1, max_value=10**8), changes=st.lists(st.integers(-(10**6), 10**6), max_size=30))
def test_without_flows_twr_is_end_over_start_and_profit_is_the_change(start, changes):
    equities, value = [D(start)], start
    for change in changes:
        value = max(1, value + change)  # the equity stays positive
        equities.append(D(value))
    figures = analytics.performance(EquityPoint(T0 + k * MINUTE_MS, e) for k, e in enumerate(equities))
    assert figures is not None
    assert figures.profit == equities[-1] - equities[0]
    assert close_relative(figures.time_weighted_return, equities[-1] / equities[0] - 1)


@given(
    wallet=st.integers(min_value=400_000, max_value=1_000_000),
    pnl=steps,
    unrealised=st.lists(st.integers(-1000, 1000), min_size=31, max_size=31),
    deposit=st.integers(min_value=2_000, max_value=10**7),
    at=st.integers(min_value=1),
)
def test_a_deposit_held_as_cash_is_detected_and_changes_no_profit(wallet, pnl, unrealised, deposit, at):
    # Realised PnL stays far from 0 (no broker reset), and every wallet change is realised: no flows. Then X comes
    # in at interval i and sits in the account (every later wallet and margin X higher).
    realised = [10**7]
    wallets = [wallet]
    for step in pnl:
        realised.append(realised[-1] + step)
        wallets.append(wallets[-1] + step)
    i = 1 + at % len(pnl)

    def series(extra):
        return [
            snap(T0 + k * HOUR_MS, str(w + (extra if k >= i else 0)), str(r), str(w + u + (extra if k >= i else 0)))
            for k, (w, r, u) in enumerate(zip(wallets, realised, unrealised, strict=False))
        ]

    # The deposit is above the tolerance: max(1, 0.001 * wallet) <= 0.001 * (1_000_000 + 300_000) = 1300 < 2000.
    assert analytics.detect_cash_flows(series(0)) == ()
    assert analytics.detect_cash_flows(series(deposit)) == (
        CashFlow(T0 + i * HOUR_MS, D(deposit), "detected", D(deposit)),
    )
    without, with_deposit = analytics.strategy_performance(series(0)), analytics.strategy_performance(series(deposit))
    assert without is not None and with_deposit is not None
    assert with_deposit.profit == without.profit and with_deposit.net_flows == deposit
    assert sum(bar.pnl for bar in with_deposit.days) == with_deposit.profit


@given(
    start=st.integers(min_value=100, max_value=10**6),
    changes=st.lists(st.integers(min_value=-50, max_value=50), min_size=1, max_size=20),
    flow=st.integers(min_value=-99, max_value=10**6),
    at=st.integers(min_value=0),
)
def test_a_flow_that_earns_the_same_returns_leaves_the_twr_unchanged(start, changes, flow, at):
    # Equity moves by `change` percent per interval. A flow F at interval i, invested alike: a deposit counts
    # from the interval's start, so from then on the equity is that much larger, scaled by (E_{i-1} + F) / E_{i-1};
    # a withdrawal (here at most 99 % of E_i) leaves at the end: scaled by (E_i + F) / E_i from E_i on.
    equities = [D(start)]
    for change in changes:
        equities.append(equities[-1] * (1 + D(change) / 100))
    i = 1 + at % len(changes)
    amount = D(flow) if flow >= 0 else equities[i] * flow / 100
    if not amount:
        return
    scale = (equities[i - 1] + amount) / equities[i - 1] if amount > 0 else (equities[i] + amount) / equities[i]
    moved = [e if k < i else e * scale for k, e in enumerate(equities)]
    at_ms = [T0 + k * HOUR_MS for k in range(len(equities))]
    plain = analytics.performance(EquityPoint(t, e) for t, e in zip(at_ms, equities, strict=True))
    flowed = analytics.performance(
        (EquityPoint(t, e) for t, e in zip(at_ms, moved, strict=True)), [CashFlow(at_ms[i], amount, "manual")]
    )
    assert plain is not None and flowed is not None
    assert close_relative(flowed.time_weighted_return, plain.time_weighted_return)
    assert flowed.net_flows == amount
