"""What the dashboard reads from a real store (the embedded one) for a range."""

from decimal import Decimal

from projectalgo import analytics, clock, dashboard, flows
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import Strategy
from projectalgo.snapshots import ALL_TIME_END_MS, NUMBER_FIELDS, Snapshot
from tests.factories import make_member, make_strategy, store_one

H = clock.HOUR_MS
D = clock.DAY_MS
NOW = 1_800_000_000_000 - 1_800_000_000_000 % H + 30 * 60_000  # half past an hour


def put(store, strategy_id, account_id, at_ms, wallet, realised=0):
    """A snapshot of these wallet (and margin) balances and realised PnL, every other number 0, stored with its
    interval's flow as ingestion keeps it."""
    values = dict.fromkeys(NUMBER_FIELDS, Decimal(0)) | {
        "wallet_balance": Decimal(wallet),
        "margin_balance": Decimal(wallet),
        "realised_pnl": Decimal(realised),
    }
    stored = store_one(store, Snapshot(strategy_id, account_id, at_ms, **values, symbol="X"))
    with session_scope(store._engine) as session:
        flows.record_flow_points(session, store, [(stored, None)], analytics.DEFAULT_TOLERANCE)


def compare(store, strategy_id):
    """The comparison line the dashboard shows, with the strategy's flow points."""
    with session_scope(store._engine) as session:
        points = flows.flow_points(session, [strategy_id], 0, ALL_TIME_END_MS)
    return dashboard.comparison(store, strategy_id, NOW, dashboard.FlowRules(points=points))


def test_equity_over_24h_counts_shared_accounts_once_and_measures_from_the_window_start(engine):
    member = make_member(engine)
    a, _ = make_strategy(engine, member, name="A", account="Shared")
    b, _ = make_strategy(engine, member, name="B", account="Shared")
    c, _ = make_strategy(engine, member, name="C", account="Own")
    with session_scope(engine) as session:
        accounts = {sid: session.get(Strategy, sid).account_id for sid in (a, b, c)}
    store = SqlSnapshotStore(engine)

    put(store, a, accounts[a], NOW - 30 * H, 900)  # before the window: the shared account's value at the start
    put(store, a, accounts[a], NOW - 10 * H, 1000)
    put(store, b, accounts[b], NOW - 2 * H, 1100)  # the other strategy on the same account reports later: it stands
    put(store, c, accounts[c], NOW - 5 * H, 400)  # the own account first reports inside the window

    win = dashboard.window("24H", NOW, NOW - 40 * H)
    equity = dashboard.equity(store, list(accounts.items()), win)
    assert {account: wallet for account, (_, wallet) in equity.latest.items()} == {accounts[a]: 1100, accounts[c]: 400}
    assert equity.start == 900 + 400
    assert sum(w for _, w in equity.latest.values()) - equity.start == 200
    # Realised PnL stayed 0 for both bots: the shared account's whole rise (900 -> 1000 -> 1100, its two bots'
    # reports merged) is money moved in, counted once; the own account's first report is its start, not a flow.
    assert equity.net_flows == 200
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
    all_time = dashboard.window("All", NOW, NOW - 3 * D)
    # From the start of the oldest snapshot's UTC day, so that day's roll-up is in.
    assert all_time.start_ms == NOW - 3 * D - (NOW - 3 * D) % D and all_time.source == "day"
    assert dashboard.window("All", NOW, None).start_ms == NOW - D - (NOW - D) % D  # nothing stored: a day
    assert dashboard.window("All", NOW, NOW - H).start_ms <= NOW - D  # a day at least
    assert dashboard.window("bogus", NOW, 0).key == "24H"


