"""What the dashboard reads from a real store (the embedded one) for a range."""

from decimal import Decimal

from projectalgo import charts, dashboard
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot
from tests.factories import make_member, make_strategy, store_one

H = charts.HOUR_MS
NOW = 1_800_000_000_000 - 1_800_000_000_000 % H + 30 * 60_000  # half past an hour


def test_equity_over_24h_counts_shared_accounts_once_and_measures_from_the_window_start(engine):
    member = make_member(engine)
    a, _ = make_strategy(engine, member, name="A", account="Shared")
    b, _ = make_strategy(engine, member, name="B", account="Shared")
    c, _ = make_strategy(engine, member, name="C", account="Own")
    with session_scope(engine) as session:
        accounts = {sid: session.get(Strategy, sid).account_id for sid in (a, b, c)}
    store = SqlSnapshotStore(engine)

    def put(strategy_id, at_ms, wallet):
        values = dict.fromkeys(NUMBER_FIELDS, Decimal(0)) | {"wallet_balance": Decimal(wallet)}
        store_one(store, Snapshot(strategy_id, accounts[strategy_id], at_ms, **values, symbol="X"))

    put(a, NOW - 30 * H, 900)  # before the window: the shared account's value at the start
    put(a, NOW - 10 * H, 1000)
    put(b, NOW - 2 * H, 1100)  # the other strategy on the same account reports later: it stands
    put(c, NOW - 5 * H, 400)  # the own account first reports inside the window

    win = dashboard.window("24H", NOW, NOW - 40 * H)
    equity = dashboard.equity(store, list(accounts.items()), win)
    assert {account: wallet for account, (_, wallet) in equity.latest.items()} == {accounts[a]: 1100, accounts[c]: 400}
    assert equity.start == 900 + 400
    assert charts.change(equity.start, sum(w for _, w in equity.latest.values())).amount == 200
    by_hour = dict(equity.series)
    first_hour = win.start_ms - win.start_ms % H
    assert by_hour[first_hour] == 900  # only the shared account existed then; the own one is not back-filled
    assert by_hour[NOW - NOW % H - 5 * H] == 1000 + 400
    assert by_hour[NOW - NOW % H] == 1100 + 400
    assert len(equity.series) == 25


def test_windows_use_raw_snapshots_for_24h_and_roll_ups_beyond():
    assert dashboard.window("24H", NOW, 0).source == "raw"
    assert dashboard.window("7D", NOW, 0).source == "hour"
    assert dashboard.window("1Y", NOW, 0).source == "day"
    all_time = dashboard.window("All", NOW, NOW - 3 * charts.DAY_MS)
    assert all_time.start_ms == NOW - 3 * charts.DAY_MS and all_time.source == "day"
    assert dashboard.window("bogus", NOW, 0).key == "24H"
