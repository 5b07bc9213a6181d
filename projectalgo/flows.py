"""A strategy's cash flows and its figures net of them (issue 16): the member's corrections, kept in the database
(models.FlowCorrection), joined with what analytics.py finds in the snapshots a page reads for its range. Only the
strategy's owner corrects its flows; whoever may see the strategy (its owner, admins) sees them. No Reflex.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import analytics, charts, dashboard, strategies
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.errors import InvalidInputError
from projectalgo.members import Actor
from projectalgo.models import FlowCorrection, FlowPoint, id_of, table_of
from projectalgo.settings import Settings
from projectalgo.snapshots import ALL_TIME_END_MS, Snapshot, SnapshotStore, all_snapshots

MAX_CORRECTIONS = 1000  # per strategy
# Flow points read per strategy and range, newest kept: a bot whose realised PnL never follows its wallet makes
# one at every snapshot (its figures then mean little), and a page's read stays bounded all the same.
MAX_FLOW_POINTS = 10_000
AMOUNT_LIMIT = Decimal("1e15")  # a quadrillion dollars: past it a typed amount is a slip, not money
EARLIEST_MS = 946_684_800_000  # 2000-01-01 UTC, the earliest a snapshot may be


def tolerance(settings: Settings) -> analytics.FlowTolerance:
    return analytics.FlowTolerance(settings.flow_tolerance_usd, settings.flow_tolerance_percent / 100)


def parse_amount(text: str, *, zero: bool = False) -> Decimal:
    """A signed amount in dollars as a member types it ("5000", "-1,250.50", "$300"); 0 only when `zero`."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInputError(
            f"{text.strip() or 'Nothing'} is not an amount: write it like 5000 or -1250.50."
        ) from None
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        raise InvalidInputError("That amount is too large.")
    exponent = amount.as_tuple().exponent  # an int for a finite number
    if isinstance(exponent, int) and exponent < -8:
        raise InvalidInputError("Amounts have at most 8 decimals.")
    if not amount and not zero:
        raise InvalidInputError("A flow of $0 is no flow: write the amount that moved.")
    return amount


def _checked_time(at_ms: int) -> int:
    if not EARLIEST_MS <= at_ms <= ALL_TIME_END_MS:
        raise InvalidInputError("That date is out of range.")
    return at_ms


def _correction(row: FlowCorrection) -> analytics.FlowCorrection:
    if row.kind == "manual":
        return analytics.ManualFlow(row.at_ms, Decimal(row.amount or 0))
    if row.kind == "not_a_flow":
        return analytics.NotAFlow(row.at_ms, Decimal(row.found or 0))
    amount = Decimal(row.amount) if row.amount is not None else None
    return analytics.ConfirmFlow(row.at_ms, Decimal(row.found or 0), amount)


def corrections_by_strategy(session: Session, strategy_ids: Sequence[int]) -> dict[int, list[analytics.FlowCorrection]]:
    """Each strategy's corrections, oldest first (analytics applies them in this order); one query."""
    rows = session.scalars(
        select(FlowCorrection)
        .where(col(FlowCorrection.strategy_id).in_(list(strategy_ids)))
        .order_by(col(FlowCorrection.id))
    )
    found: dict[int, list[analytics.FlowCorrection]] = {strategy_id: [] for strategy_id in strategy_ids}
    for row in rows:
        found[row.strategy_id].append(_correction(row))
    return found


def corrections_of(session: Session, strategy_id: int) -> list[analytics.FlowCorrection]:
    """One strategy's corrections, oldest first."""
    return corrections_by_strategy(session, [strategy_id])[strategy_id]


# Flow points: each raw interval's flow, kept at ingestion (models.FlowPoint)


def flow_points(
    session: Session, strategy_ids: Sequence[int], start_ms: int, end_ms: int
) -> dict[int, list[analytics.FlowPoint]]:
    """Each strategy's flow points with start_ms <= at_ms < end_ms, oldest first (at most MAX_FLOW_POINTS each,
    the newest); one query."""
    rows = session.execute(
        select(col(FlowPoint.strategy_id), col(FlowPoint.at_ms), col(FlowPoint.amount), col(FlowPoint.stated))
        .where(
            col(FlowPoint.strategy_id).in_(list(strategy_ids)),
            col(FlowPoint.at_ms) >= start_ms,
            col(FlowPoint.at_ms) < end_ms,
        )
        .order_by(col(FlowPoint.at_ms).desc())
        .limit(MAX_FLOW_POINTS * len(strategy_ids))
    )
    found: dict[int, list[analytics.FlowPoint]] = {strategy_id: [] for strategy_id in strategy_ids}
    for strategy_id, at_ms, amount, stated in rows:
        if len(found[strategy_id]) < MAX_FLOW_POINTS:
            found[strategy_id].append(analytics.FlowPoint(at_ms, Decimal(amount), stated))
    return {strategy_id: points[::-1] for strategy_id, points in found.items()}