def _history(engine, store, strategy_id, days, wallet=1000):
    with session_scope(engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    values = dict.fromkeys(NUMBER_FIELDS, Decimal(0))
    for day in range(days, 0, -1):  # one snapshot a day, the oldest first, as a bot backfills
        at = NOW - day * D
        store_one(
            store, Snapshot(strategy_id, account_id, at, **values | {"wallet_balance": Decimal(wallet)}, symbol="X")
        )


def test_all_starts_at_the_oldest_stored_snapshot_not_at_the_strategys_creation(engine):
    """A member who backfills two years covers them on "All", which is never shorter than "1Y" (issue 13)."""
    member = make_member(engine)
    old, _ = make_strategy(engine, member, name="Backfilled")  # created today, history from two years ago
    new, _ = make_strategy(engine, member, name="Fresh")
    store = SqlSnapshotStore(engine)
    _history(engine, store, old, 730)
    _history(engine, store, new, 3)
    both = dashboard.range_window(store, "All", NOW, [old, new])
    assert both.start_ms <= NOW - 730 * D < both.start_ms + D
    assert dashboard.range_window(store, "All", NOW, [new]).start_ms <= NOW - 3 * D
    year = dashboard.range_window(store, "1Y", NOW, [old])
    all_points = dashboard.snapshots_in(store, old, both)
    assert len(all_points) == 730 > len(dashboard.snapshots_in(store, old, year))
    assert all_points[0].at_ms == NOW - 730 * D
    equity = dashboard.overview(store, "All", NOW, [(old, 1)], dashboard.FlowRules(), dashboard.Comparisons()).equity
    assert equity.series[0][0] <= NOW - 730 * D and len(equity.series) >= 730


def test_the_last_snapshot_is_the_newest_stored_one(engine):
    """Not strategies.last_snapshot_at, which ingestion writes at most once a second (issue 13)."""
    member = make_member(engine)
    a, _ = make_strategy(engine, member, name="A")
    silent, _ = make_strategy(engine, member, name="Silent")
    store = SqlSnapshotStore(engine)
    _history(engine, store, a, 2)
    newest = store_one(store, Snapshot(a, 1, NOW - 9 * 60_000, **dict.fromkeys(NUMBER_FIELDS, Decimal(1)), symbol="X"))
    with session_scope(engine) as session:
        assert session.get(Strategy, a).last_snapshot_at is None  # nothing wrote it: the store is what counts
    seen = dashboard.overview(store, "24H", NOW, [(a, 1), (silent, 2)], dashboard.FlowRules(), dashboard.Comparisons())
    assert seen.latest_ms == {a: newest.at_ms}


def test_the_comparison_gives_each_range_its_return_net_of_flows_and_the_deepest_drawdown(engine):
    member = make_member(engine)
    sid, _ = make_strategy(engine, member, name="Compared")
    with session_scope(engine) as session:
        account = session.get(Strategy, sid).account_id
    store = SqlSnapshotStore(engine)

    put(store, sid, account, NOW - 40 * D, 1000)  # 40 days ago: 1,000
    put(store, sid, account, NOW - 20 * D, 800, -200)  # a 20 % fall
    put(store, sid, account, NOW - 3 * D, 1000)  # back: +25 %
    put(store, sid, account, NOW - 12 * H, 6000)  # $5,000 deposited: no return
    put(store, sid, account, NOW - H, 6060, 60)  # +1 % on 6,000
    compared = compare(store, sid)
    returns = {key: (round(value, 6) if value is not None else None) for key, value in compared.returns.items()}
    # 24H: opened by the last point before it (NOW - 3 days: 1,000), then the deposit, then +1 %.
    assert returns["24H"] == Decimal("0.01")
    # 7D: opened by 800 (20 days ago, the value until 3 days ago): x1.25, then x1.01.
    assert returns["7D"] == Decimal("0.2625")
    # 30D: opened by 1,000 (40 days ago, older than the hourly roll-ups read: from the daily ones): x0.8 x1.25 x1.01.
    assert returns["30D"] == Decimal("0.01")
    # 1Y and All, from the daily roll-ups: 1,000 -> 800 -> 1,000 -> (deposit) -> +1 %.
    assert returns["1Y"] == returns["All"] == Decimal("0.01")
    assert compared.max_drawdown == Decimal("-0.2")


def test_a_strategy_without_snapshots_has_no_figures_to_compare(engine):
    member = make_member(engine)
    sid, _ = make_strategy(engine, member, name="Silent")
    compared = dashboard.comparison(SqlSnapshotStore(engine), sid, NOW)
    assert set(compared.returns.values()) == {None} and compared.max_drawdown is None


def test_one_bots_profit_on_a_shared_account_is_not_a_deposit_seen_from_the_other(engine):
    member = make_member(engine)
    a, _ = make_strategy(engine, member, name="A", account="Shared")
    b, _ = make_strategy(engine, member, name="B", account="Shared")
    with session_scope(engine) as session:
        account = session.get(Strategy, a).account_id
    store = SqlSnapshotStore(engine)

    put(store, a, account, NOW - 10 * H, 1000)
    put(store, b, account, NOW - 9 * H, 1000)
    put(store, b, account, NOW - 8 * H, 1050, 50)  # B earns 50: the wallet shows it, A's realised PnL does not
    put(store, a, account, NOW - 7 * H, 1050)
    put(store, a, account, NOW - 6 * H, 3050)  # 2,000 moved in
    equity = dashboard.equity(store, [(a, account), (b, account)], dashboard.window("24H", NOW, None))
    assert equity.net_flows == 2000
    assert sum(w for _, w in equity.latest.values()) - equity.start - equity.net_flows == 50


def test_a_strategy_younger_than_the_range_opens_at_its_first_snapshot(engine):
    member = make_member(engine)
    sid, _ = make_strategy(engine, member, name="New")
    with session_scope(engine) as session:
        account = session.get(Strategy, sid).account_id
    store = SqlSnapshotStore(engine)
    for minutes, wallet, realised in ((20, 1000, 0), (10, 1010, 10), (5, 1020, 20)):  # all in the last hour
        put(store, sid, account, NOW - minutes * 60_000, wallet, realised)
    returns = compare(store, sid).returns
    assert {key: round(value, 6) for key, value in returns.items()} == dict.fromkeys(returns, Decimal("0.02"))


def test_a_comparison_is_computed_once_a_minute_and_again_at_once_when_its_flows_change(engine):
    """Every open dashboard's load, range change and tick share one computation per strategy and minute; a member's
    correction (or a new flow point) is seen at once, and the next minute reads the store again."""
    member = make_member(engine)
    sid, _ = make_strategy(engine, member, name="Cached")
    with session_scope(engine) as session:
        account = session.get(Strategy, sid).account_id
    store = SqlSnapshotStore(engine)
    put(store, sid, account, NOW - 2 * H, 1000)
    put(store, sid, account, NOW - H, 1100, 100)
    comparisons = dashboard.Comparisons()
    first = comparisons.of(store, sid, NOW, dashboard.FlowRules())
    put(store, sid, account, NOW - 30 * 60_000, 1210, 210)  # +10 % more, within the same minute's line
    assert comparisons.of(store, sid, NOW + 59_000 - NOW % 60_000, dashboard.FlowRules()) is first
    said = dashboard.FlowRules(corrections={sid: [analytics.ManualFlow(NOW - 90 * 60_000, Decimal(50))]})
    corrected = comparisons.of(store, sid, NOW, said)
    assert corrected is not first and corrected.returns["24H"] != first.returns["24H"]
    later = comparisons.of(store, sid, NOW + 60_000, dashboard.FlowRules())
    assert round(later.returns["24H"], 6) == Decimal("0.21")


def test_the_combined_equity_on_hourly_points_counts_an_own_accounts_flows_as_its_raw_snapshots_showed(engine):
    """Fees the bot never books as realised PnL ($0.90 every 10 minutes, below the $1 tolerance) are losses, not
    withdrawals, though an hour's add up past it; the $500 deposit (less that interval's fee: $499.10) is the one flow
    on 7D as on 24H."""
    member = make_member(engine)
    sid, _ = make_strategy(engine, member, name="Fees")
    with session_scope(engine) as session:
        account = session.get(Strategy, sid).account_id
    store = SqlSnapshotStore(engine)
    wallet = Decimal(1000)
    for n in range(36):  # six hours, every 10 minutes
        wallet -= Decimal("0.9")
        if n == 20:
            wallet += 500
        put(store, sid, account, NOW - 6 * H + n * 10 * 60_000, wallet)
    with session_scope(engine) as session:
        rules = dashboard.FlowRules(points=flows.flow_points(session, [sid], 0, ALL_TIME_END_MS))
    for key in ("24H", "7D"):
        seen = dashboard.equity(store, [(sid, account)], dashboard.window(key, NOW, NOW - 6 * H), rules)
        assert seen.net_flows == Decimal("499.1"), key
