"""DynamoDB writes in doubt (answered "not stored", yet they may have landed) kept in the SQL database: a restart,
or another worker, deletes the ones that landed once DynamoDB answers again. On DynamoDB Local, with its answers
lost or refused through botocore's events (as tests/integration/test_snapshot_stores.py does)."""

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from sqlalchemy import func, select

from projectalgo import snapshots
from projectalgo.db import make_engine
from projectalgo.integrations.dynamodb import DynamoSnapshotStore
from projectalgo.integrations.dynamodb.in_doubt import InDoubt, SqlInDoubtLog
from projectalgo.models import InDoubtWrite
from projectalgo.runtime import build_snapshot_store, settle_left_in_doubt
from projectalgo.settings import load_settings
from projectalgo.snapshots import StoreUnavailableError
from tests.factories import make_member, make_strategy, store_one

AT_MS = 1_700_000_000_000


def snap(strategy_id, at_ms=AT_MS, wallet="100"):
    numbers = dict.fromkeys(snapshots.NUMBER_FIELDS, Decimal("1")) | {"wallet_balance": Decimal(wallet)}
    return snapshots.Snapshot(strategy_id=strategy_id, account_id=1, at_ms=at_ms, symbol="XBTUSD", **numbers)


@pytest.fixture
def table(dynamodb_local):
    """The settings of a fresh snapshot table on DynamoDB Local."""
    settings = load_settings(
        {
            "DYNAMODB_TABLE": f"in-doubt-{uuid.uuid4().hex[:12]}",
            "DYNAMODB_ENDPOINT_URL": dynamodb_local.url,
            "AWS_ACCESS_KEY": "test",
            "AWS_SECRET_KEY": "test",
        }
    )
    DynamoSnapshotStore(settings).create_table()
    return settings


@pytest.fixture
def strategy(engine):
    return make_strategy(engine, make_member(engine))[0]


def worker(table, engine):
    """One worker's store, as runtime.py builds it: its writes in doubt in the SQL database."""
    return DynamoSnapshotStore(table, in_doubt=SqlInDoubtLog(engine))


def events(store):
    return store._resource.meta.client.meta.events


def unreachable(**_kwargs):
    raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def answer_lost(**_kwargs):
    """After DynamoDB applied the write: its answer never arrives."""
    raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9")


def leave_in_doubt(store, *batch, landed=True):
    """Write a batch so that each is answered "not stored" without knowing whether it landed: the answers are
    lost (after the writes are applied, or before they are sent) and DynamoDB cannot be asked; it stays so."""
    hook = "after-call.dynamodb.PutItem" if landed else "before-call.dynamodb.PutItem"
    events(store).register(hook, answer_lost)
    events(store).register("before-call.dynamodb.GetItem", unreachable)
    events(store).register("before-call.dynamodb.DeleteItem", unreachable)
    assert all(isinstance(result, StoreUnavailableError) for result in store.put_many(list(batch)))


def stored(table, strategy_id):
    return DynamoSnapshotStore(table).between(strategy_id, 0, 2**53).items


def in_doubt_rows(engine):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(InDoubtWrite)).scalar_one()


def test_a_write_left_in_doubt_is_settled_by_the_next_run_once_dynamodb_answers(table, engine, strategy):
    first_run = worker(table, engine)
    leave_in_doubt(first_run, snap(strategy))
    assert [s.at_ms for s in stored(table, strategy)] == [AT_MS]  # it landed, answered "not stored"
    assert in_doubt_rows(engine) == 1
    del first_run  # the process ends: nothing of it but the database is left

    next_run = worker(table, engine)
    events(next_run).register("before-call.dynamodb.DeleteItem", unreachable)  # DynamoDB still down
    next_run.settle_in_background().join(timeout=30)
    assert in_doubt_rows(engine) == 1 and len(stored(table, strategy)) == 1  # kept for later
    events(next_run).unregister("before-call.dynamodb.DeleteItem", unreachable)  # DynamoDB answers again

    next_run.settle_in_background().join(timeout=30)  # what runtime.py starts the store with
    assert stored(table, strategy) == []  # a write answered "not stored" is not stored
    assert in_doubt_rows(engine) == 0


def test_the_app_settles_at_start_up_what_an_earlier_run_left_in_doubt(table, engine, strategy):
    leave_in_doubt(worker(table, engine), snap(strategy))
    settle_left_in_doubt(build_snapshot_store(table, engine))  # as each worker starts; no bot posts
    deadline = time.monotonic() + 30
    while in_doubt_rows(engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored(table, strategy) == [] and in_doubt_rows(engine) == 0


def test_a_bots_retry_on_another_worker_takes_the_millisecond_of_its_first_try(table, engine, strategy):
    one, two = worker(table, engine), worker(table, engine)
    leave_in_doubt(one, snap(strategy, wallet="7"))
    retried = store_one(two, snap(strategy, wallet="7"))  # the bot was told 503: it sends the same again
    assert retried.at_ms == AT_MS  # not AT_MS + 1 beside the first try
    assert [(s.at_ms, s.wallet_balance) for s in stored(table, strategy)] == [(AT_MS, 7)]
    assert in_doubt_rows(engine) == 0


def test_a_write_in_doubt_that_never_landed_deletes_nothing_not_even_a_later_one_at_its_key(table, engine, strategy):
    one = worker(table, engine)
    leave_in_doubt(one, snap(strategy, wallet="1"), landed=False)
    assert stored(table, strategy) == []
    other = DynamoSnapshotStore(table)  # a store that knows nothing of it (its writes in doubt in its memory)
    store_one(other, snap(strategy, wallet="2"))
    assert worker(table, engine).settle_in_doubt() == 1  # settled: the item at its key is not this write
    assert [s.wallet_balance for s in stored(table, strategy)] == [2]
    assert in_doubt_rows(engine) == 0


def test_workers_settling_the_same_writes_at_once_settle_each_once(table, engine, strategy):
    leave_in_doubt(worker(table, engine), *(snap(strategy, AT_MS + n * 10) for n in range(6)))
    assert len(stored(table, strategy)) == 6 and in_doubt_rows(engine) == 6
    workers = [worker(table, engine) for _ in range(4)]
    start = threading.Barrier(len(workers))

    def settle(store):
        start.wait()
        return store.settle_in_doubt()

    with ThreadPoolExecutor(len(workers)) as threads:
        settled = list(threads.map(settle, workers))  # raises what any of them raised
    assert sum(settled) >= 6
    assert stored(table, strategy) == [] and in_doubt_rows(engine) == 0


def test_a_write_in_doubt_the_database_cannot_record_is_kept_in_memory_until_it_can(tmp_path, engine, caplog):
    down = make_engine(f"sqlite:///{tmp_path / 'missing' / 'app.db'}")  # its folder does not exist
    log = SqlInDoubtLog(down)
    write = InDoubt(1, AT_MS, uuid.uuid4().hex)
    with caplog.at_level(logging.ERROR):
        log.record(write)  # never raises: the caller is answering "not stored" anyway
    assert any(r.message.startswith("in_doubt.record_failed") for r in caplog.records)
    with pytest.raises(StoreUnavailableError):
        log.pending()  # writing on without knowing them could store a retry beside its first try
    log._engine = engine  # the database is back
    assert log.pending() == [write]
    assert in_doubt_rows(engine) == 1  # recorded now
    log.forget(write)
    log.forget(write)  # twice is harmless
    assert log.pending() == [] and in_doubt_rows(engine) == 0