def flow_rules(session: Session, settings: Settings, strategy_ids: Sequence[int]) -> dashboard.FlowRules:
    """What the dashboard's figures of these strategies need to tell flows apart: the tolerance, their members'
    corrections and their flow points (all time: the comparison's daily ranges reach back to the first)."""
    return dashboard.FlowRules(
        tolerance(settings),
        corrections_by_strategy(session, strategy_ids),
        flow_points(session, strategy_ids, 0, ALL_TIME_END_MS),
    )


def points_of(engine: Engine, strategy_id: int, series: Sequence[Snapshot]) -> list[analytics.FlowPoint]:
    """The flow points within a series a page read (a worker thread's call: it opens its own session)."""
    if not series:
        return []
    with session_scope(engine) as session:
        return flow_points(session, [strategy_id], series[0].at_ms, ALL_TIME_END_MS)[strategy_id]


def record_flow_points(
    session: Session,
    store: SnapshotStore,
    stored: Sequence[tuple[Snapshot, Decimal | None]],
    tolerance: analytics.FlowTolerance,
) -> None:
    """At ingestion, once the snapshots are stored (each with the `cash_flow` its bot stated, or None): the flow
    of each interval they end, and of the interval after one stored among older snapshots (it split that one).

    One store read per strategy when the batch's snapshots are its newest (bots post in order); two reads per
    snapshot that arrives late. Two workers storing the same strategy at the same moment can each miss the
    other's snapshot as a neighbour: `rebuild-rollups` finds the flows again."""
    by_strategy: dict[int, dict[int, tuple[Snapshot, Decimal | None]]] = {}
    for snapshot, stated in stored:
        by_strategy.setdefault(snapshot.strategy_id, {})[snapshot.at_ms] = (snapshot, stated)
    for strategy_id, new in by_strategy.items():
        intervals = _intervals_touched(store, strategy_id, sorted(new))
        after_ms = [after.at_ms for before, after in intervals if after.at_ms not in new]
        kept_stated = (
            set(
                session.scalars(
                    select(col(FlowPoint.at_ms)).where(
                        col(FlowPoint.strategy_id) == strategy_id,
                        col(FlowPoint.at_ms).in_(after_ms),
                        col(FlowPoint.stated),
                    )
                )
            )
            if after_ms
            else set()
        )
        for at_ms, (_, stated) in new.items():
            if stated is not None:
                _put_point(session, strategy_id, at_ms, stated, stated=True)
        for before, after in intervals:
            if after.at_ms in kept_stated or (after.at_ms in new and new[after.at_ms][1] is not None):
                continue  # what the bot said of that interval stands
            amount = analytics.unexplained_change(before, after, tolerance)
            if amount:
                _put_point(session, strategy_id, after.at_ms, amount, stated=False)
            elif after.at_ms not in new:  # an interval found again (a late snapshot split it): its old point goes
                session.execute(
                    delete(FlowPoint).where(
                        col(FlowPoint.strategy_id) == strategy_id,
                        col(FlowPoint.at_ms) == after.at_ms,
                        ~col(FlowPoint.stated),
                    )
                )


def _intervals_touched(store: SnapshotStore, strategy_id: int, times: list[int]) -> list[tuple[Snapshot, Snapshot]]:
    """The (before, after) pairs of consecutive stored snapshots that these newly stored ones begin or end."""
    newest = store.recent(strategy_id, ALL_TIME_END_MS, limit=len(times) + 1)[::-1]
    if sorted(snapshot.at_ms for snapshot in newest[-len(times) :]) == times:  # the usual case: the newest ones
        return list(itertools.pairwise(newest))
    pairs: set[tuple[Snapshot, Snapshot]] = set()
    for at_ms in times:
        here = store.between(strategy_id, at_ms, at_ms + 1, limit=1).items
        before = store.recent(strategy_id, at_ms, limit=1)
        after = store.between(strategy_id, at_ms + 1, ALL_TIME_END_MS, limit=1).items
        if here and before:
            pairs.add((before[0], here[0]))
        if here and after:
            pairs.add((here[0], after[0]))
    return sorted(pairs, key=lambda pair: pair[1].at_ms)


