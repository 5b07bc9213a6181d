"""What the dashboard and strategy pages show, read from the snapshot store with bounded work. No Reflex.

A range reads raw snapshots only for 24H; longer ranges read the hourly or daily roll-ups, so 1Y and All
read a few thousand items whatever the history's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from projectalgo import charts
from projectalgo.snapshots import Snapshot, SnapshotStore

PAGE_LIMIT = 1000


@dataclass(frozen=True)
class Window:
    key: str
    start_ms: int
    end_ms: int
    source: str  # "raw", "hour" or "day": where the strategy points come from
    bucket_ms: int  # the equity chart's bucket


def window(range_key: str, now_ms: int, first_ms: int) -> Window:
    """The time window of a range; "All" starts at `first_ms` (the member's first strategy)."""
    if range_key not in charts.RANGES:
        range_key = charts.DEFAULT_RANGE
    span = charts.RANGES[range_key]
    start = now_ms - span if span else min(first_ms, now_ms - charts.DAY_MS)
    if range_key == "24H":
        return Window(range_key, start, now_ms + 1, "raw", charts.HOUR_MS)
    if range_key in ("7D", "30D"):
        return Window(range_key, start, now_ms + 1, "hour", charts.HOUR_MS)
    return Window(range_key, start, now_ms + 1, "day", charts.DAY_MS)


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


def equity(store: SnapshotStore, strategy_accounts: Sequence[tuple[int, int]], win: Window) -> Equity:
    """`strategy_accounts` is (strategy id, account id) for each of the member's strategies."""
    readings: dict[int, list[tuple[int, Decimal]]] = {}
    before: dict[int, tuple[int, Decimal]] = {}
    latest: dict[int, tuple[int, Decimal]] = {}
    for strategy_id, account_id in strategy_accounts:
        # Strategies sharing an account report the same wallet: merge their readings in time order.
        for snapshot in snapshots_in(store, strategy_id, win):
            readings.setdefault(account_id, []).append((snapshot.at_ms, snapshot.wallet_balance))
        if (earlier := next(iter(store.recent(strategy_id, win.start_ms, limit=1)), None)) and (
            account_id not in before or earlier.at_ms > before[account_id][0]
        ):
            before[account_id] = (earlier.at_ms, earlier.wallet_balance)
    for account_id, account_readings in readings.items():
        account_readings.sort(key=lambda reading: reading[0])
        latest[account_id] = account_readings[-1]
    for account_id, reading in before.items():
        latest.setdefault(account_id, reading)
    before_start = {account: wallet for account, (_, wallet) in before.items()}
    return Equity(
        latest=latest,
        start=charts.equity_at_start(readings, before_start),
        series=charts.equity_series(readings, before_start, win.start_ms, win.end_ms, win.bucket_ms),
    )
