"""The alerts' lease and sweep (issue 17) on real databases: the lease on SQLite and PostgreSQL, two sweepers at once
on PostgreSQL (exactly one sweeps each period; when its holder dies the other takes over after expiry), and a
silent bot's firing made once by two sweeps racing without the lease. The clock is passed in: nothing waits."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from projectalgo import alert_checks, alerts, leases
from projectalgo.db import session_scope
from projectalgo.ingest_stats import IngestStats
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.live import LocalBroadcast
from projectalgo.models import AlertDelivery, AlertFiring, Lease, Strategy
from projectalgo.settings import load_settings
from projectalgo.sweeper import LEASE, LEASE_PERIODS, Sweeper
from tests.factories import actor_of, strategy_world

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=45)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request):
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def take(engine, holder, now):
    with session_scope(engine) as session:
        return leases.take(session, "sweep", holder, ttl=TTL, now=now)


def test_a_lease_has_one_holder_until_it_expires_or_is_released(any_engine):
    assert take(any_engine, "a", T0)
    assert not take(any_engine, "b", T0 + timedelta(seconds=1))
    assert take(any_engine, "a", T0 + timedelta(seconds=30))  # renewed: until T0 + 75 s
    assert not take(any_engine, "b", T0 + timedelta(seconds=60))
    assert take(any_engine, "b", T0 + timedelta(seconds=76))  # a died: b takes it once expired
    assert not take(any_engine, "a", T0 + timedelta(seconds=77))
    with session_scope(any_engine) as session:
        leases.release(session, "sweep", "a")  # not a's: nothing
    assert not take(any_engine, "a", T0 + timedelta(seconds=78))
    with session_scope(any_engine) as session:
        leases.release(session, "sweep", "b")
    assert take(any_engine, "a", T0 + timedelta(seconds=79))


@pytest.fixture
def loop():
    """A running event loop for the in-app deliveries' notices, as the app's own."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join()
    running.close()


def silent_world(engine):
    """Alice's bot Trend, silent since T0, with a 5-minute silence rule."""
    world = strategy_world(engine)
    with session_scope(engine) as session:
        alerts.save_rule(
            session,
            actor_of(world["alice"]),
            rule_id=None,
            strategy_id=world["strategy_id"],
            kind="silence",
            threshold="5",
            notify_recovery=True,
            now=T0,
        )
        session.execute(update(Strategy).where(Strategy.id == world["strategy_id"]).values(last_snapshot_at=T0))
    return world


def sweeper(engine, settings, holder):
    return Sweeper(engine, SqlSnapshotStore(engine), settings, IngestStats(), IngestStats(), LocalBroadcast(), holder)


def at_once(calls):
    """Run the calls on threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - reported by the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_sweepers_at_once_one_sweeps_each_period_and_the_other_takes_over_after_the_holder_dies(pg_engine, loop):
    world = silent_world(pg_engine)
    settings = load_settings({"DATABASE_URL": str(pg_engine.url), "SECRET_KEY_BASE": "x" * 40})
    period = timedelta(seconds=settings.alert_sweep_seconds)
    one, two = sweeper(pg_engine, settings, "one"), sweeper(pg_engine, settings, "two")
    start = T0 + timedelta(minutes=4)
    held = []
    for n in range(6):  # the silence starts at the 5th minute, within these periods
        now = start + n * period
        results = at_once([lambda at=now: one.run_once(at, loop), lambda at=now: two.run_once(at, loop)])
        assert sorted(results, key=repr) == [False, True], results
        held.append("one" if results[0] else "two")
    assert len(set(held)) == 1  # the holder renews; the other never sweeps meanwhile
    holder, other = (one, two) if held[0] == "one" else (two, one)
    with session_scope(pg_engine) as session:
        firings = session.scalars(select(AlertFiring).where(AlertFiring.user_id == world["alice"].id)).all()
        assert [f.title for f in firings] == ["Trend has sent nothing for 5 minutes"]
        (delivery,) = session.scalars(select(AlertDelivery)).all()
        assert (delivery.channel, delivery.status) == ("app", "sent")  # delivered by the holder after its sweep
    # The holder dies after its last renewal (at `last`): the other takes over once the lease has expired.
    last = start + 5 * period
    expiry = last + LEASE_PERIODS * period
    now = last + period
    while now <= expiry:
        assert not other.run_once(now, loop)
        now += period
    assert other.run_once(now, loop)
    with session_scope(pg_engine) as session:
        assert session.get(Lease, LEASE).holder == other.holder
    assert not holder.run_once(now + period, loop)  # back from the dead: it does not sweep beside the other


def test_a_stopping_sweeper_hands_the_lease_on_at_once(engine, loop):
    settings = load_settings({"DATABASE_URL": str(engine.url), "SECRET_KEY_BASE": "x" * 40})
    one, two = sweeper(engine, settings, "one"), sweeper(engine, settings, "two")
    assert one.run_once(T0, loop) and not two.run_once(T0, loop)
    one.release()
    assert two.run_once(T0 + timedelta(seconds=1), loop)


def test_two_sweeps_racing_without_the_lease_fire_a_silent_bot_once(pg_engine):
    world = silent_world(pg_engine)
    settings = load_settings({"DATABASE_URL": str(pg_engine.url), "SECRET_KEY_BASE": "x" * 40})

    def sweep():
        with session_scope(pg_engine) as session:
            return alert_checks.sweep_silence(session, settings, T0 + timedelta(minutes=6))

    assert sorted(at_once([sweep, sweep, sweep])) == [0, 0, 1]
    with session_scope(pg_engine) as session:
        assert len(session.scalars(select(AlertFiring).where(AlertFiring.user_id == world["alice"].id)).all()) == 1
