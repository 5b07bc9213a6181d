"""Performance analytics that tell profit from deposits (issue 16): the pure domain core. No Reflex, no I/O, no SQL.

Two steps, each a plain function over a strategy's snapshots or an equity series:

1. **Cash flows.** Between two consecutive snapshots of a strategy, the wallet should move by what was realised:
   `flow = Δwallet_balance - Δrealised_pnl`. What is left, beyond `FlowTolerance`, is a deposit (positive) or a
   withdrawal (negative). A flow the bot states takes the interval's place in detection, and a member's
   corrections (`ConfirmFlow`, `NotAFlow`, `ManualFlow`) apply last, as amounts added where they were made, so
   one correction holds for the raw snapshots and the hourly and daily roll-ups alike.
2. **Figures net of flows** (`performance`): profit, time-weighted return, max drawdown of the flow-adjusted
   index with its dates, daily PnL bars in the viewer's time zone, best/worst day, winning-day share and a
   Sharpe-like ratio; and `buy_and_hold` of the symbol over the same snapshots.

Conventions, each chosen once here:

- Snapshots are sorted by `at_ms` first; the first is the opening balance: no flow lands before or on it.
- A flow belongs to the interval (previous point, its point]: the first point that shows it ends its interval.
  Within it, **a deposit lands at the interval's start and a withdrawal at its end**: money counts as at risk for
  the whole interval if the account held it at any moment of it. So an interval's return is
  `r = (E_end - E_start - F) / (E_start + max(F, 0))`, and sub-periods chain: TWR = prod(1 + r) - 1. The base
  is never shrunk by a flow, so a flow's unknown timing within the interval can neither inflate a return nor
  divide by almost nothing (a $10,000 deposit into a $1 account; a withdrawal of everything). With nothing
  at risk (a base <= 0) the interval's return is 0. With minute snapshots the choice barely shows.
- Gaps in time mean nothing special: an interval is an interval, however long.
- Money stays `Decimal`; so do ratios (returns, drawdown, Sharpe): Decimal divides and takes square roots well
  enough, no float rounding creeps into amounts, and one number type keeps the hand-worked tests exact.
  Arithmetic runs in a fixed context, whatever the caller's thread context is: 50 significant digits, more than
  the 38 a snapshot's number may carry, so the sums and differences of the amounts bots send stay exact.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Literal

from projectalgo.clock import DAY_MS, MINUTE_MS
from projectalgo.snapshots import Snapshot

_CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
_ZERO = Decimal(0)
_ONE = Decimal(1)
_DAYS_PER_YEAR = Decimal(365)  # crypto markets trade every day of the year
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_QUARTER_HOUR_MS = 15 * MINUTE_MS

# ---------------------------------------------------------------------------------------------------------------
# Cash flows


@dataclass(frozen=True)
class FlowTolerance:
    """How large an unexplained wallet change must be to count as a flow.

    A change is a flow only when its size exceeds both `absolute` (in the wallet's currency: USD for the group's
    bots) and `relative` * the wallet balance at the interval's start; set either to 0 to use the other alone.
    The defaults, $1 and 0.1 %, leave rounding, funding and fee crumbs that the broker did not book in
    `realised_pnl` as profit or loss, and still see any flow over $10 on a $10,000 account. The same limit decides
    whether a realised PnL is "about 0" after a broker's reset.
    """

    absolute: Decimal = Decimal(1)
    relative: Decimal = Decimal("0.001")

    def __post_init__(self) -> None:
        if self.absolute < 0 or self.relative < 0:
            raise ValueError("a flow tolerance is never negative")

    def limit(self, wallet_before: Decimal) -> Decimal:
        return max(self.absolute, self.relative * abs(wallet_before))


DEFAULT_TOLERANCE = FlowTolerance()

FlowSource = Literal["detected", "stated", "confirmed", "corrected", "manual"]


@dataclass(frozen=True)
class CashFlow:
    """Money moved in (amount > 0, a deposit) or out (amount < 0, a withdrawal), not earned or lost.

    `at_ms` is the snapshot that first shows it (for a manual flow, the member's date); `found_amount` is what
    detection or the bot said, kept when a member corrects it (None for a manual flow)."""

    at_ms: int
    amount: Decimal
    source: FlowSource
    found_amount: Decimal | None = None

    @property
    def is_deposit(self) -> bool:
        return self.amount > 0


@dataclass(frozen=True)
class ConfirmFlow:
    """A member confirms the flow found at `at_ms`, which they saw as `found`, with a corrected `amount` if given
    (0: no flow). The correction is the difference, amount - found, added to the interval holding `at_ms`."""

    at_ms: int
    found: Decimal
    amount: Decimal | None = None


@dataclass(frozen=True)
class NotAFlow:
    """A member says the change found at `at_ms` (seen as `found`) is no flow: it counts as profit or loss."""

    at_ms: int
    found: Decimal


@dataclass(frozen=True)
class ManualFlow:
    """A flow the member adds by hand at a date; it lands in the interval that holds `at_ms`."""

    at_ms: int
    amount: Decimal


FlowCorrection = ConfirmFlow | NotAFlow | ManualFlow


def _in_order(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    ordered = sorted(snapshots, key=lambda snapshot: snapshot.at_ms)
    if len({snapshot.strategy_id for snapshot in ordered}) > 1:
        raise ValueError("cash flows are found per strategy: these snapshots are of several strategies")
    return ordered


def _interval_index(times: Sequence[int], at_ms: int) -> int | None:
    """The index of the point that ends the interval holding `at_ms` (previous point, point], or None when
    `at_ms` is at or before the first point (in the opening balance) or after the last (not seen yet)."""
    if not times or at_ms <= times[0] or at_ms > times[-1]:
        return None
    return bisect.bisect_left(times, at_ms)


def unexplained_change(before: Snapshot, after: Snapshot, tolerance: FlowTolerance = DEFAULT_TOLERANCE) -> Decimal:
    """What the wallet did between two consecutive snapshots beyond what was realised; 0 within the tolerance.

    The broker's reset of realised PnL: when `realised_pnl` falls to about 0 from a value that was not, and the
    plain reading (Δwallet - Δrealised) leaves something, the counter restarted: only what was realised since
    (the new value) explains the wallet, so the flow is Δwallet - realised_after. A reset with the wallet
    unchanged is therefore no flow, and a reset alongside a withdrawal is that withdrawal. When the wallet fell
    by exactly the realised PnL that vanished, the plain reading explains it (a loss) and no reset is assumed:
    the reading without a flow wins."""
    with localcontext(_CONTEXT):
        limit = tolerance.limit(before.wallet_balance)
        wallet_change = after.wallet_balance - before.wallet_balance
        unexplained = wallet_change - (after.realised_pnl - before.realised_pnl)
        if abs(unexplained) <= limit:
            return _ZERO
        if abs(after.realised_pnl) <= limit < abs(before.realised_pnl):
            unexplained = wallet_change - after.realised_pnl  # the counter restarted from 0
            if abs(unexplained) <= limit:
                return _ZERO
        return unexplained


def detect_cash_flows(
    snapshots: Iterable[Snapshot],
    tolerance: FlowTolerance = DEFAULT_TOLERANCE,
    stated: Mapping[int, Decimal] | None = None,
) -> tuple[CashFlow, ...]:
    """The flows of one strategy, interval by interval, in time order.

    `stated` maps at_ms to a flow the bot posted (a snapshot's optional `cash_flow`). A stated amount takes
    its interval's place in detection, 0 included ("nothing moved"); several in one interval add up. Stated
    flows at or before the first snapshot are in the opening balance, and after the last are not seen yet:
    both are left out."""
    ordered = _in_order(snapshots)
    times = [snapshot.at_ms for snapshot in ordered]
    stated_by_interval: dict[int, Decimal] = {}
    for at_ms, amount in (stated or {}).items():
        index = _interval_index(times, at_ms)
        if index is not None:
            stated_by_interval[index] = stated_by_interval.get(index, _ZERO) + amount
    flows = []
    source: FlowSource
    with localcontext(_CONTEXT):
        for index in range(1, len(ordered)):
            after = ordered[index]
            if index in stated_by_interval:
                amount, source = stated_by_interval[index], "stated"
            else:
                amount, source = unexplained_change(ordered[index - 1], after, tolerance), "detected"
            if amount:
                flows.append(CashFlow(after.at_ms, amount, source, amount))
    return tuple(flows)


@dataclass(frozen=True)
class FlowPoint:
    """The flow of one raw interval, where it ends (models.FlowPoint): found at ingestion or stated by the bot."""

    at_ms: int
    amount: Decimal
    stated: bool


def flows_over(points: Iterable[FlowPoint], times: Sequence[int]) -> tuple[CashFlow, ...]:
    """The raw intervals' flows, added up over the intervals of a series with these points (raw, or each hourly or
    daily bucket's last): what a coarse range counts, so it finds what the raw snapshots found, no more (crumbs
    below the tolerance do not add up to a flow) and no less (a broker's reset inside a bucket is not a flow).
    A sum is `stated` when the bot stated every part of it; flows in the opening balance or after the last point
    are left out."""
    sums: dict[int, tuple[Decimal, bool]] = {}
    with localcontext(_CONTEXT):
        for point in points:
            index = _interval_index(times, point.at_ms)
            if index is not None:
                amount, stated = sums.get(times[index], (_ZERO, True))
                sums[times[index]] = (amount + point.amount, stated and point.stated)
    return tuple(
        CashFlow(at_ms, amount, "stated" if stated else "detected", amount)
        for at_ms, (amount, stated) in sorted(sums.items())
        if amount
    )


def apply_corrections(
    flows: Iterable[CashFlow], corrections: Iterable[FlowCorrection], times: Sequence[int]
) -> tuple[CashFlow, ...]:
    """The flows after a member's corrections, in time order; `times` are the series' points.

    A correction is what the member changed: the amount set minus the amount seen, added to the flow of the
    interval (previous point, point] holding its at_ms. So it holds whatever the series' resolution: corrected on
    the raw snapshots, it changes the hour or the day that holds it by as much. For one at_ms the last
    ConfirmFlow or NotAFlow wins (a member changing their mind); manual flows add to whatever else is there."""
    by_end = {flow.at_ms: flow for flow in flows if flow.source != "manual"}
    manual = [flow for flow in flows if flow.source == "manual"]
    last_word: dict[int, ConfirmFlow | NotAFlow] = {}
    for correction in corrections:
        if isinstance(correction, ManualFlow):
            if correction.amount:
                manual.append(CashFlow(correction.at_ms, correction.amount, "manual"))
        else:
            last_word[correction.at_ms] = correction
    with localcontext(_CONTEXT):
        for at_ms, word in sorted(last_word.items()):
            index = _interval_index(times, at_ms)
            if index is None:
                continue
            end = times[index]
            found = by_end.get(end)
            amount = found.amount if found else _ZERO
            found_amount = found.found_amount if found else None
            if isinstance(word, NotAFlow):
                by_end[end] = CashFlow(end, amount - word.found, "corrected", found_amount)
            elif word.amount is not None:
                by_end[end] = CashFlow(end, amount + word.amount - word.found, "corrected", found_amount)
            elif found:
                by_end[end] = CashFlow(end, amount, "confirmed", found_amount)
    kept = [flow for flow in by_end.values() if flow.amount] + manual
    return tuple(sorted(kept, key=lambda flow: flow.at_ms))


def cash_flows(
    snapshots: Iterable[Snapshot],
    tolerance: FlowTolerance = DEFAULT_TOLERANCE,
    stated: Mapping[int, Decimal] | None = None,
    corrections: Iterable[FlowCorrection] = (),
    points: Iterable[FlowPoint] | None = None,
) -> tuple[CashFlow, ...]:
    """Detection and the bot's stated flows, then the member's corrections: the flows the figures count. For a
    coarse series (hourly or daily points), pass the raw intervals' `points` instead: they are added up over its
    intervals (`flows_over`), not found between its points."""
    ordered = _in_order(snapshots)
    times = [snapshot.at_ms for snapshot in ordered]
    found = flows_over(points, times) if points is not None else detect_cash_flows(ordered, tolerance, stated)
    return apply_corrections(found, corrections, times)


# ---------------------------------------------------------------------------------------------------------------
# Figures net of flows


@dataclass(frozen=True)
class EquityPoint:
    at_ms: int
    equity: Decimal


@dataclass(frozen=True)
class ReturnPoint:
    """A point of a return curve: `value` is the return since the curve's first point (0.05 = +5 %)."""

    at_ms: int
    value: Decimal


@dataclass(frozen=True)
class Drawdown:
    """The deepest fall of the flow-adjusted index below a previous peak. `depth` is negative (-0.25: 25 %
    below the peak, as the strategy chart draws it); `recovered_at_ms` is the first point back at the peak,
    None while it is not."""

    depth: Decimal
    peak_at_ms: int
    trough_at_ms: int
    recovered_at_ms: int | None


@dataclass(frozen=True)
class DailyPnl:
    """One day's bar: what the intervals ending that day (in the viewer's zone) earned, net of flows.

    `day_return` chains those intervals' returns, as the TWR does; `close_equity` is the day's last point."""

    day: date
    pnl: Decimal
    day_return: Decimal
    net_flows: Decimal
    close_equity: Decimal


@dataclass(frozen=True)
class Performance:
    """Figures of one equity series net of its flows. `withdrawals` is negative or 0;
    `profit = end_equity - start_equity - net_flows`."""

    start_at_ms: int
    end_at_ms: int
    start_equity: Decimal
    end_equity: Decimal
    deposits: Decimal
    withdrawals: Decimal
    net_flows: Decimal
    profit: Decimal
    time_weighted_return: Decimal
    max_drawdown: Drawdown | None  # None: the index never fell below a peak
    curve: tuple[ReturnPoint, ...]  # the time-weighted return so far at every point
    days: tuple[DailyPnl, ...]
    best_day: DailyPnl | None  # by PnL; the earliest of equals
    worst_day: DailyPnl | None
    winning_day_share: Decimal | None  # days with PnL > 0 over all days with a bar
    sharpe: Decimal | None


EquityBasis = Literal["margin_balance", "wallet_balance"]


def equity_points(snapshots: Iterable[Snapshot], basis: EquityBasis = "margin_balance") -> tuple[EquityPoint, ...]:
    """A strategy's equity series. `margin_balance` by default: the wallet marked to market (with unrealised
    PnL), so an open losing position shows in the drawdown; a flow moves it as much as the wallet."""
    ordered = sorted(snapshots, key=lambda snapshot: snapshot.at_ms)
    if basis == "wallet_balance":
        return tuple(EquityPoint(snapshot.at_ms, snapshot.wallet_balance) for snapshot in ordered)
    return tuple(EquityPoint(snapshot.at_ms, snapshot.margin_balance) for snapshot in ordered)


def zone_of(zone: tzinfo | int) -> tzinfo:
    """A viewer's time zone: a tzinfo, or a fixed offset in minutes east of UTC (as the browser's
    `-Date.getTimezoneOffset()` gives it)."""
    return timezone(timedelta(minutes=zone)) if isinstance(zone, int) else zone


class _DayOf:
    """at_ms -> the day in a zone, converting only when a point leaves the previous point's block of time: a
    year of minute snapshots is half a million of them. A fixed offset's block is its day; any other zone's is a
    UTC quarter hour, in which no zone's date changes (since 2000, the earliest a snapshot may be, every zone's
    offset is a multiple of 15 minutes)."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.offset_ms = zone.utcoffset(None) // timedelta(milliseconds=1) if isinstance(zone, timezone) else None
        self.block: int | None = None
        self.day = _EPOCH_DAY

    def __call__(self, at_ms: int) -> date:
        block = (at_ms + self.offset_ms) // DAY_MS if self.offset_ms is not None else at_ms // _QUARTER_HOUR_MS
        if block != self.block:
            self.block = block
            if self.offset_ms is not None:
                self.day = _EPOCH_DAY + timedelta(days=block)
            else:
                self.day = (_EPOCH + timedelta(milliseconds=at_ms)).astimezone(self.zone).date()
        return self.day


def _sub_period_return(start: Decimal, end: Decimal, flow: Decimal) -> Decimal:
    """One interval's return: a deposit counts from the interval's start, a withdrawal until its end."""
    at_risk = start + max(flow, _ZERO)
    return (end - start - flow) / at_risk if at_risk > 0 else _ZERO


def sharpe_ratio(daily_returns: Sequence[Decimal]) -> Decimal | None:
    """mean / sample standard deviation * sqrt(365), risk-free rate 0; None for fewer than 2 days or no spread."""
    if len(daily_returns) < 2:
        return None
    with localcontext(_CONTEXT):
        count = Decimal(len(daily_returns))
        mean = sum(daily_returns, _ZERO) / count
        variance = sum(((value - mean) ** 2 for value in daily_returns), _ZERO) / (count - 1)
        if not variance:
            return None
        return mean / variance.sqrt() * _DAYS_PER_YEAR.sqrt()


def performance(
    points: Iterable[EquityPoint], flows: Iterable[CashFlow] = (), zone: tzinfo | int = UTC
) -> Performance | None:
    """The figures of an equity series (one strategy's, or the combined one with each account's flows counted
    once) net of its flows; None for no points. The first point is the opening balance. A flow counts in the
    interval (previous point, point] that holds its at_ms; flows at or before the first point or after the last
    are outside the series and left out. Days are the viewer's (`zone`); a day without a point has no bar."""
    ordered = sorted(points, key=lambda point: point.at_ms)
    if not ordered:
        return None
    times = [point.at_ms for point in ordered]
    day_of = _DayOf(zone_of(zone))
    with localcontext(_CONTEXT):
        flow_at: dict[int, Decimal] = {}  # index of the point ending the interval -> the interval's net flow
        deposits = withdrawals = _ZERO
        for flow in flows:
            index = _interval_index(times, flow.at_ms)
            if index is not None:
                flow_at[index] = flow_at.get(index, _ZERO) + flow.amount
                if flow.amount > 0:
                    deposits += flow.amount
                else:
                    withdrawals += flow.amount
        index_value = peak = _ONE
        peak_at = ordered[0].at_ms
        worst: Drawdown | None = None
        worst_peak = deeper_below = _ONE  # below `deeper_below` the index is in a deeper drawdown than `worst`
        curve = [ReturnPoint(peak_at, _ZERO)]
        days: list[DailyPnl] = []
        day: date | None = None
        day_pnl = day_flows = _ZERO
        day_growth = _ONE
        for k in range(1, len(ordered)):
            start, end, moved = ordered[k - 1].equity, ordered[k].equity, flow_at.get(k, _ZERO)
            at_ms = ordered[k].at_ms
            growth = 1 + _sub_period_return(start, end, moved)
            index_value *= growth
            curve.append(ReturnPoint(at_ms, index_value - 1))
            if index_value > peak:
                peak, peak_at = index_value, at_ms
                deeper_below = peak * (1 + worst.depth) if worst else peak
            elif index_value < deeper_below:
                worst, worst_peak = Drawdown(index_value / peak - 1, peak_at, at_ms, None), peak
                deeper_below = index_value
            if worst and worst.recovered_at_ms is None and at_ms > worst.trough_at_ms and index_value >= worst_peak:
                worst = Drawdown(worst.depth, worst.peak_at_ms, worst.trough_at_ms, at_ms)
            # A day's bar sums the intervals that end in it.
            if (point_day := day_of(at_ms)) != day:
                if day is not None:
                    days.append(DailyPnl(day, day_pnl, day_growth - 1, day_flows, start))
                day, day_pnl, day_growth, day_flows = point_day, _ZERO, _ONE, _ZERO
            day_pnl += end - start - moved
            day_growth *= growth
            day_flows += moved
        if day is not None:
            days.append(DailyPnl(day, day_pnl, day_growth - 1, day_flows, ordered[-1].equity))
        net_flows = deposits + withdrawals
        first, last = ordered[0], ordered[-1]
        return Performance(
            start_at_ms=first.at_ms,
            end_at_ms=last.at_ms,
            start_equity=first.equity,
            end_equity=last.equity,
            deposits=deposits,
            withdrawals=withdrawals,
            net_flows=net_flows,
            profit=last.equity - first.equity - net_flows,
            time_weighted_return=index_value - 1,
            max_drawdown=worst,
            curve=tuple(curve),
            days=tuple(days),
            best_day=max(days, key=lambda bar: bar.pnl, default=None),
            worst_day=min(days, key=lambda bar: bar.pnl, default=None),
            winning_day_share=Decimal(sum(1 for bar in days if bar.pnl > 0)) / len(days) if days else None,
            sharpe=sharpe_ratio([bar.day_return for bar in days]),
        )


def strategy_performance(
    snapshots: Iterable[Snapshot],
    tolerance: FlowTolerance = DEFAULT_TOLERANCE,
    stated: Mapping[int, Decimal] | None = None,
    corrections: Iterable[FlowCorrection] = (),
    zone: tzinfo | int = UTC,
    basis: EquityBasis = "margin_balance",
    points: Iterable[FlowPoint] | None = None,
) -> Performance | None:
    """One strategy's figures from its snapshots: its flows (`cash_flows`) and its equity (`equity_points`)."""
    ordered = _in_order(snapshots)
    flows = cash_flows(ordered, tolerance, stated, corrections, points)
    return performance(equity_points(ordered, basis), flows, zone)


def buy_and_hold(snapshots: Iterable[Snapshot]) -> tuple[ReturnPoint, ...]:
    """Holding the strategy's symbol over the same snapshots: `last_price / first price - 1` at each, from the
    first snapshot with a positive price. Snapshots of another symbol than that one's are skipped."""
    ordered = _in_order(snapshots)
    opening = next((snapshot for snapshot in ordered if snapshot.last_price > 0), None)
    if opening is None:
        return ()
    with localcontext(_CONTEXT):
        return tuple(
            ReturnPoint(snapshot.at_ms, snapshot.last_price / opening.last_price - 1)
            for snapshot in ordered
            if snapshot.at_ms >= opening.at_ms and snapshot.symbol == opening.symbol
        )
