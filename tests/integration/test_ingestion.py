"""The Ingestor on a real SQLite database: batching, and each post's own answer within a batch."""

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from projectalgo import flows, snapshots, strategies
from projectalgo.clock import utcnow
from projectalgo.db import make_engine, session_scope
from projectalgo.errors import DomainError, NotAllowedError, RateLimitedError, UnauthenticatedError, UnavailableError
from projectalgo.ingestion import Ingestor, Post, Stored
from projectalgo.integrations.redis_client import connect
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.live import LocalBroadcast
from projectalgo.models import Strategy, StrategyToken, User
from projectalgo.ratelimit import RateLimiter, RedisRateLimiter
from tests.factories import actor_of, make_member, make_strategy
from tests.support.servers import free_port

AT_MS = 1_700_000_000_000
BODY = {name: str(value) for name, value in snapshots.EXAMPLE_DATA.items()}  # numbers as numeric text, as bots may send


def post(token: str, at_ms: int | None = AT_MS, **values: str) -> Post:
    data = BODY | values | ({"created_at": at_ms} if at_ms else {})
    accepted = snapshots.validate(snapshots.read_body(json.dumps({"data": data}).encode()), utcnow())
    return Post(token, accepted, received_ms=AT_MS)


async def submit_all(ingestor: Ingestor, posts: list[Post]) -> list[Stored | Exception]:
    """Submit concurrently, as requests arriving together do; each answer or refusal, in order."""
    return await asyncio.gather(*(ingestor.submit(p) for p in posts), return_exceptions=True)


@pytest.fixture
def world(engine):
    member = make_member(engine)
    one, one_token = make_strategy(engine, member, name="One")
    two, two_token = make_strategy(engine, member, name="Two")
    return {"member": member, "one": (one, one_token), "two": (two, two_token)}


def test_posts_arriving_together_are_stored_in_batches(engine, world):
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))
    batch_sizes = []
    process = ingestor.process

    def counting(posts):
        batch_sizes.append(len(posts))
        return process(posts)

    ingestor.process = counting
    (one, one_token), (two, two_token) = world["one"], world["two"]
    sent = [post(one_token if n % 2 else two_token, AT_MS + n, wallet_balance=str(n)) for n in range(40)]
    answers = asyncio.run(submit_all(ingestor, sent))
    assert [(a.snapshot.strategy_id, a.snapshot.at_ms, a.snapshot.wallet_balance) for a in answers] == [
        (one if n % 2 else two, AT_MS + n, n) for n in range(40)
    ]
    assert sum(batch_sizes) == 40 and len(batch_sizes) < 40  # posts waiting together share a batch
    store = SqlSnapshotStore(engine)
    assert [s.wallet_balance for s in store.between(one, 0, 2 * AT_MS).items] == list(range(1, 40, 2))


def test_each_post_of_a_batch_gets_its_own_answer(engine, world):
    (one, one_token), (two, two_token) = world["one"], world["two"]
    with session_scope(engine) as session:
        revoked_id = session.scalars(select(StrategyToken.id).where(StrategyToken.strategy_id == two)).one()
        strategies.revoke_token(session, actor_of(world["member"]), revoked_id)
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(0.001, 2))  # two posts, then wait
    sent = [
        post(one_token, wallet_balance="1"),
        post("pa_live_unknown"),
        post(one_token, wallet_balance="2"),
        post(two_token),  # revoked
        post(one_token, wallet_balance="3"),  # over the limit
        post(one_token, at_ms=None, wallet_balance="4"),  # no time sent: the server's
    ]
    first, unknown, second, revoked, limited, fourth = asyncio.run(submit_all(ingestor, sent))
    assert (first.snapshot.at_ms, first.snapshot.wallet_balance) == (AT_MS, 1)
    assert (second.snapshot.at_ms, second.snapshot.wallet_balance) == (AT_MS + 1, 2)  # same ms: the next one
    assert first.owner.strategy_id == second.owner.strategy_id == one
    assert isinstance(unknown, UnauthenticatedError) and isinstance(revoked, UnauthenticatedError)
    assert unknown.code == revoked.code == "invalid_token"
    assert isinstance(limited, RateLimitedError) and limited.code == "rate_limited"
    assert limited.retry_after_seconds == 1000
    assert isinstance(fourth, RateLimitedError)  # still over the limit
    assert [s.wallet_balance for s in SqlSnapshotStore(engine).between(one, 0, 2 * AT_MS).items] == [1, 2]
    assert SqlSnapshotStore(engine).latest(two) is None


def test_use_is_recorded_with_the_batchs_last_snapshot(engine, world):
    one, one_token = world["one"]
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))
    asyncio.run(submit_all(ingestor, [post(one_token, AT_MS + n) for n in range(3)]))
    with session_scope(engine) as session:
        last_at = session.get(Strategy, one).last_snapshot_at
        assert last_at.replace(tzinfo=UTC) == datetime.fromtimestamp((AT_MS + 2) / 1000, tz=UTC)
        assert session.scalars(select(StrategyToken.last_used_at).where(StrategyToken.strategy_id == one)).one()


