"""Alerts (issue 17): members' rules, firings, and each rule's firing and re-arming over scripted snapshots and clock
steps, on a real SQLite database and the embedded snapshot store. The clock is passed in: nothing waits."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from projectalgo import alert_checks, alerts, flows, strategies
from projectalgo.db import session_scope
from projectalgo.errors import InvalidInputError, NotAllowedError, NotFoundError
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import AlertDelivery, AlertFiring, AlertRule, AlertState, Strategy
from projectalgo.settings import load_settings
from projectalgo.snapshots import Snapshot
from tests.factories import actor_of, make_strategy, store_one, strategy_world

D = Decimal
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    """Each test on SQLite and on PostgreSQL (the conditional writes differ by dialect)."""
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


@pytest.fixture
def world(engine):
    world = strategy_world(engine)
    world["settings"] = load_settings({"DATABASE_URL": str(engine.url), "SECRET_KEY_BASE": "x" * 40})
    world["store"] = SqlSnapshotStore(engine)
    return world


def rule(world, kind, threshold, *, strategy_id="own", recovery=True, who="alice"):
    with session_scope(world["engine"]) as session:
        return alerts.save_rule(
            session,
            actor_of(world[who]),
            rule_id=None,
            strategy_id=world["strategy_id"] if strategy_id == "own" else strategy_id,
            kind=kind,
            threshold=threshold,
            notify_recovery=recovery,
            now=T0,
        )


def post(world, at, wallet, *, margin=None, strategy_id=None):
    """Store a snapshot as ingestion does: the snapshot, its interval's flow, the alert rules, then the strategy's
    last snapshot time. Returns the firings' titles made. Realised PnL stays 0: a wallet change is a cash flow, a
    margin (equity) change beside it is profit or loss."""
    sid = strategy_id or world["strategy_id"]
    with session_scope(world["engine"]) as session:
        account_id = session.get(Strategy, sid).account_id
    snapshot = Snapshot(
        sid,
        account_id,
        ms(at),
        D(100),
        D(margin if margin is not None else wallet),
        D(wallet),
        D(0),
        D(0),
        D(0),
        "XBTUSD",
    )
    stored = store_one(world["store"], snapshot)
    with session_scope(world["engine"]) as session:
        flows.record_flow_points(session, world["store"], [(stored, None)], flows.tolerance(world["settings"]))
    before = firing_ids(world)
    with session_scope(world["engine"]) as session:
        alert_checks.on_stored(session, world["store"], [stored], world["settings"], at)
        session.execute(
            update(Strategy)
            .where(Strategy.id == sid, (Strategy.last_snapshot_at.is_(None)) | (Strategy.last_snapshot_at < at))
            .values(last_snapshot_at=at)
        )
    return new_titles(world, before)


def sweep(world, at):
    before = firing_ids(world)
    with session_scope(world["engine"]) as session:
        alert_checks.sweep_silence(session, world["settings"], at)
    return new_titles(world, before)


def firing_ids(world):
    with session_scope(world["engine"]) as session:
        return set(session.scalars(select(AlertFiring.id)))


def new_titles(world, before):
    with session_scope(world["engine"]) as session:
        rows = session.scalars(select(AlertFiring).where(AlertFiring.id.not_in(before)).order_by(AlertFiring.id))
        return [row.title for row in rows]


# Rules: owner only, readable refusals, bounds


def test_a_member_creates_edits_pauses_and_deletes_their_rules(world):
    alice = actor_of(world["alice"])
    created = rule(world, "silence", " 15 ")
    assert (created.kind, created.threshold, created.strategy_name, created.paused) == ("silence", "15", "Trend", False)
    assert created.description == "Trend: no snapshot for 15 minutes"
    everything = rule(world, "balance", "$50,000", strategy_id=None)
    assert everything.description == "All strategies: combined equity below $50,000.00"
    with session_scope(world["engine"]) as session:
        edited = alerts.save_rule(
            session,
            alice,
            rule_id=created.id,
            strategy_id=world["strategy_id"],
            kind="drawdown",
            threshold="12.50%",
            notify_recovery=False,
            now=T0 + MINUTE,
        )
        assert (edited.kind, edited.threshold, edited.description) == (
            "drawdown",
            "12.5",
            "Trend: drawdown beyond 12.5%",
        )
        assert alerts.set_paused(session, alice, created.id, True, T0).paused
        assert [view.id for view in alerts.list_rules(session, alice)] == [created.id, everything.id]
        alerts.delete_rule(session, alice, created.id)
        assert [view.id for view in alerts.list_rules(session, alice)] == [everything.id]


@pytest.mark.parametrize(
    ("kind", "threshold", "message"),
    [
        ("silence", "0", "whole number of minutes from 1 to 10,080"),
        ("silence", "10081", "whole number of minutes"),
        ("silence", "1.5", "whole number of minutes"),
        ("silence", "soon", "is not a number"),
        ("drawdown", "100", "above 0 and below 100"),
        ("drawdown", "0", "above 0 and below 100"),
        ("balance", "-5", "positive amount"),
        ("balance", "1e15", "too large"),
        ("daily_loss", "0.000000001", "at most 8 decimals"),
        ("daily_loss", "NaN", "plain number"),
        ("gossip", "1", "Pick what the alert watches"),
    ],
)
def test_bad_rules_are_refused_with_a_readable_message(world, kind, threshold, message):
    with pytest.raises(InvalidInputError, match=message):
        rule(world, kind, threshold)
    with session_scope(world["engine"]) as session:
        assert alerts.list_rules(session, actor_of(world["alice"])) == []


def test_only_the_owner_sees_and_changes_a_rule(world):
    mine = rule(world, "silence", "15")
    for intruder in ("bob", "admin"):
        actor = actor_of(world[intruder])
        with session_scope(world["engine"]) as session:
            assert alerts.list_rules(session, actor) == []
        for change in (
            lambda s, a: alerts.set_paused(s, a, mine.id, True, T0),
            lambda s, a: alerts.delete_rule(s, a, mine.id),
            lambda s, a: alerts.save_rule(
                s, a, rule_id=mine.id, strategy_id=None, kind="silence", threshold="5", notify_recovery=True, now=T0
            ),
        ):
            with pytest.raises(NotFoundError), session_scope(world["engine"]) as session:
                change(session, actor)
    with pytest.raises(NotFoundError):  # a rule on someone else's strategy
        rule(world, "silence", "15", who="bob")
    with session_scope(world["engine"]) as session:
        assert alerts.list_rules(session, actor_of(world["alice"])) == [mine]


def test_a_member_keeps_at_most_fifty_rules(world):
    for _ in range(alerts.MAX_RULES):
        rule(world, "balance", "100")
    with pytest.raises(InvalidInputError, match="50 alerts"):
        rule(world, "balance", "100")


def test_a_rule_on_an_archived_strategy_is_refused(world):
    with session_scope(world["engine"]) as session:
        strategies.set_strategy_archived(session, actor_of(world["alice"]), world["strategy_id"], archived=True)
    with pytest.raises(InvalidInputError, match="Trend is archived"):
        rule(world, "silence", "15")


# Firings, reading them, the bell


def test_a_firing_is_stored_with_a_delivery_per_channel_and_read_up_to_an_id(world):
    alice = actor_of(world["alice"])
    with session_scope(world["engine"]) as session:
        ids = [
            alerts.fire(
                session, user_id=alice.user_id, kind="test", title=f"T{n}", body="b", now=T0, settings=world["settings"]
            ).id
            for n in range(3)
        ]
        assert [d.channel for d in session.scalars(select(AlertDelivery))] == ["app"] * 3  # no SMTP, no webhook
    with session_scope(world["engine"]) as session:
        assert alerts.unread_count(session, alice.user_id) == 3
        alerts.mark_read(session, actor_of(world["bob"]), up_to_id=ids[2], now=T0)  # not Bob's: nothing
        alerts.mark_read(session, alice, up_to_id=ids[1], now=T0)
        assert alerts.unread_count(session, alice.user_id) == 1
        views = alerts.recent_firings(session, alice)
        assert [(v.title, bool(v.read_at)) for v in views] == [("T2", False), ("T1", True), ("T0", True)]
        assert [(d.channel, d.status, d.attempts, d.tries) for d in views[0].deliveries] == [("app", "pending", 0, ())]
        assert alerts.recent_firings(session, actor_of(world["bob"])) == []
        assert len(alerts.admin_recent_firings(session, actor_of(world["admin"]))) == 3
        with pytest.raises(NotAllowedError):
            alerts.admin_recent_firings(session, alice)


def test_deleting_a_rule_keeps_its_firings(world):
    made = rule(world, "balance", "1000")
    assert post(world, T0, "500") == ["Trend's wallet is below $1,000.00"]
    with session_scope(world["engine"]) as session:
        alerts.delete_rule(session, actor_of(world["alice"]), made.id)
        (firing,) = alerts.recent_firings(session, actor_of(world["alice"]))
        assert firing.rule_id is None and session.scalars(select(AlertState)).all() == []


# Each rule over scripted snapshots


def test_drawdown_fires_once_beyond_the_threshold_net_of_flows_and_rearms(world):
    rule(world, "drawdown", "10")
    assert post(world, T0, "10000") == []
    assert post(world, T0 + MINUTE, "10000", margin="9500") == []  # 5% down
    assert post(world, T0 + 2 * MINUTE, "10000", margin="8900") == ["Trend is 11.0% below its peak"]
    assert post(world, T0 + 3 * MINUTE, "10000", margin="8800") == []  # still down: no storm
    assert post(world, T0 + 4 * MINUTE, "10000", margin="9600") == []  # 4% down: re-armed
    # A withdrawal of 5,000 lowers the peak by as much: 4,600 of a 5,000 peak is 8% down, no alert.
    assert post(world, T0 + 5 * MINUTE, "5000", margin="4600") == []
    assert post(world, T0 + 6 * MINUTE, "5000", margin="4400") == ["Trend is 12.0% below its peak"]
    assert post(world, T0 + 7 * MINUTE, "5000") == []  # back at the peak
    # A deposit of 10,000 raises the peak by as much, though the equity is no new high: 14,000 of 15,000.
    assert post(world, T0 + 8 * MINUTE, "15000", margin="14000") == []
    assert post(world, T0 + 9 * MINUTE, "15000", margin="13400") == ["Trend is 10.7% below its peak"]
    with session_scope(world["engine"]) as session:
        firing = session.scalars(select(AlertFiring).order_by(AlertFiring.id.desc())).first()
    assert "$13,400.00, 10.67% below its peak of $15,000.00" in firing.body and "10%" in firing.body


def test_a_drawdown_rule_on_all_strategies_watches_each_apart(world, engine):
    other, _ = make_strategy(engine, world["alice"], name="Carry", account="Deribit")
    rule(world, "drawdown", "10", strategy_id=None)
    assert post(world, T0, "1000") == []
    assert post(world, T0, "1000", strategy_id=other) == []
    assert post(world, T0 + MINUTE, "1000", margin="850", strategy_id=other) == ["Carry is 15.0% below its peak"]
    assert post(world, T0 + MINUTE, "1000", margin="990") == []


def test_balance_fires_below_the_threshold_and_rearms_above(world):
    rule(world, "balance", "5000")
    assert post(world, T0, "6000") == []
    assert post(world, T0 + MINUTE, "4999.99") == ["Trend's wallet is below $5,000.00"]
    assert post(world, T0 + 2 * MINUTE, "4000") == []
    assert post(world, T0 + 3 * MINUTE, "5000") == []
    assert post(world, T0 + 4 * MINUTE, "4900") == ["Trend's wallet is below $5,000.00"]
    assert post(world, T0 - MINUTE, "6000") == []  # a backfilled older snapshot changes nothing


def test_combined_balance_counts_each_account_once(world, engine):
    # Trend and Scalp share BitMEX main (one wallet); Carry trades on Deribit.
    scalp, _ = make_strategy(engine, world["alice"], name="Scalp")
    carry, _ = make_strategy(engine, world["alice"], name="Carry", account="Deribit")
    post(world, T0, "3000")  # stored before the rule: read from the store when the rule first looks
    rule(world, "balance", "5000", strategy_id=None)
    below = ["Your combined equity is below $5,000.00"]
    assert post(world, T0 + MINUTE, "3000", strategy_id=scalp) == below  # BitMEX's 3,000 once, not twice
    assert post(world, T0 + 2 * MINUTE, "2500", strategy_id=carry) == []  # 5,500: re-armed
    assert post(world, T0 + 3 * MINUTE, "2400", strategy_id=scalp) == ["Your combined equity is below $5,000.00"]
    with session_scope(engine) as session:
        (state,) = session.scalars(select(AlertState)).all()
    assert state.strategy_id == 0 and len(state.data) == 2  # the two accounts' wallets, not three strategies'


def test_daily_loss_is_net_of_flows_and_rearms_the_next_day(world):
    rule(world, "daily_loss", "1000")
    assert post(world, T0, "10000") == []
    assert post(world, T0 + MINUTE, "10000", margin="9100") == []  # lost 900
    assert post(world, T0 + 2 * MINUTE, "5000", margin="4000") == []  # withdrew 5,000, lost 100 more: not beyond
    assert post(world, T0 + 3 * MINUTE, "5000", margin="3900") == ["Trend lost $1,100.00 today"]
    assert post(world, T0 + 4 * MINUTE, "5000", margin="3800") == []  # no storm
    next_day = T0 + timedelta(days=1)
    assert post(world, next_day, "5000", margin="3700") == []  # the day opens at 3,800: lost 100
    assert post(world, next_day + MINUTE, "5000", margin="2700") == ["Trend lost $1,100.00 today"]
    with session_scope(world["engine"]) as session:
        firing = session.scalars(select(AlertFiring).order_by(AlertFiring.id.desc())).first()
    assert "from $3,800.00 to $2,700.00" in firing.body


def test_a_paused_rule_is_not_evaluated_and_resumes_afresh(world):
    made = rule(world, "balance", "5000")
    with session_scope(world["engine"]) as session:
        alerts.set_paused(session, actor_of(world["alice"]), made.id, True, T0)
    assert post(world, T0, "100") == []
    with session_scope(world["engine"]) as session:
        alerts.set_paused(session, actor_of(world["alice"]), made.id, False, T0)
    assert post(world, T0 + MINUTE, "100") == ["Trend's wallet is below $5,000.00"]


# Silence: the sweep, and back online at ingestion


def test_a_stalled_bot_fires_once_after_n_minutes_and_back_online_once(world):
    rule(world, "silence", "15")
    assert sweep(world, T0) == []  # no snapshot yet: nothing to miss
    post(world, T0, "1000")
    assert sweep(world, T0 + 14 * MINUTE) == []
    assert sweep(world, T0 + 15 * MINUTE) == ["Trend has sent nothing for 15 minutes"]
    assert sweep(world, T0 + 16 * MINUTE) == []
    assert sweep(world, T0 + 600 * MINUTE) == []  # still silent: no storm
    assert post(world, T0 + 601 * MINUTE, "1000") == ["Trend is back online"]
    assert post(world, T0 + 602 * MINUTE, "1000") == []
    assert sweep(world, T0 + 610 * MINUTE) == []
    assert sweep(world, T0 + 617 * MINUTE) == ["Trend has sent nothing for 15 minutes"]  # re-armed


def test_back_online_is_not_said_unless_asked_and_archived_strategies_are_not_swept(world, engine):
    rule(world, "silence", "5", recovery=False)
    post(world, T0, "1000")
    assert sweep(world, T0 + 5 * MINUTE) == ["Trend has sent nothing for 5 minutes"]
    assert post(world, T0 + 6 * MINUTE, "1000") == []
    with session_scope(engine) as session:
        strategies.set_strategy_archived(session, actor_of(world["alice"]), world["strategy_id"], archived=True)
    assert sweep(world, T0 + 60 * MINUTE) == []


def test_an_all_strategies_silence_rule_fires_per_strategy(world, engine):
    other, _ = make_strategy(engine, world["alice"], name="Carry")
    rule(world, "silence", "10", strategy_id=None)
    post(world, T0, "1000")
    post(world, T0 + 5 * MINUTE, "1000", strategy_id=other)
    assert sweep(world, T0 + 10 * MINUTE) == ["Trend has sent nothing for 10 minutes"]
    assert sweep(world, T0 + 15 * MINUTE) == ["Carry has sent nothing for 10 minutes"]


# System alerts to admins


def system(world, at, conditions):
    before = firing_ids(world)
    with session_scope(world["engine"]) as session:
        alert_checks.sweep_system(session, world["settings"], at, conditions)
    with session_scope(world["engine"]) as session:
        rows = session.scalars(select(AlertFiring).where(AlertFiring.id.not_in(before)).order_by(AlertFiring.id))
        return [(row.user_id, row.title, row.body) for row in rows]


def silent(world, at):
    with session_scope(world["engine"]) as session:
        return alert_checks.silent_bots(session, world["settings"], at)


def test_admins_hear_of_each_bot_going_silent_once_and_again_after_it_returns(world, engine):
    admin = world["admin"].id
    post(world, T0, "1000")
    offline = timedelta(minutes=world["settings"].offline_after_minutes)
    assert system(world, T0 + offline, [silent(world, T0 + offline)]) == []
    later = T0 + offline + MINUTE
    [(user, title, body)] = system(world, later, [silent(world, later)])
    assert (user, title) == (admin, "1 bot(s) of the group went silent") and "Alice's Trend: nothing since" in body
    assert system(world, later + MINUTE, [silent(world, later + MINUTE)]) == []  # once
    post(world, later + 2 * MINUTE, "1000")
    back = later + 3 * MINUTE
    assert system(world, back, [silent(world, back)]) == []  # cleared: re-armed
    gone = back + offline + MINUTE
    assert [t for _, t, _ in system(world, gone, [silent(world, gone)])] == ["1 bot(s) of the group went silent"]
    with session_scope(engine) as session:  # the hidden system rules are no member's rules
        assert alerts.list_rules(session, actor_of(world["admin"])) == []
        assert {r.kind for r in session.scalars(select(AlertRule))} == {"system"}


def test_admins_hear_of_a_store_outage_once_and_again_after_it_clears(world, tmp_path):
    from projectalgo.db import make_engine

    broken = SqlSnapshotStore(make_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"))

    def store_check(store):
        return alert_checks.outage(alert_checks.SNAPSHOT_STORE, "The snapshot store", lambda: store.latest(0))

    down = system(world, T0, [store_check(broken)])
    assert [(u, t) for u, t, _ in down] == [(world["admin"].id, "The snapshot store is down")]
    assert "did not answer (StoreUnavailableError)" in down[0][2]
    assert system(world, T0 + MINUTE, [store_check(broken)]) == []
    assert system(world, T0 + 2 * MINUTE, [store_check(world["store"])]) == []
    assert len(system(world, T0 + 3 * MINUTE, [store_check(broken)])) == 1


def test_ingestion_errors_count_as_rising_past_a_floor_and_a_share():
    assert not alert_checks.ingest_errors({"accepted": 100, "error": 9}).wrong
    assert not alert_checks.ingest_errors({"accepted": 10_000, "error": 50}).wrong  # 0.5%
    assert alert_checks.ingest_errors({"accepted": 1000, "error": 5, "store_unavailable": 20}).wrong


def test_stripe_webhooks_failing_count_past_a_floor_and_refusals_only_when_none_verified():
    assert not alert_checks.stripe_webhook_failures({"recorded": 40, "unavailable": 2}).wrong
    assert set(alert_checks.stripe_webhook_failures({"recorded": 40, "unavailable": 3}).wrong) == {"unavailable"}
    assert not alert_checks.stripe_webhook_failures({"recorded": 1, "refused": 50}).wrong  # strangers' posts
    assert set(alert_checks.stripe_webhook_failures({"refused": 3}).wrong) == {"refused"}  # a wrong secret?
