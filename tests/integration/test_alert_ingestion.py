"""Alert rules evaluated by a real Ingestor (issue 17): posts stored in batches fire a member's rule once, a silent
bot's next post says it is back online, and a failure to evaluate the rules never fails the posts."""

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from projectalgo import alert_checks, alerts, snapshots
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.ingestion import Ingestor, Post, Stored
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import AlertFiring, Strategy
from projectalgo.ratelimit import RateLimiter
from projectalgo.settings import load_settings
from tests.factories import actor_of, make_member, make_strategy


def post(token, at_ms, **values):
    data = {name: str(value) for name, value in snapshots.EXAMPLE_DATA.items()} | values | {"created_at": at_ms}
    accepted = snapshots.validate(snapshots.read_body(json.dumps({"data": data}).encode()), utcnow())
    return Post(token, accepted, received_ms=at_ms)


async def submit_all(ingestor, posts):
    return await asyncio.gather(*(ingestor.submit(p) for p in posts), return_exceptions=True)


@pytest.fixture
def world(engine):
    member = make_member(engine, name="Alice")
    trend, token = make_strategy(engine, member, name="Trend")
    settings = load_settings({"DATABASE_URL": str(engine.url), "SECRET_KEY_BASE": "x" * 40})
    clock = [0.0]  # the ingestor's own clock, stepped by the tests: every batch is checked unless one says not
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000), lambda: clock[0], settings=settings)
    return {
        "engine": engine,
        "member": member,
        "trend": trend,
        "token": token,
        "settings": settings,
        "ingestor": ingestor,
        "clock": clock,
    }


def save(world, kind, threshold):
    with session_scope(world["engine"]) as session:
        alerts.save_rule(
            session,
            actor_of(world["member"]),
            rule_id=None,
            strategy_id=world["trend"],
            kind=kind,
            threshold=threshold,
            notify_recovery=True,
            now=utcnow(),
        )


def titles(world):
    with session_scope(world["engine"]) as session:
        return [f.title for f in session.scalars(select(AlertFiring).order_by(AlertFiring.id))]


def test_a_batch_of_posts_fires_a_balance_rule_once(world):
    save(world, "balance", "5000")
    world["clock"][0] = 100.0  # a second and more after the last check: each batch below is checked
    now_ms = snapshots.epoch_ms(utcnow())
    wallets = ["6000", "4000", "3900", "3800"]  # one batch: the newest counts
    answers = asyncio.run(
        submit_all(
            world["ingestor"], [post(world["token"], now_ms + n, wallet_balance=w) for n, w in enumerate(wallets)]
        )
    )
    assert all(isinstance(answer, Stored) for answer in answers)
    assert titles(world) == ["Trend's wallet is below $5,000.00"]
    world["clock"][0] += 1
    asyncio.run(submit_all(world["ingestor"], [post(world["token"], now_ms + 10, wallet_balance="3700")]))
    assert titles(world) == ["Trend's wallet is below $5,000.00"]  # still below: no storm


def test_rules_are_checked_once_a_second_over_every_snapshot_stored_since_and_none_is_left_unchecked(world):
    """Checking every batch cost ingestion a fifth of its rate with 1,000 rules: batches within a second wait for
    the next check, which takes them all; when the posts stop, the delayed write checks what is left."""
    save(world, "balance", "5000")
    now_ms, clock, ingestor = snapshots.epoch_ms(utcnow()), world["clock"], world["ingestor"]
    clock[0] = 100.0
    asyncio.run(submit_all(ingestor, [post(world["token"], now_ms, wallet_balance="6000")]))  # checked: fine
    clock[0] += 0.5
    asyncio.run(submit_all(ingestor, [post(world["token"], now_ms + 1, wallet_balance="4000")]))  # waits
    assert titles(world) == [] and len(ingestor._unchecked) == 1
    clock[0] += 0.6
    ingestor._write_held_back_now()  # what the delayed write does a second after the posts stopped
    assert titles(world) == ["Trend's wallet is below $5,000.00"] and ingestor._unchecked == []


def test_a_silent_bots_next_post_says_it_is_back_online(world):
    save(world, "silence", "5")
    world["clock"][0] = 100.0
    long_ago = utcnow() - timedelta(minutes=30)
    with session_scope(world["engine"]) as session:
        session.execute(update(Strategy).where(Strategy.id == world["trend"]).values(last_snapshot_at=long_ago))
        assert alert_checks.sweep_silence(session, world["settings"], utcnow()) == 1
    asyncio.run(submit_all(world["ingestor"], [post(world["token"], snapshots.epoch_ms(utcnow()))]))
    assert titles(world) == ["Trend has sent nothing for 5 minutes", "Trend is back online"]


def test_a_failure_to_evaluate_the_rules_never_fails_the_posts(world, caplog):
    save(world, "balance", "5000")
    world["clock"][0] = 100.0
    with world["engine"].begin() as connection:  # the rules' states cannot be read: evaluation fails
        connection.execute(text("ALTER TABLE alert_states RENAME TO alert_states_gone"))
    answers = asyncio.run(
        submit_all(world["ingestor"], [post(world["token"], snapshots.epoch_ms(utcnow()), wallet_balance="100")])
    )
    assert isinstance(answers[0], Stored)
    assert SqlSnapshotStore(world["engine"]).latest(world["trend"]) is not None
    assert "ingest.alerts_failed" in caplog.text
