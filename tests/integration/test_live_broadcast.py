"""RedisBroadcast on a real Redis: every listener hears each stored snapshot, and a listener whose Redis went away
listens again once it is back."""

import asyncio
import contextlib
from decimal import Decimal

import redis

from projectalgo.live import LocalBroadcast, Notice, RedisBroadcast, share_link_topic
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot


def snapshot(at_ms: int) -> Snapshot:
    return Snapshot(1, 2, at_ms, **dict.fromkeys(NUMBER_FIELDS, Decimal("9321.50")), symbol="XBTUSD")


async def _until(condition, what: str, seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


def test_each_worker_hears_every_snapshot_exactly_as_stored_and_every_notice(redis_url):
    async def scenario() -> tuple[list[Snapshot], list[Snapshot]]:
        workers = [RedisBroadcast(redis_url), RedisBroadcast(redis_url)]
        heard: tuple[list[Snapshot], list[Snapshot]] = ([], [])
        for worker, into in zip(workers, heard, strict=True):
            worker.subscribe(lambda s, into=into: asyncio.sleep(0, into.append(s)))
        listening = [asyncio.create_task(worker.listen()) for worker in workers]
        sent = [snapshot(1), snapshot(2), Notice(share_link_topic(4)), snapshot(3), snapshot(4), snapshot(5)]
        # Published from the first worker until both listen (a channel keeps nothing for late listeners).
        while not (heard[0] and heard[1]):
            await workers[0].publish(snapshot(0))
            await asyncio.sleep(0.1)
        heard[0].clear()
        heard[1].clear()
        for s in sent:
            await workers[0].publish(s)
        await _until(lambda: len(heard[0]) == len(heard[1]) == len(sent), "not every snapshot heard")
        for task in listening:
            task.cancel()
        return heard

    first, second = asyncio.run(scenario())
    expected = [snapshot(1), snapshot(2), Notice("share-link:4"), snapshot(3), snapshot(4), snapshot(5)]
    assert first == second == expected  # in order, amounts exact, notices among the snapshots


def test_a_listener_listens_again_after_redis_restarts(redis_server, redis_url):
    async def scenario() -> list[Snapshot]:
        broadcast = RedisBroadcast(redis_url)
        heard: list[Snapshot] = []
        broadcast.subscribe(lambda s: asyncio.sleep(0, heard.append(s)))
        listening = asyncio.create_task(broadcast.listen())
        for phase in ("before", "after"):
            if phase == "after":
                await asyncio.to_thread(redis_server.restart)
            heard.clear()
            deadline = asyncio.get_running_loop().time() + 30
            while not heard:  # publish until the (re)subscribed listener hears one
                assert asyncio.get_running_loop().time() < deadline, f"nothing heard {phase} the restart"
                with contextlib.suppress(redis.RedisError):  # the publisher's pooled connection died with Redis
                    await broadcast.publish(snapshot(7))
                await asyncio.sleep(0.2)
        listening.cancel()
        return heard

    assert asyncio.run(scenario())[0] == snapshot(7)


def test_one_worker_needs_no_listener():
    heard: list[Snapshot] = []
    broadcast = LocalBroadcast()
    broadcast.subscribe(lambda s: asyncio.sleep(0, heard.append(s)))
    asyncio.run(broadcast.listen())  # returns at once
    asyncio.run(broadcast.publish(snapshot(3)))
    assert heard == [snapshot(3)]