def _put_point(session: Session, strategy_id: int, at_ms: int, amount: Decimal, *, stated: bool) -> None:
    """Insert or replace one flow point (several workers may write the same one: an upsert, not a read first)."""
    dialect = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {"strategy_id": strategy_id, "at_ms": at_ms, "amount": str(amount), "stated": stated}
    session.execute(
        dialect(table_of(FlowPoint))
        .values(**values)
        .on_conflict_do_update(index_elements=["strategy_id", "at_ms"], set_={"amount": str(amount), "stated": stated})
    )


def rebuild_flow_points(
    session: Session, store: SnapshotStore, strategy_id: int, tolerance: analytics.FlowTolerance
) -> int:
    """Find a strategy's flows again from all its snapshots (after a change of the tolerance, or a repair); what
    its bot stated is kept. Returns how many flow points it has."""
    stated = set(
        session.scalars(
            select(col(FlowPoint.at_ms)).where(col(FlowPoint.strategy_id) == strategy_id, col(FlowPoint.stated))
        )
    )
    session.execute(delete(FlowPoint).where(col(FlowPoint.strategy_id) == strategy_id, ~col(FlowPoint.stated)))
    previous: Snapshot | None = None
    found: list[dict[str, object]] = []
    for snapshot in all_snapshots(store, strategy_id):
        amount = analytics.unexplained_change(previous, snapshot, tolerance) if previous else Decimal(0)
        if amount and snapshot.at_ms not in stated:
            found.append({"strategy_id": strategy_id, "at_ms": snapshot.at_ms, "amount": str(amount), "stated": False})
        previous = snapshot
    if found:
        session.execute(table_of(FlowPoint).insert(), found)
    return len(found) + len(stated)


def _word(
    session: Session,
    actor: Actor,
    strategy_id: int,
    kind: str,
    at_ms: int,
    found: Decimal | None = None,
    amount: Decimal | None = None,
    from_ms: int | None = None,
) -> None:
    """Record the owner's word on the flow at at_ms, replacing their earlier confirms and not_a_flows in the
    interval it closes (from_ms, at_ms]: a word said on hourly or daily points replaces those said on the raw
    snapshots inside it, so the last word is the one that counts at every resolution."""
    strategy = strategies.own_strategy(session, actor, strategy_id)
    at_ms = _checked_time(at_ms)
    kept = session.scalar(
        select(func.count()).select_from(FlowCorrection).where(col(FlowCorrection.strategy_id) == id_of(strategy))
    )
    if kind == "manual" and (kept or 0) >= MAX_CORRECTIONS:  # every page load reads them all: a bound
        raise InvalidInputError(f"A strategy keeps at most {MAX_CORRECTIONS:,} corrections: remove some first.")
    if kind != "manual":
        session.execute(
            delete(FlowCorrection).where(
                col(FlowCorrection.strategy_id) == id_of(strategy),
                col(FlowCorrection.at_ms) > (at_ms - 1 if from_ms is None else from_ms),
                col(FlowCorrection.at_ms) <= at_ms,
                col(FlowCorrection.kind).in_(("confirm", "not_a_flow")),
            )
        )
    session.add(
        FlowCorrection(
            strategy_id=id_of(strategy),
            kind=kind,
            at_ms=at_ms,
            found=None if found is None else str(found),
            amount=None if amount is None else str(amount),
            created_by=actor.user_id,
            created_at=utcnow(),
        )
    )
    session.flush()


def confirm_flow(
    session: Session,
    actor: Actor,
    strategy_id: int,
    *,
    at_ms: int,
    found: Decimal,
    amount: Decimal | None = None,
    from_ms: int | None = None,
) -> None:
    """The flow found at at_ms (in the interval from from_ms, as `found`) is one: as found, or of `amount`."""
    _word(session, actor, strategy_id, "confirm", at_ms, found=found, amount=amount, from_ms=from_ms)


def mark_not_a_flow(
    session: Session, actor: Actor, strategy_id: int, *, at_ms: int, found: Decimal, from_ms: int | None = None
) -> None:
    """The change found at at_ms (in the interval from from_ms) is profit or loss, not money moved in or out."""
    _word(session, actor, strategy_id, "not_a_flow", at_ms, found=found, from_ms=from_ms)