def test_an_unreachable_database_answers_every_post_unavailable_and_stores_nothing(engine, world, tmp_path):
    _, one_token = world["one"]
    unreachable = make_engine(f"sqlite:///{tmp_path / 'missing' / 'folder' / 'db.sqlite'}")
    ingestor = Ingestor(unreachable, SqlSnapshotStore(unreachable), RateLimiter(1000, 1000))
    answers = asyncio.run(submit_all(ingestor, [post(one_token), post(one_token, AT_MS + 1)]))
    assert all(isinstance(answer, snapshots.StoreUnavailableError) for answer in answers)
    assert all(answer.retry_after_seconds == snapshots.STORE_RETRY_AFTER_SECONDS for answer in answers)
    assert "token lookup failed" in answers[0].cause and answers[0].message == snapshots.STORE_UNAVAILABLE
    assert SqlSnapshotStore(engine).latest(world["one"][0]) is None


def test_a_post_whose_bot_hung_up_before_its_batch_is_not_stored(engine, world):
    one, one_token = world["one"]
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))

    async def scenario():
        kept = asyncio.create_task(ingestor.submit(post(one_token, AT_MS)))
        gone = asyncio.create_task(ingestor.submit(post(one_token, AT_MS + 1)))
        await asyncio.sleep(0)  # both are waiting for the batch, which has not started
        gone.cancel()
        return await kept

    assert asyncio.run(scenario()).snapshot.at_ms == AT_MS
    assert [s.at_ms for s in SqlSnapshotStore(engine).between(one, 0, 2 * AT_MS).items] == [AT_MS]


def test_a_bot_whose_owner_membership_ended_is_still_accepted(engine, world):
    """Decided (issue 12, point 13): data keeps flowing while a member renews; only the dashboard is locked.
    The member never had a membership here (make_member grants none), as after one ends."""
    one, one_token = world["one"]
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))
    (answer,) = asyncio.run(submit_all(ingestor, [post(one_token)]))
    assert isinstance(answer, Stored) and SqlSnapshotStore(engine).latest(one).at_ms == AT_MS


def test_bots_are_told_when_their_owner_is_disabled_or_their_strategy_archived(engine, world):
    """Distinct answers (issue 13): a disabled owner and an archived strategy are not a revoked token."""
    (one, one_token), (two, two_token) = world["one"], world["two"]
    with session_scope(engine) as session:
        strategies.set_strategy_archived(session, actor_of(world["member"]), two, archived=True)
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))
    (archived,) = asyncio.run(submit_all(ingestor, [post(two_token)]))
    assert isinstance(archived, NotAllowedError) and archived.code == "strategy_archived"
    with session_scope(engine) as session:
        session.execute(update(User).where(User.id == world["member"].id).values(disabled_at=utcnow()))
    (disabled,) = asyncio.run(submit_all(ingestor, [post(one_token, AT_MS + 5)]))
    assert (
        isinstance(disabled, NotAllowedError) and disabled.code == "owner_disabled" and "disabled" in disabled.message
    )
    assert SqlSnapshotStore(engine).latest(one) is None and SqlSnapshotStore(engine).latest(two) is None


def test_the_last_post_of_a_burst_is_recorded_as_the_last_snapshot(engine, world):
    """The use is written at most once a second per token; what that held back is written a second later
    (issue 13: the dashboards said "stale, 24 minutes ago" while the newest snapshot was 9 minutes old)."""
    one, one_token = world["one"]
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))

    def last_snapshot_ms() -> int | None:
        with session_scope(engine) as session:
            last = session.get(Strategy, one).last_snapshot_at
        return round(last.replace(tzinfo=UTC).timestamp() * 1000) if last else None

    async def burst() -> int | None:
        for n in range(3):  # one batch each, within the same second
            await ingestor.submit(post(one_token, AT_MS + n))
        held_back = last_snapshot_ms()
        deadline = asyncio.get_running_loop().time() + 10
        while last_snapshot_ms() != AT_MS + 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        return held_back

    assert asyncio.run(burst()) == AT_MS  # the first was written at once, the later ones held back...
    assert last_snapshot_ms() == AT_MS + 2  # ...and the newest written once its second had passed


def _body(token: str | None, **values: object) -> bytes:
    data = dict.fromkeys(snapshots.NUMBER_FIELDS, "1") | {"symbol": "XBTUSD"} | values
    return json.dumps({"data": data | ({"strategy_access_token": token} if token else {})}).encode()


