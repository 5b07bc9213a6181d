"""The SnapshotStore contract, run against both real stores: SQL (SQLite) and DynamoDB Local."""

import itertools
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from projectalgo import snapshots
from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.settings import load_settings
from tests.factories import make_member, make_strategy

_tables = itertools.count(1)


@pytest.fixture(params=["sql", "dynamodb"])
def store_and_strategies(request, engine):
    """A store, and three strategies (the first two on one brokerage account) for its snapshots."""
    member = make_member(engine)
    ids = [
        make_strategy(engine, member, name="A", account="Shared")[0],
        make_strategy(engine, member, name="B", account="Shared")[0],
        make_strategy(engine, member, name="C", account="Own")[0],
    ]
    if request.param == "sql":
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
    assert store.put(precise) == precise
    assert store.latest(a) == precise
    assert store.latest(b) is None


def test_two_snapshots_in_the_same_millisecond_are_both_kept(store_and_strategies):
    store, (a, _, _) = store_and_strategies
    first = store.put(snap(a, 1_700_000_000_000, wallet="1"))
    second = store.put(snap(a, 1_700_000_000_000, wallet="2"))
    third = store.put(snap(a, 1_700_000_000_000, wallet="3"))
    assert [first.at_ms, second.at_ms, third.at_ms] == [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002]
    page = store.between(a, 0, 2_000_000_000_000)
    assert [s.wallet_balance for s in page.items] == [1, 2, 3]
    assert store.latest(a).wallet_balance == 3


def test_ranges_are_ascending_half_open_and_paged(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    start = 1_700_000_000_000
    for n in range(25):
        store.put(snap(a, start + n * 1000, wallet=str(n)))
    store.put(snap(b, start + 5000))  # another strategy's snapshot never leaks in
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


def test_the_newest_snapshot_stands_for_each_account(store_and_strategies):
    store, (a, b, c) = store_and_strategies
    store.put(snap(a, 1_000_000_000_000, wallet="10", account_id=1))
    store.put(snap(b, 1_000_000_001_000, wallet="12", account_id=1))
    store.put(snap(c, 1_000_000_000_500, wallet="7", account_id=2))
    newest = snapshots.latest_per_account(store, [a, b, c])
    assert {account: s.wallet_balance for account, s in newest.items()} == {1: 12, 2: 7}


def test_concurrent_puts_at_the_same_millisecond_all_land_once(store_and_strategies):
    store, (a, b, _) = store_and_strategies

    def put_many(worker):
        return [store.put(snap(a if n % 2 else b, 1_700_000_000_000, wallet=f"{worker}.{n}")) for n in range(10)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        stored = [s for batch in pool.map(put_many, range(16)) for s in batch]
    for strategy_id in (a, b):
        kept = store.between(strategy_id, 0, 2**53).items
        assert len(kept) == 80 and len({s.at_ms for s in kept}) == 80
        assert sorted(s.wallet_balance for s in kept) == sorted(
            s.wallet_balance for s in stored if s.strategy_id == strategy_id
        )


def test_recent_snapshots_come_newest_first_before_a_time(store_and_strategies):
    store, (a, b, _) = store_and_strategies
    for n in range(5):
        store.put(snap(a, 1_700_000_000_000 + n, wallet=str(n)))
    store.put(snap(b, 1_700_000_000_003))
    assert [s.wallet_balance for s in store.recent(a, 1_700_000_000_004, limit=3)] == [3, 2, 1]
    assert store.recent(a, 1_700_000_000_000, limit=3) == []
    assert store.latest(a).wallet_balance == 4
