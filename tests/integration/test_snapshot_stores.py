"""The SnapshotStore contract, run against both real stores: SQL (SQLite) and DynamoDB Local."""

import itertools
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from botocore.exceptions import EndpointConnectionError

from projectalgo import analytics, clock, flows, snapshots
from projectalgo.db import session_scope
from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.settings import load_settings
from projectalgo.snapshots import ALL_TIME_END_MS
from tests.factories import make_member, make_strategy, store_one

_tables = itertools.count(1)


@pytest.fixture(params=["sql", "postgres", "dynamodb"])
def store_and_strategies(request, engine):
    """A store, and three strategies (the first two on one brokerage account) for its snapshots.

    "sql" is the embedded store on SQLite, "postgres" the same store on PostgreSQL (production mode)."""
    if request.param == "postgres":
        engine = request.getfixturevalue("pg_engine")
    member = make_member(engine)
    ids = [
        make_strategy(engine, member, name="A", account="Shared")[0],
        make_strategy(engine, member, name="B", account="Shared")[0],
        make_strategy(engine, member, name="C", account="Own")[0],
    ]
    if request.param in ("sql", "postgres"):
        return SqlSnapshotStore(engine), ids
    server = request.getfixturevalue("dynamodb_local")
    settings = load_settings(
        {
            "DYNAMODB_TABLE": f"snapshots{next(_tables)}",
            "DYNAMODB_ENDPOINT_URL": server.url,
            "AWS_ACCESS_KEY": "test",
            "AWS_SECRET_KEY": "test",
        }
    )
    store = DynamoSnapshotStore(settings)
    assert store.create_table() is True
    assert store.create_table() is False  # idempotent

    def no_scans(**_kwargs):
        raise AssertionError("the DynamoDB store must never Scan")

    store._resource.meta.client.meta.events.register("before-call.dynamodb.Scan", no_scans)
    return store, ids


def snap(strategy_id, at_ms, wallet="100", account_id=1, **values):
    fields = {
        "last_price": "9321.5",
        "margin_balance": "101.5",
        "wallet_balance": wallet,
        "realised_pnl": "-2.25",
        "positions": "0.5",
        "average_entry_price": "9300.25",
    } | values
    return snapshots.Snapshot(
        strategy_id=strategy_id,
        account_id=account_id,
        at_ms=at_ms,
        symbol="XBTUSD",
        **{k: Decimal(v) for k, v in fields.items()},
    )