def test_receiving_counts_every_outcome_and_announces_each_stored_snapshot(engine, world):
    """Whatever way a post comes in, ingestion (not the HTTP route) counts it and tells the live path."""
    one, one_token = world["one"]
    broadcast = LocalBroadcast()
    heard: list[int] = []

    async def hear(snapshot):
        heard.append(snapshot.strategy_id)

    broadcast.subscribe(hear)
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000), broadcast=broadcast)

    async def scenario():
        outcomes = []
        for raw, header in [
            (_body(one_token), None),
            (_body(None), one_token),  # the token in the header instead
            (_body(None), None),
            (b"not json", one_token),
            (_body("pa_live_unknown"), None),
            (_body(one_token, wallet_balance="lots"), None),
        ]:
            try:
                outcomes.append(await ingestor.receive(raw, header, utcnow()))
            except DomainError as refusal:
                outcomes.append(refusal.code)
        return outcomes

    stored_one, stored_two, *refused = asyncio.run(scenario())
    assert stored_one.strategy_id == stored_two.strategy_id == one
    assert refused == ["missing_token", "bad_request", "invalid_token", "invalid_snapshot"]
    assert heard == [one, one]
    assert ingestor.stats.last_hour() == {
        "accepted": 2,
        "bad_request": 1,
        "invalid_snapshot": 1,
        "invalid_token": 1,
        "missing_token": 1,
    }


def test_stopping_finishes_the_accepted_batches_then_refuses_new_posts(engine, world):
    one, one_token = world["one"]
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))

    async def scenario():
        accepted = [asyncio.create_task(ingestor.receive(_body(one_token), None, utcnow())) for _ in range(20)]
        await asyncio.sleep(0)  # all twenty are waiting for their batch
        await ingestor.stop()
        stored = [task.result() for task in accepted]  # done: stop waited for them
        with pytest.raises(UnavailableError) as refused:
            await ingestor.receive(_body(one_token), None, utcnow())
        return stored, refused.value

    stored, refused = asyncio.run(scenario())
    assert len({s.at_ms for s in stored}) == 20
    assert (refused.code, refused.retry_after_seconds) == ("stopping", 1)
    assert len(SqlSnapshotStore(engine).between(one, 0, snapshots.ALL_TIME_END_MS).items) == 20
    with session_scope(engine) as session:  # the last use, held back by the once-a-second rule, is written
        assert session.get(Strategy, one).last_snapshot_at is not None


def test_an_unreachable_shared_rate_limiter_answers_every_post_unavailable_and_stores_nothing(engine, world):
    """With several workers the limit lives in Redis: while it is down, bots are told to retry (503), never 500."""
    one, one_token = world["one"]
    closed = f"redis://127.0.0.1:{free_port()}/0"
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RedisRateLimiter(connect(closed), 1000, 1000))
    answers = asyncio.run(submit_all(ingestor, [post(one_token), post(one_token, AT_MS + 1), post("pa_live_unknown")]))
    assert [type(a) for a in answers] == [snapshots.StoreUnavailableError] * 2 + [UnauthenticatedError]
    assert SqlSnapshotStore(engine).latest(one) is None


def _flow_points(engine, strategy_id):
    with session_scope(engine) as session:
        return [(p.at_ms, p.amount, p.stated) for p in flows.flow_points(session, [strategy_id], 0, 2**53)[strategy_id]]


def test_each_stored_snapshot_keeps_its_intervals_cash_flow_found_or_stated(engine, world):
    """Issue 16: ingestion keeps the flow of the interval each snapshot ends (coarse ranges add them up): found
    from the wallet beyond realised PnL, or as the bot stated it (0: nothing moved, whatever the wallet did); a
    snapshot arriving late splits its interval, whose later half is found again."""
    one, token = world["one"]
    ingestor = Ingestor(engine, SqlSnapshotStore(engine), RateLimiter(1000, 1000))
    minute = 60_000

    def send(at_ms: int, wallet: str, realised: str = "0", **extra: str) -> None:
        [stored] = asyncio.run(
            submit_all(ingestor, [post(token, at_ms, wallet_balance=wallet, realised_pnl=realised, **extra)])
        )
        assert isinstance(stored, Stored), stored

    send(AT_MS, "1000")
    send(AT_MS + 2 * minute, "6010", "10")  # 5,000 deposited, 10 realised
    send(AT_MS + 3 * minute, "5900", "10", cash_flow="-100")  # the bot says: 100 withdrawn (10 more is a loss)
    send(AT_MS + 4 * minute, "7900", "10", cash_flow="0")  # the bot says nothing moved: it stands
    assert _flow_points(engine, one) == [
        (AT_MS + 2 * minute, Decimal(5000), False),
        (AT_MS + 3 * minute, Decimal(-100), True),
        (AT_MS + 4 * minute, Decimal(0), True),
    ]
    send(AT_MS + minute, "6000")  # late: the deposit was before it; the interval after it is only realised PnL
    assert _flow_points(engine, one) == [
        (AT_MS + minute, Decimal(5000), False),
        (AT_MS + 3 * minute, Decimal(-100), True),
        (AT_MS + 4 * minute, Decimal(0), True),
    ]


def test_a_cash_flow_that_is_not_a_number_is_refused_with_the_others_problems(engine, world):
    _, token = world["one"]
    with pytest.raises(snapshots.InvalidSnapshotError) as refused:
        post(token, cash_flow="a lot", wallet_balance="lots")
    assert refused.value.problems == [
        "wallet_balance: must be a number, got 'lots'",
        "cash_flow: must be a number, got 'a lot'",
    ]
