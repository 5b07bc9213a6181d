"""What the dashboard and strategy pages show, read from the snapshot store with bounded work. No Reflex.

A range reads raw snapshots only for 24H; longer ranges read the hourly or daily roll-ups, so 1Y and All
read a few thousand items whatever the history's length. "All" starts at the oldest stored snapshot (a bot may
backfill years of history), and a strategy's "last snapshot" is the newest stored one: both are read from the
store, one Query each, never from the strategies table.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from projectalgo import analytics, charts
from projectalgo.clock import DAY_MS, HOUR_MS, MINUTE_MS
from projectalgo.snapshots import Snapshot, SnapshotStore

PAGE_LIMIT = 1000


@dataclass(frozen=True)
class Window:
    key: str
    start_ms: int
    end_ms: int
    source: str  # "raw", "hour" or "day": where the strategy points come from
    bucket_ms: int  # the equity chart's bucket


def window(range_key: str, now_ms: int, oldest_ms: int | None) -> Window:
    """The time window of a range. "All" starts at the UTC day of `oldest_ms`, the oldest stored snapshot of
    what is shown (so that day's roll-up is in), and spans a day at least."""
    range_key = charts.range_key(range_key)
    span = charts.RANGES[range_key]
    if span:
        start = now_ms - span
    else:
        start = min(now_ms - DAY_MS, now_ms if oldest_ms is None else oldest_ms)
        start -= start % DAY_MS
    if range_key == "24H":
        return Window(range_key, start, now_ms + 1, "raw", HOUR_MS)
    if range_key in ("7D", "30D"):
        return Window(range_key, start, now_ms + 1, "hour", HOUR_MS)
    return Window(range_key, start, now_ms + 1, "day", DAY_MS)


def oldest_ms(store: SnapshotStore, strategy_ids: Iterable[int]) -> int | None:
    """The time of the oldest snapshot stored for any of these strategies; None without any."""
    return min((s.at_ms for sid in strategy_ids if (s := store.earliest(sid)) is not None), default=None)


def range_window(store: SnapshotStore, range_key: str, now_ms: int, strategy_ids: Iterable[int]) -> Window:
    """The window of a range for these strategies, as the charts and the CSV link use it: only "All" reads the
    store (each strategy's oldest snapshot)."""
    return window(range_key, now_ms, oldest_ms(store, strategy_ids) if range_key == charts.ALL else None)


def latest_ms(store: SnapshotStore, strategy_ids: Iterable[int]) -> dict[int, int]:
    """Each strategy's newest stored snapshot time (absent: none yet): what a page calls its last snapshot."""
    return {sid: s.at_ms for sid in strategy_ids if (s := store.latest(sid)) is not None}


def point(snapshot: Snapshot) -> charts.Point:
    return charts.Point(
        at_ms=snapshot.at_ms,
        wallet=float(snapshot.wallet_balance),
        margin=float(snapshot.margin_balance),
        realised_pnl=float(snapshot.realised_pnl),
        last_price=float(snapshot.last_price),
        average_entry_price=float(snapshot.average_entry_price),
        positions=float(snapshot.positions),
    )


def opening(store: SnapshotStore, strategy_id: int, win: Window) -> list[Snapshot]:
    """The range's opening balance: the strategy's last snapshot before the window (none: it opens at its first)."""
    return list(store.recent(strategy_id, win.start_ms, limit=1))


def snapshots_in(store: SnapshotStore, strategy_id: int, win: Window) -> list[Snapshot]:
    """The strategy's snapshots in the window: raw ones for 24H, each bucket's last for longer ranges."""
    if win.source != "raw":
        return [r.last for r in store.rollups(strategy_id, win.source, win.start_ms, win.end_ms)]
    found: list[Snapshot] = []
    cursor = None
    while True:
        page = store.between(strategy_id, win.start_ms, win.end_ms, limit=PAGE_LIMIT, cursor=cursor)
        found.extend(page.items)
        if page.cursor is None:
            return found
        cursor = page.cursor


@dataclass(frozen=True)
class Equity:
    """The combined balance over a member's brokerage accounts, for the dashboard."""

    latest: dict[int, tuple[int, Decimal]]  # each account's newest (at_ms, wallet balance)
    start: Decimal  # what the window's change is measured from
    series: list[tuple[int, Decimal]]
    net_flows: Decimal = Decimal(0)  # deposits less withdrawals in the window, each account's counted once
    flow_last: dict[int, AccountFlow] = field(default_factory=dict)  # account id -> where its flows are read


@dataclass(frozen=True)
class FlowRules:
    """What tells the combined equity's cash flows apart: the tolerance, and the members' corrections of each
    strategy's flows (strategy id -> its corrections, flows.corrections_of)."""

    tolerance: analytics.FlowTolerance = analytics.DEFAULT_TOLERANCE
    corrections: Mapping[int, Sequence[analytics.FlowCorrection]] = field(default_factory=dict)
    # Each strategy's flow points (flows.flow_points): its comparison's ranges are hourly or daily points, whose
    # flows are these added up.
    points: Mapping[int, Sequence[analytics.FlowPoint]] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """One strategy's line of the dashboard's comparison: its time-weighted return net of flows for each range
    (None: no snapshot in it), and its deepest drawdown over all its history."""

    returns: dict[str, Decimal | None]
    max_drawdown: Decimal | None  # negative; None: never below a peak, or no snapshots


def _since(
    snapshots: Sequence[Snapshot], start_ms: int, daily: Sequence[Snapshot], earliest: Snapshot | None
) -> list[Snapshot]:
    """The points from `start_ms` on, opened by the range's opening balance: the last point before it, in these
    points or else in the daily ones (all time); a strategy younger than the range opens at its first snapshot."""
    first = next((n for n, snapshot in enumerate(snapshots) if snapshot.at_ms >= start_ms), len(snapshots))
    if first == len(snapshots):
        return []
    if first > 0:
        return list(snapshots[first - 1 :])
    before = [point for point in daily if point.at_ms < start_ms]
    if before:
        return [before[-1], *snapshots]
    if earliest is not None and earliest.at_ms < snapshots[0].at_ms:
        return [earliest, *snapshots]
    return list(snapshots)


def comparison(store: SnapshotStore, strategy_id: int, now_ms: int, rules: FlowRules = FlowRules()) -> Comparison:
    """Three reads, whatever the history's length or the bots' rate: the hourly roll-ups of the last 31 days (24H,
    7D and 30D, at an hour's resolution), the daily ones of all time (1Y, All and the drawdown: daily closes),
    and the first snapshot (where a strategy younger than a range opens)."""
    earliest = store.earliest(strategy_id)
    hourly = [r.last for r in store.rollups(strategy_id, "hour", now_ms - 31 * DAY_MS, now_ms + 1)]
    daily = [r.last for r in store.rollups(strategy_id, "day", 0, now_ms + 1)]
    corrections = rules.corrections.get(strategy_id, ())
    found: dict[str, analytics.Performance | None] = {}
    for key, span in charts.RANGES.items():
        series = daily if span is None or span > 31 * DAY_MS else hourly
        points = _since(series, 0 if span is None else now_ms - span, daily, earliest)
        found[key] = analytics.strategy_performance(
            points, rules.tolerance, corrections=corrections, points=rules.points.get(strategy_id, ())
        )
    returns = {key: f.time_weighted_return if f and len(f.curve) > 1 else None for key, f in found.items()}
    everything = found[charts.ALL]
    drawdown = everything.max_drawdown if everything else None
    return Comparison(returns, drawdown.depth if drawdown else None)


class Comparisons:
    """Each strategy's comparison line, computed at most once a minute per worker: it depends on the strategy's
    roll-ups, its flow rules and the minute, not on who looks or the range shown, so every open dashboard's load,
    range change and minute tick share one computation (tens of milliseconds a strategy). A change of the
    strategy's corrections or flow points is a new entry at once. Safe from several threads (a race computes
    twice); the oldest entries go past `size`."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[int, int, int], Comparison] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, store: SnapshotStore, strategy_id: int, now_ms: int, rules: FlowRules) -> Comparison:
        said = (
            rules.tolerance,
            tuple(rules.corrections.get(strategy_id, ())),
            tuple(rules.points.get(strategy_id, ())),
        )
        key = (strategy_id, now_ms // MINUTE_MS, hash(said))
        with self._lock:
            if (kept := self._kept.get(key)) is not None:
                self._kept.move_to_end(key)
                return kept
        found = comparison(store, strategy_id, now_ms, rules)
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return found


@dataclass(frozen=True)
class Overview:
    """Everything the dashboard reads from the store for a range, in one trip to a worker thread."""

    window: Window
    equity: Equity
    latest_ms: dict[int, int]  # strategy id -> its newest snapshot's time
    compared: dict[int, Comparison] = field(default_factory=dict)  # strategy id -> its comparison line


def overview(
    store: SnapshotStore,
    range_key: str,
    now_ms: int,
    strategy_accounts: Sequence[tuple[int, int]],
    rules: FlowRules,
    comparisons: Comparisons,
) -> Overview:
    """`strategy_accounts` is (strategy id, account id) for each strategy the dashboard shows; `comparisons`, the
    worker's comparison lines (runtime.Services)."""
    ids = [strategy_id for strategy_id, _ in strategy_accounts]
    win = range_window(store, range_key, now_ms, ids)
    compared = {sid: comparisons.of(store, sid, now_ms, rules) for sid in ids}
    return Overview(win, equity(store, strategy_accounts, win, rules), latest_ms(store, ids), compared)


@dataclass(frozen=True)
class AccountFlow:
    """Where an account's flows are read from: its newest point (the account's wallet, and the realised PnL of
    all its strategies added up) and each strategy's newest realised PnL in that sum."""

    last: Snapshot
    realised: dict[int, Decimal]  # strategy id -> its newest realised PnL

    def after(self, snapshot: Snapshot) -> AccountFlow:
        """The account's point once this snapshot of one of its strategies is counted."""
        realised = {**self.realised, snapshot.strategy_id: snapshot.realised_pnl}
        point = replace(snapshot, strategy_id=self.last.strategy_id, realised_pnl=sum(realised.values(), Decimal(0)))
        return AccountFlow(point, realised)


def account_flow(snapshot: Snapshot) -> AccountFlow:
    return AccountFlow(snapshot, {snapshot.strategy_id: snapshot.realised_pnl})


def _account_flows(
    series: Mapping[int, list[Snapshot]], accounts: Mapping[int, int], rules: FlowRules, *, coarse: bool
) -> tuple[Decimal, dict[int, AccountFlow]]:
    """The window's net flows, each brokerage account's counted once. The account's bots all report its wallet,
    each its own realised PnL: their snapshots merged in time order, a flow is the wallet's change that the sum
    of their realised PnLs does not explain (one bot's profit is not a deposit seen from another's). The
    corrections made on any of the account's strategies apply. `series` is each strategy's last snapshot before
    the window, then its snapshots in it (raw, or hourly or daily points when `coarse`). On coarse points an
    account with one strategy counts that strategy's flow points (what its raw snapshots showed); one shared by
    several bots is read between the points (flow points are each bot's own, and a bot sees the others' profit)."""
    net = Decimal(0)
    flow_last: dict[int, AccountFlow] = {}
    for account_id in sorted(set(accounts.values())):
        on_account = sorted(sid for sid, account in accounts.items() if account == account_id and series.get(sid))
        merged = sorted((s for sid in on_account for s in series[sid]), key=lambda snapshot: snapshot.at_ms)
        if not merged:
            continue
        state, points = account_flow(merged[0]), [merged[0]]
        for snapshot in merged[1:]:
            state = state.after(snapshot)
            points.append(state.last)
        corrections = [c for sid in on_account for c in rules.corrections.get(sid, ())]
        own_points = rules.points.get(on_account[0], ()) if coarse and len(on_account) == 1 else None
        found = analytics.cash_flows(
            _distinct_times(points), rules.tolerance, corrections=corrections, points=own_points
        )
        net += sum((flow.amount for flow in found), Decimal(0))
        flow_last[account_id] = state
    return net, flow_last


def _distinct_times(points: list[Snapshot]) -> list[Snapshot]:
    """One point per time, the last: two bots reporting in the same millisecond are one reading of the account."""
    return list({point.at_ms: point for point in points}.values())


def equity(
    store: SnapshotStore, strategy_accounts: Sequence[tuple[int, int]], win: Window, rules: FlowRules = FlowRules()
) -> Equity:
    """`strategy_accounts` is (strategy id, account id) for each of the member's strategies."""
    readings: dict[int, list[tuple[int, Decimal]]] = {}
    before: dict[int, tuple[int, Decimal]] = {}
    latest: dict[int, tuple[int, Decimal]] = {}
    series: dict[int, list[Snapshot]] = {}
    for strategy_id, account_id in strategy_accounts:
        # Strategies sharing an account report the same wallet: merge their readings in time order.
        in_window = snapshots_in(store, strategy_id, win)
        for snapshot in in_window:
            readings.setdefault(account_id, []).append((snapshot.at_ms, snapshot.wallet_balance))
        opened = opening(store, strategy_id, win)
        if opened and (account_id not in before or opened[0].at_ms > before[account_id][0]):
            before[account_id] = (opened[0].at_ms, opened[0].wallet_balance)
        series[strategy_id] = opened + in_window
    for account_id, account_readings in readings.items():
        account_readings.sort(key=lambda reading: reading[0])
        latest[account_id] = account_readings[-1]
    for account_id, reading in before.items():
        latest.setdefault(account_id, reading)
    before_start = {account: wallet for account, (_, wallet) in before.items()}
    net_flows, flow_last = _account_flows(series, dict(strategy_accounts), rules, coarse=win.source != "raw")
    return Equity(
        latest=latest,
        start=charts.equity_at_start(readings, before_start),
        series=charts.equity_series(readings, before_start, win.start_ms, win.end_ms, win.bucket_ms),
        net_flows=net_flows,
        flow_last=flow_last,
    )


# --- Live: what each pushed snapshot changes on an open page (the pages keep one of these per tab) --------------


@dataclass(frozen=True)
class EquityNumbers:
    """The combined equity as the dashboard shows it."""

    equity: str
    change: str  # with its arrow: "↑ $12.00"
    tone: str  # green, red, or gray without data
    percent: str
    last_update: str  # ISO 8601 of the newest snapshot counted, "" without data
    net_flows: str = "—"  # deposits less withdrawals in the range


NO_EQUITY = EquityNumbers("—", "—", "gray", "—", "")


@dataclass(frozen=True)
class LiveEquity:
    """A dashboard tab's combined equity, kept current snapshot by snapshot: each brokerage account's newest wallet
    balance counted once (a backfilled older snapshot of an account changes nothing), against the range's start.
    Immutable: a page state holds one and replaces it (Reflex saves a state whose vars were assigned)."""

    accounts: dict[int, int] = field(default_factory=dict)  # strategy id -> account id, those the tab may see
    wallets: dict[int, tuple[int, Decimal]] = field(default_factory=dict)  # account id -> (at_ms, wallet balance)
    start: Decimal = Decimal(0)
    bucket_ms: int = HOUR_MS  # the chart's bucket: a new point within one replaces the bucket's last
    seq: int = 0  # live updates so far: the chart sees a gap when one went missing
    net_flows: Decimal = Decimal(0)  # deposits less withdrawals since the range's start: not profit
    flow_last: dict[int, AccountFlow] = field(default_factory=dict)  # account id -> where its flows are read
    tolerance: analytics.FlowTolerance = analytics.DEFAULT_TOLERANCE

    def apply(self, snapshot: Snapshot) -> tuple[LiveEquity, dict[str, object]] | None:
        """With a new snapshot counted: the equity, and the chart's tail (the snapshot's bucket's combined
        balance); None when the snapshot is not this tab's."""
        if snapshot.strategy_id not in self.accounts:
            return None
        wallets = dict(self.wallets)
        account = snapshot.account_id
        held = wallets.get(account)
        if held is None or held[0] <= snapshot.at_ms:
            wallets[account] = (snapshot.at_ms, snapshot.wallet_balance)
        start, net_flows, flow_last = self.start, self.net_flows, dict(self.flow_last)
        if held is None:  # an account's first report is where it starts: not profit (as on a page load)
            start += snapshot.wallet_balance
            flow_last[account] = account_flow(snapshot)
        elif (state := flow_last.get(account)) is not None and state.last.at_ms < snapshot.at_ms:
            # A new flow: the wallet's change since the account's newest point that its bots' realised PnL,
            # added up, does not explain. An older (backfilled) snapshot changes nothing here.
            after_it = state.after(snapshot)
            net_flows += analytics.unexplained_change(state.last, after_it.last, self.tolerance)
            flow_last[account] = after_it
        after = replace(self, wallets=wallets, start=start, seq=self.seq + 1, net_flows=net_flows, flow_last=flow_last)
        return after, charts.equity_tail(snapshot.at_ms - snapshot.at_ms % self.bucket_ms, after.total(), after.seq)

    def total(self) -> Decimal:
        return charts.combined_equity({account: wallet for account, (_, wallet) in self.wallets.items()})

    def numbers(self) -> EquityNumbers:
        if not self.wallets:
            return NO_EQUITY
        total = self.total()
        # Profit is what the accounts earned: money moved in or out is not. The return puts a deposit at risk
        # from the start (analytics' convention for one interval), so it never divides by almost nothing.
        profit = total - self.start - self.net_flows
        at_risk = self.start + max(self.net_flows, Decimal(0))
        return EquityNumbers(
            equity=charts.money(total),
            change=("↑ " if profit >= 0 else "↓ ") + charts.money(profit),
            tone="green" if profit >= 0 else "red",
            percent=f"{profit / at_risk * 100:+.2f}%" if at_risk > 0 else "—",
            last_update=charts.iso_time(max(at for at, _ in self.wallets.values())),
            net_flows=charts.money(self.net_flows),
        )


@dataclass(frozen=True)
class LiveStrategy:
    """A strategy tab's chart, kept current snapshot by snapshot: the drawdown is measured from the highest margin
    balance seen (in the chart's range, then every new snapshot), net of money moved in or out (a flow found
    between the last snapshot and the new one moves the peak by its amount). Immutable, as LiveEquity."""

    strategy_id: int = 0
    peak_margin: float = 0.0
    seq: int = 0  # live updates so far: the chart sees a gap when one went missing
    last_ms: int = 0  # the newest snapshot charted: the tab is watched before the chart is read, so one may come twice
    last: Snapshot | None = None  # the newest snapshot known, which a new one's flow is found against
    tolerance: analytics.FlowTolerance = analytics.DEFAULT_TOLERANCE

    def apply(self, snapshot: Snapshot) -> tuple[LiveStrategy, dict[str, object]] | None:
        """With a new snapshot counted: the chart's state, and the snapshot's point on every trace; None when it is
        another strategy's, or already charted."""
        if snapshot.strategy_id != self.strategy_id or snapshot.at_ms <= self.last_ms:
            return None
        new = point(snapshot)
        moved = float(analytics.unexplained_change(self.last, snapshot, self.tolerance)) if self.last else 0.0
        after = replace(
            self,
            peak_margin=charts.running_peaks([self.peak_margin, new.margin], [0.0, moved])[-1],
            seq=self.seq + 1,
            last_ms=snapshot.at_ms,
            last=snapshot,
        )
        return after, charts.strategy_tail(new, after.peak_margin, after.seq)