def test_a_stored_snapshot_reads_back_exactly(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    assert store.latest(a) is None
    precise = snap(
        a,
        1_700_000_000_000,
        last_price="1234567890.1234567890123456789012345678",
        realised_pnl="-0.000000000000000000000000000000000001",
    )
    assert store_one(store, precise) == precise
    assert store.latest(a) == precise
    assert store.latest(b) is None


def test_two_snapshots_in_the_same_millisecond_are_both_kept(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    first = store_one(store, snap(a, 1_700_000_000_000, wallet="1"))
    second = store_one(store, snap(a, 1_700_000_000_000, wallet="2"))
    third = store_one(store, snap(a, 1_700_000_000_000, wallet="3"))
    assert [first.at_ms, second.at_ms, third.at_ms] == [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002]
    page = store.between(a, 0, 2_000_000_000_000)
    assert [s.wallet_balance for s in page.items] == [1, 2, 3]
    assert store.latest(a).wallet_balance == 3


def test_a_batch_keeps_every_snapshot_in_order_with_its_rollups(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    earlier = store_one(store, snap(a, MIDNIGHT + 1, wallet="0"))  # the batch's second snapshot collides with it
    batch = [
        snap(a, MIDNIGHT, wallet="1"),
        snap(a, MIDNIGHT + 1, wallet="2"),
        snap(b, MIDNIGHT, wallet="3"),
        snap(a, MIDNIGHT, wallet="4"),  # the same millisecond as the batch's first
    ]
    stored = store.put_many(batch)
    # Each as sent, moved on to the next free millisecond when its own is taken, in the order posted.
    assert [(s.strategy_id, s.at_ms, s.wallet_balance) for s in stored] == [
        (a, MIDNIGHT, 1),
        (a, MIDNIGHT + 2, 2),
        (b, MIDNIGHT, 3),
        (a, MIDNIGHT + 3, 4),
    ]
    assert store.between(a, 0, 2 * MIDNIGHT).items == [stored[0], earlier, stored[1], stored[3]]
    for resolution in ("hour", "day"):
        assert all_rollups(store, a, resolution) == expected_rollups([earlier, *stored[:2], stored[3]], resolution)
        assert all_rollups(store, b, resolution) == expected_rollups([stored[2]], resolution)


def test_snapshots_of_a_batch_that_meet_a_stored_one_stay_in_the_order_posted(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    store_one(store, snap(a, MIDNIGHT, wallet="0"))
    first, second = store.put_many([snap(a, MIDNIGHT, wallet="1"), snap(a, MIDNIGHT, wallet="2")])
    assert (first.at_ms, second.at_ms) == (MIDNIGHT + 1, MIDNIGHT + 2)
    assert store.latest(a) == second


def test_a_snapshot_the_store_refuses_fails_alone(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    if isinstance(store, SqlSnapshotStore):
        refused = snap(999_999_999, MIDNIGHT)  # no such strategy: the foreign key refuses it
    else:
        refused = snap(a, MIDNIGHT + 5, positions="1" + "0" * 70)  # 71 digits: DynamoDB keeps at most 38
    first, failed, last = store.put_many([snap(a, MIDNIGHT), refused, snap(b, MIDNIGHT)])
    assert isinstance(failed, Exception) and not isinstance(failed, snapshots.StoreUnavailableError)
    assert store.latest(a) == first and store.latest(b) == last
    assert [bucket.last for bucket in all_rollups(store, a, "hour")] == [first]


def test_ranges_are_ascending_half_open_and_paged(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    start = 1_700_000_000_000
    for n in range(25):
        store_one(store, snap(a, start + n * 1000, wallet=str(n)))
    store_one(store, snap(b, start + 5000))  # another strategy's snapshot never leaks in
    seen, cursor, pages = [], None, 0
    while True:
        page = store.between(a, start + 2000, start + 22_000, limit=7, cursor=cursor)
        seen += [s.at_ms for s in page.items]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == [start + n * 1000 for n in range(2, 22)]
    assert pages in (3, 4)  # 20 items by 7; a store may need one empty page to know it is done
    assert store.between(a, start, start).items == []


def test_concurrent_puts_at_the_same_millisecond_all_land_once(store_and_strategies):
    store, (a, b, _) = store_and_strategies

    def put_many(worker):
        return [store_one(store, snap(a if n % 2 else b, 1_700_000_000_000, wallet=f"{worker}.{n}")) for n in range(10)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        stored = [s for batch in pool.map(put_many, range(16)) for s in batch]
    for strategy_id in (a, b):
        kept = store.between(strategy_id, 0, ALL_TIME_END_MS).items
        assert len(kept) == 80 and len({s.at_ms for s in kept}) == 80
        assert sorted(s.wallet_balance for s in kept) == sorted(
            s.wallet_balance for s in stored if s.strategy_id == strategy_id
        )


def test_recent_snapshots_come_newest_first_before_a_time(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    for n in range(5):
        store_one(store, snap(a, 1_700_000_000_000 + n, wallet=str(n)))
    store_one(store, snap(b, 1_700_000_000_003))
    assert [s.wallet_balance for s in store.recent(a, 1_700_000_000_004, limit=3)] == [3, 2, 1]
    assert store.recent(a, 1_700_000_000_000, limit=3) == []
    assert store.latest(a).wallet_balance == 4


HOUR, DAY = clock.HOUR_MS, clock.DAY_MS
MIDNIGHT = 1_700_006_400_000  # 2023-11-15 00:00 UTC


def expected_rollups(stored, resolution):
    """The roll-ups by their definition, computed the slow way."""
    size = snapshots.ROLLUP_RESOLUTIONS[resolution]
    buckets = defaultdict(list)
    for snapshot in stored:
        buckets[snapshot.at_ms // size * size].append(snapshot)
    return [
        snapshots.Rollup(
            bucket_ms=bucket,
            last=max(members, key=lambda s: s.at_ms),
            wallet_min=min(s.wallet_balance for s in members),
            wallet_max=max(s.wallet_balance for s in members),
            margin_min=min(s.margin_balance for s in members),
            margin_max=max(s.margin_balance for s in members),
        )
        for bucket, members in sorted(buckets.items())
    ]


def all_rollups(store, strategy_id, resolution):
    return store.rollups(strategy_id, resolution, 0, ALL_TIME_END_MS)


def test_rollups_hold_each_buckets_last_snapshot_and_extremes(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    rng = random.Random(7)
    stored = {a: [], b: []}
    # Three days, a few snapshots in some hours; values chosen so text order and number order disagree.
    times = sorted(MIDNIGHT + day * DAY + hour * HOUR + rng.randrange(HOUR) for day in range(3) for hour in (0, 5, 23))
    for at_ms in times + [t + 1000 for t in times[::2]]:
        for strategy_id in (a, b):
            wallet = str(rng.choice(["9", "10", "-5", "-40", "100.5", "0.000001"]) if strategy_id == a else 1)
            margin = str(rng.randrange(-50, 50)) + "." + str(rng.randrange(100))
            stored[strategy_id].append(store_one(store, snap(strategy_id, at_ms, wallet=wallet, margin_balance=margin)))
    for strategy_id in (a, b):  # two strategies never mix
        for resolution in ("hour", "day"):
            assert all_rollups(store, strategy_id, resolution) == expected_rollups(stored[strategy_id], resolution)
    assert len(all_rollups(store, a, "day")) == 3 and len(all_rollups(store, a, "hour")) == 9


def test_an_older_snapshot_arriving_late_moves_the_extremes_not_last(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    newest = store_one(store, snap(a, MIDNIGHT + 2 * HOUR + 500, wallet="10", margin_balance="20"))
    store_one(store, snap(a, MIDNIGHT + 2 * HOUR + 100, wallet="9", margin_balance="200"))  # late: older, more extreme
    for resolution in ("hour", "day"):
        [bucket] = all_rollups(store, a, resolution)
        assert bucket.last == newest
        assert (bucket.wallet_min, bucket.wallet_max, bucket.margin_min, bucket.margin_max) == (9, 10, 20, 200)


def test_rollup_ranges_are_half_open_and_ascending(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    for hour in (4, 0, 3, 1, 2):  # stored out of order
        store_one(store, snap(a, MIDNIGHT + hour * HOUR + 7))
    store_one(store, snap(b, MIDNIGHT + HOUR))
    buckets = store.rollups(a, "hour", MIDNIGHT + HOUR, MIDNIGHT + 4 * HOUR)
    assert [r.bucket_ms for r in buckets] == [MIDNIGHT + HOUR, MIDNIGHT + 2 * HOUR, MIDNIGHT + 3 * HOUR]
    assert [r.last.at_ms for r in buckets] == [MIDNIGHT + h * HOUR + 7 for h in (1, 2, 3)]
    assert store.rollups(a, "hour", MIDNIGHT + HOUR + 1, MIDNIGHT + 2 * HOUR) == []  # a bucket starts inside or not
    assert store.rollups(a, "day", MIDNIGHT, MIDNIGHT) == []
    assert [r.bucket_ms for r in store.rollups(a, "day", MIDNIGHT - DAY, MIDNIGHT + 1)] == [MIDNIGHT]
    with pytest.raises(ValueError, match="unknown roll-up resolution"):
        store.rollups(a, "minute", 0, MIDNIGHT)


def test_concurrent_puts_into_one_bucket_keep_the_newest_and_the_extremes(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    rng = random.Random(11)
    # 160 distinct milliseconds in one hour, posted in shuffled order by 16 threads.
    at = rng.sample(range(MIDNIGHT + 5 * HOUR, MIDNIGHT + 6 * HOUR), 160)
    bodies = [(t, f"{rng.randrange(-(10**6), 10**6)}.{n}", str(rng.randrange(1, 10**4))) for n, t in enumerate(at)]

    def put_many(worker):
        return [store_one(store, snap(a, t, wallet=w, margin_balance=m)) for t, w, m in bodies[worker::16]]

    with ThreadPoolExecutor(max_workers=16) as pool:
        stored = [s for batch in pool.map(put_many, range(16)) for s in batch]
    assert sorted(s.at_ms for s in stored) == sorted(at)  # none moved: each millisecond was free
    for resolution in ("hour", "day"):
        assert all_rollups(store, a, resolution) == expected_rollups(stored, resolution)


def test_rebuilding_rollups_changes_nothing_that_is_right(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    stored = [store_one(store, snap(a, MIDNIGHT + n * 7 * HOUR, wallet=str(n))) for n in range(10)]
    before = all_rollups(store, a, "hour")
    assert store.rebuild_rollups(a) == 10 + 3  # ten hours over three days
    assert all_rollups(store, a, "hour") == before == expected_rollups(stored, "hour")
    assert all_rollups(store, a, "day") == expected_rollups(stored, "day")


@pytest.mark.parametrize("store_and_strategies", ["sql"], indirect=True)
def test_sql_a_snapshot_and_its_rollups_are_stored_together_or_not_at_all(store_and_strategies, engine):
    store, (a, _, _) = store_and_strategies
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE snapshot_rollups")
    with pytest.raises(snapshots.StoreUnavailableError, match="no such table"):
        store_one(store, snap(a, MIDNIGHT))
    assert store.latest(a) is None


@pytest.mark.parametrize("store_and_strategies", ["sql"], indirect=True)
def test_sql_rebuild_fills_rollups_for_snapshots_stored_before_rollups_existed(store_and_strategies, engine):
    store, (a, b, _) = store_and_strategies
    stored = [store_one(store, snap(a, MIDNIGHT + n * 5 * HOUR + n, wallet=str(-n))) for n in range(12)]
    store_one(store, snap(b, MIDNIGHT))
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM snapshot_rollups")  # as after migrating a database with history
    assert store.rebuild_rollups(a) == 12 + 3
    assert all_rollups(store, a, "hour") == expected_rollups(stored, "hour")
    assert all_rollups(store, a, "day") == expected_rollups(stored, "day")
    assert all_rollups(store, b, "day") == []  # rebuilt for the strategy asked only


@pytest.mark.parametrize("store_and_strategies", ["dynamodb"], indirect=True)
def test_dynamodb_a_failed_rollup_write_is_logged_the_snapshot_stands_and_rebuild_repairs(store_and_strategies, caplog):
    store, (a, _, _) = store_and_strategies
    first = store_one(store, snap(a, MIDNIGHT, wallet="5"))
    events = store._resource.meta.client.meta.events

    def unreachable(**_kwargs):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    events.register("before-call.dynamodb.UpdateItem", unreachable)  # roll-ups only: snapshots use PutItem
    try:
        second = store_one(store, snap(a, MIDNIGHT + 10, wallet="1"))
    finally:
        events.unregister("before-call.dynamodb.UpdateItem", unreachable)
    assert store.latest(a) == second  # stored and answered as stored
    assert sorted(r.message for r in caplog.records if r.name == "projectalgo.rollups") == [
        f"rollup.write_failed strategy_id={a} day={MIDNIGHT}",
        f"rollup.write_failed strategy_id={a} hour={MIDNIGHT}",
    ]
    assert all_rollups(store, a, "hour")[0].last == first  # the bucket missed the second snapshot
    assert store.rebuild_rollups(a) == 2
    assert all_rollups(store, a, "hour") == expected_rollups([first, second], "hour")


@pytest.mark.parametrize("store_and_strategies", ["dynamodb"], indirect=True)
def test_dynamodb_rollups_read_every_query_page(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    stored = [store_one(store, snap(a, MIDNIGHT + hour * HOUR)) for hour in range(7)]
    pages = []

    def small_pages(params, **_kwargs):  # a real page holds up to 1 MB; make pages of 2 buckets
        if params["TableName"] == store.rollup_table_name:
            params["Limit"] = 2
            pages.append(params.get("ExclusiveStartKey"))

    store._resource.meta.client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    assert all_rollups(store, a, "hour") == expected_rollups(stored, "hour")
    assert len(pages) == 4


def test_the_earliest_snapshot_is_the_oldest_stored_whatever_the_order_of_posting(store_and_strategies):
    """Where "All" starts: a member who backfills history gets its oldest snapshot, not the first one posted."""
    store, (a, b, _) = store_and_strategies
    assert store.earliest(a) is None
    store_one(store, snap(a, MIDNIGHT, wallet="1"))
    backfilled = store_one(store, snap(a, MIDNIGHT - 400 * DAY, wallet="2"))  # posted later, a year older
    store_one(store, snap(a, MIDNIGHT - 3 * DAY, wallet="3"))
    store_one(store, snap(b, MIDNIGHT - 900 * DAY))  # another strategy's older snapshot never counts
    assert store.earliest(a) == backfilled
    assert store.earliest(b).at_ms == MIDNIGHT - 900 * DAY


@pytest.mark.parametrize("store_and_strategies", ["dynamodb"], indirect=True)
def test_dynamodb_the_earliest_snapshot_costs_one_query_of_one_item(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    for day in range(5):
        store_one(store, snap(a, MIDNIGHT - day * DAY))
    queries = []
    store._resource.meta.client.meta.events.register(
        "provide-client-params.dynamodb.Query", lambda params, **_kwargs: queries.append(dict(params))
    )
    assert store.earliest(a).at_ms == MIDNIGHT - 4 * DAY
    assert [(q["ScanIndexForward"], q["Limit"]) for q in queries] == [(True, 1)]


@pytest.mark.parametrize("seed", range(4))
def test_the_figures_from_the_rollups_are_those_of_the_raw_snapshots_at_each_buckets_end(store_and_strategies, seed):
    """Issue 16: what the pages show for 7D/30D (hourly) and 1Y/All (daily) is computed from the roll-ups' last
    snapshots; those are exactly the raw snapshots ending each bucket, so the figures (flows found, corrections,
    profit, time-weighted return, drawdown, days) agree with the raw snapshots sampled the same way."""
    store, (a, _, _) = store_and_strategies
    rng = random.Random(seed)
    wallet, realised, at_ms, raw = Decimal(10_000), Decimal(0), MIDNIGHT + rng.randrange(HOUR), []
    for _ in range(120):  # about three days, a snapshot every 10 to 50 minutes
        at_ms += rng.randrange(10, 50) * 60_000
        earned = Decimal(rng.randrange(-3000, 3000)) / 100
        wallet, realised = wallet + earned, realised + earned
        if rng.random() < 0.05:  # a deposit or withdrawal now and then
            wallet += rng.choice([Decimal(5000), Decimal(-2000), Decimal(250)])
        margin = wallet + Decimal(rng.randrange(-500, 500)) / 10
        raw.append(
            store_one(store, snap(a, at_ms, wallet=str(wallet), realised_pnl=str(realised), margin_balance=str(margin)))
        )
    said = [analytics.NotAFlow(raw[40].at_ms, Decimal(5000)), analytics.ManualFlow(raw[70].at_ms, Decimal(100))]
    for resolution, size in (("hour", HOUR), ("day", DAY)):
        from_rollups = [r.last for r in store.rollups(a, resolution, 0, ALL_TIME_END_MS)]
        at_bucket_ends = list({s.at_ms // size: s for s in raw}.values())  # the last of each bucket
        assert from_rollups == at_bucket_ends
        assert analytics.strategy_performance(from_rollups, corrections=said) == analytics.strategy_performance(
            at_bucket_ends, corrections=said
        )


@pytest.mark.parametrize("seed", range(3))
def test_coarse_ranges_count_the_flows_the_raw_snapshots_show_and_no_others(store_and_strategies, engine, seed):
    """Issue 16: hourly and daily points count the flows found between consecutive raw snapshots as they were
    stored (flow points), added up per interval: fee crumbs below the tolerance never add up to a flow over an
    hour or a day, a broker's reset of realised PnL inside a bucket is no flow, and what a bot stated counts as
    stated. So a coarse range's net flows and profit are those of the raw snapshots over the same span."""
    store, (a, _, _) = store_and_strategies
    ledger = store._engine if isinstance(store, SqlSnapshotStore) else engine  # where the strategies are
    rng = random.Random(seed)
    wallet, realised, at_ms, raw, stated = Decimal(10_000), Decimal(0), MIDNIGHT, [], {}
    for _ in range(150):  # about two and a half days
        at_ms += rng.randrange(5, 30) * 60_000
        earned = Decimal(rng.randrange(-3000, 3000)) / 100
        wallet, realised = wallet + earned - Decimal(rng.randrange(0, 90)) / 100, realised + earned  # unbooked fees
        if rng.random() < 0.04:
            realised = Decimal(0)  # the broker restarts its realised PnL
        said = None
        if rng.random() < 0.04:
            wallet += rng.choice([Decimal(5000), Decimal(-2000)])
        elif rng.random() < 0.04:
            said = rng.choice([Decimal(300), Decimal(-150)])
            wallet += said
        stored = store_one(
            store, snap(a, at_ms, wallet=str(wallet), realised_pnl=str(realised), margin_balance=str(wallet))
        )
        with session_scope(ledger) as session:
            flows.record_flow_points(session, store, [(stored, said)], analytics.DEFAULT_TOLERANCE)
        raw.append(stored)
        if said is not None:
            stated[stored.at_ms] = said
    with session_scope(ledger) as session:
        points = flows.flow_points(session, [a], 0, ALL_TIME_END_MS)[a]
    for resolution in ("hour", "day"):
        coarse = [r.last for r in store.rollups(a, resolution, 0, ALL_TIME_END_MS)]
        same_span = [s for s in raw if coarse[0].at_ms <= s.at_ms <= coarse[-1].at_ms]
        from_raw = analytics.strategy_performance(same_span, stated=stated)
        from_coarse = analytics.strategy_performance(coarse, points=points)
        # A deposit and a withdrawal in one bucket are one net flow there: the net and the profit are the same.
        assert (from_coarse.net_flows, from_coarse.profit) == (from_raw.net_flows, from_raw.profit)
        found = analytics.cash_flows(coarse, points=points)
        assert {f.source for f in found} <= {"detected", "stated"}