def add_manual_flow(session: Session, actor: Actor, strategy_id: int, *, at_ms: int, amount: Decimal) -> None:
    """A deposit (amount > 0) or withdrawal the member adds by hand at a date."""
    if not amount:
        raise InvalidInputError("A flow of $0 is no flow: write the amount that moved.")
    _word(session, actor, strategy_id, "manual", at_ms, amount=amount)


def remove_manual_flow(session: Session, actor: Actor, strategy_id: int, *, at_ms: int, amount: Decimal) -> None:
    """Take back a flow added by hand (the one at at_ms of that amount)."""
    strategy = strategies.own_strategy(session, actor, strategy_id)
    row = session.scalars(
        select(FlowCorrection).where(
            col(FlowCorrection.strategy_id) == id_of(strategy),
            col(FlowCorrection.kind) == "manual",
            col(FlowCorrection.at_ms) == at_ms,
            col(FlowCorrection.amount) == str(amount),
        )
    ).first()
    if row is None:
        raise InvalidInputError("That flow was not added by hand, or is gone already.")
    session.delete(row)
    session.flush()


@dataclass(frozen=True)
class StrategyFigures:
    """What the strategy page shows for a range: the figures net of flows, the flows, and holding the symbol."""

    performance: analytics.Performance | None
    flows: tuple[analytics.CashFlow, ...]
    hold: tuple[analytics.ReturnPoint, ...]
    dismissed: tuple[analytics.NotAFlow, ...]  # found, then called no flow by the member: listed, to undo
    times: tuple[int, ...] = ()  # the series' points, oldest first


def strategy_figures(
    snapshots: Sequence[Snapshot],
    corrections: Sequence[analytics.FlowCorrection],
    settings: Settings,
    zone: tzinfo | int,
    points: Sequence[analytics.FlowPoint] = (),
    *,
    coarse: bool = False,
) -> StrategyFigures:
    """The figures of the snapshots a page read for its range: raw snapshots, with the flows their bot stated among
    the `points`; or each roll-up bucket's last (`coarse`), whose flows are the `points` added up."""
    found = tolerance(settings)
    if coarse:
        flows = analytics.cash_flows(snapshots, found, corrections=corrections, points=points)
    else:
        stated = {point.at_ms: point.amount for point in points if point.stated}
        flows = analytics.cash_flows(snapshots, found, stated, corrections)
    figures = analytics.performance(analytics.equity_points(snapshots), flows, zone)
    times = [snapshot.at_ms for snapshot in snapshots]
    last_word = {c.at_ms: c for c in corrections if not isinstance(c, analytics.ManualFlow)}
    dismissed = tuple(
        word
        for at_ms, word in sorted(last_word.items())
        if isinstance(word, analytics.NotAFlow) and times and min(times) < at_ms <= max(times)
    )
    return StrategyFigures(figures, flows, analytics.buy_and_hold(snapshots), dismissed, tuple(sorted(times)))


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())  # read from the time zone database's files: once


def viewer_zone(name: object) -> ZoneInfo | None:
    """The viewer's time zone by its IANA name, as the browser says it; None for anything else."""
    if not isinstance(name, str) or name not in _zone_names():
        return None
    return ZoneInfo(name)


def zoned_text(at_ms: int, zone: tzinfo) -> str:
    """A time as the flows list shows it: minutes, in the viewer's zone, said so ("2024-03-01 13:00 CET")."""
    return datetime.fromtimestamp(at_ms / 1000, tz=zone).strftime("%Y-%m-%d %H:%M %Z")


def zoned_ms(text: str, zone: tzinfo) -> int:
    """A date and time typed in a datetime-local field ("2024-03-01T13:00"), read in the viewer's zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError("Pick the date and time the money moved.") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp() * 1000)


def percent(ratio: Decimal | None) -> str:
    """0.0512 -> "+5.12%"; None -> "—"."""
    return "—" if ratio is None else f"{ratio * 100:+.2f}%"


@dataclass(frozen=True)
class FlowView:
    """A flow as the page lists it. `at` is ISO 8601 UTC; `amount`/`found` are exact decimals (for corrections),
    `shown`/`found_shown` formatted; `source` is analytics' (detected, stated, confirmed, corrected, manual), or
    "dismissed" for a change the member called no flow."""

    at_ms: int
    from_ms: int  # the interval the flow was found in: (from_ms, at_ms]; a manual flow's is its own time
    at: str  # "2024-03-01 13:00 CET": the viewer's zone
    amount: str
    shown: str
    source: str
    found: str
    found_shown: str


@dataclass(frozen=True)
class Summary:
    """The figures as the page shows them: text, ready to render; times in the viewer's zone, said so ("" for
    none); days are the viewer's days."""

    profit: str
    tone: str  # green, red, or gray without figures
    twr: str
    deposits: str
    withdrawals: str
    drawdown: str
    drawdown_peak: str
    drawdown_trough: str
    drawdown_recovered: str
    best_day: str
    worst_day: str
    winning_days: str
    sharpe: str
    days: tuple[tuple[str, float], ...]  # (YYYY-MM-DD, PnL) for the bars
    curve: tuple[tuple[int, float], ...]  # the strategy's TWR so far
    hold: tuple[tuple[int, float], ...]  # holding the symbol
    flows: tuple[FlowView, ...]  # newest first


def _day(bar: analytics.DailyPnl | None) -> str:
    return "—" if bar is None else f"{bar.day.isoformat()}: {charts.money(bar.pnl)}"


def moved_at_points(figures: StrategyFigures) -> dict[int, float]:
    """The money counted as moved in or out at each point of the series (by its at_ms): each flow lands on the
    point ending its interval (a manual one's date too). What the strategy chart's drawdown is net of."""
    times, moved = figures.times, dict[int, float]()
    for flow in figures.flows:
        index = bisect.bisect_left(times, flow.at_ms)
        if 0 < index < len(times):
            moved[times[index]] = moved.get(times[index], 0.0) + float(flow.amount)
    return moved


def summary(figures: StrategyFigures, zone: tzinfo = UTC) -> Summary:
    """What the strategy page shows of its figures."""
    perf = figures.performance
    times = figures.times

    def opened(at_ms: int) -> int:
        """The point before the interval holding at_ms."""
        return times[max(bisect.bisect_left(times, at_ms) - 1, 0)]

    def inside(at_ms: int) -> bool:  # flows outside the series count nowhere in its figures: not listed
        return bool(times) and times[0] < at_ms <= times[-1]

    counted = [
        FlowView(
            flow.at_ms,
            flow.at_ms if flow.source == "manual" else opened(flow.at_ms),
            zoned_text(flow.at_ms, zone),
            str(flow.amount),
            charts.money(flow.amount),
            flow.source,
            str(flow.found_amount if flow.found_amount is not None else 0),
            charts.money(flow.found_amount) if flow.found_amount is not None else "—",
        )
        for flow in figures.flows
        if inside(flow.at_ms)
    ]
    dismissed = [
        FlowView(
            word.at_ms,
            opened(word.at_ms),
            zoned_text(word.at_ms, zone),
            "0",
            "$0.00",
            "dismissed",
            str(word.found),
            charts.money(word.found),
        )
        for word in figures.dismissed
    ]
    flow_views = tuple(sorted(counted + dismissed, key=lambda view: view.at_ms, reverse=True))
    hold = tuple((point.at_ms, float(point.value)) for point in figures.hold)
    if perf is None:
        none = "—"
        return Summary(
            none, "gray", none, none, none, none, "", "", "", none, none, none, none, (), (), hold, flow_views
        )
    dd = perf.max_drawdown
    winning = "—" if perf.winning_day_share is None else f"{perf.winning_day_share * 100:.0f}% of {len(perf.days)} days"
    return Summary(
        profit=charts.money(perf.profit),
        tone="green" if perf.profit > 0 else "red" if perf.profit < 0 else "gray",
        twr=percent(perf.time_weighted_return),
        deposits=charts.money(perf.deposits),
        withdrawals=charts.money(perf.withdrawals),
        drawdown=percent(dd.depth) if dd else "0.00%",
        drawdown_peak=zoned_text(dd.peak_at_ms, zone) if dd else "",
        drawdown_trough=zoned_text(dd.trough_at_ms, zone) if dd else "",
        drawdown_recovered=zoned_text(dd.recovered_at_ms, zone) if dd and dd.recovered_at_ms else "",
        best_day=_day(perf.best_day),
        worst_day=_day(perf.worst_day),
        winning_days=winning,
        sharpe="—" if perf.sharpe is None else f"{perf.sharpe:.2f}",
        days=tuple((bar.day.isoformat(), float(bar.pnl)) for bar in perf.days),
        curve=tuple((point.at_ms, float(point.value)) for point in perf.curve),
        hold=hold,
        flows=flow_views,
    )
