"""RedisIngestStats on a real Redis: the ingestion figures of several workers, counted together."""

import logging
import time

import pytest

from projectalgo.ingest_stats import IngestCounter, IngestStats, RedisIngestStats
from projectalgo.integrations.redis_client import connect
from tests.support.servers import free_port

HOUR = 3600.0
START = 1_700_000_000.0 // 60 * 60  # the start of a minute


@pytest.fixture
def workers(redis_url):
    """Two workers' figures on one Redis, on one test clock; the background flush effectively off."""
    now = [START]
    pair = [RedisIngestStats(connect(redis_url), clock=lambda: now[0], flush_every=3600) for _ in range(2)]
    yield now, pair
    for stats in pair:
        stats.close()


def test_both_counters_are_ingest_counters(redis_url):
    counters: list[IngestCounter] = [IngestStats(), RedisIngestStats(connect(redis_url))]
    for counter in counters:
        counter.count("accepted")
        assert counter.last_hour() == {"accepted": 1}
        if isinstance(counter, RedisIngestStats):
            counter.close()


def test_two_workers_count_together_over_the_last_hour(workers):
    now, (one, two) = workers
    one.count("accepted")
    two.count("accepted")
    two.count("invalid_token")
    now[0] += 30 * 60
    one.count("accepted")
    two.flush()  # the other worker's tally reaches Redis (every second, on its own)
    assert one.last_hour() == two.last_hour() == {"accepted": 3, "invalid_token": 1}
    now[0] += 30 * 60  # the first minute is an hour old
    one.count("accepted")
    assert one.last_hour() == two.last_hour() == {"accepted": 2}


def test_one_hash_per_minute_that_expires_a_little_after_the_window(workers, redis_url):
    now, (one, _) = workers
    one.count("accepted")
    one.count("accepted")
    now[0] += 60
    one.count("rate_limited")
    assert one.flush()
    client = connect(redis_url)
    minute = int(START // 60)
    assert sorted(client.keys("projectalgo:ingest:*")) == [
        f"projectalgo:ingest:{minute}".encode(),
        f"projectalgo:ingest:{minute + 1}".encode(),
    ]
    assert client.hgetall(f"projectalgo:ingest:{minute}") == {b"accepted": b"2"}
    assert client.hgetall(f"projectalgo:ingest:{minute + 1}") == {b"rate_limited": b"1"}
    assert 3600 < client.ttl(f"projectalgo:ingest:{minute}") <= 65 * 60


def test_counts_reach_redis_on_their_own_within_a_second(redis_url):
    one = RedisIngestStats(connect(redis_url))
    other = RedisIngestStats(connect(redis_url))
    try:
        one.count("accepted")
        deadline = time.monotonic() + 10
        while other.last_hour() != {"accepted": 1} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.last_hour() == {"accepted": 1}
    finally:
        one.close()
        other.close()


def test_unreachable_redis_never_fails_a_count_and_the_tally_waits_for_it(redis_server, redis_url, caplog):
    stats = RedisIngestStats(connect(redis_url), flush_every=3600)
    reader = RedisIngestStats(connect(redis_url), flush_every=3600)
    try:
        redis_server.stop()
        try:
            for _ in range(3):
                stats.count("accepted")  # never raises
            with caplog.at_level(logging.WARNING, logger="projectalgo.ingest_stats"):
                assert stats.flush() is False
                assert stats.flush() is False
                assert stats.last_hour() == {}  # nothing can be read: nothing said
            warnings = [r.message for r in caplog.records if r.name == "projectalgo.ingest_stats"]
            assert len([w for w in warnings if "last_hour" not in w]) == 1  # once until Redis answers
        finally:
            redis_server.restart()
        assert stats.flush() is True
        assert reader.last_hour() == {"accepted": 3}  # kept, and counted once Redis was back
    finally:
        stats.close()
        reader.close()


def test_an_unreachable_redis_says_nothing_was_counted_rather_than_fail_the_page():
    stats = RedisIngestStats(connect(f"redis://127.0.0.1:{free_port()}/0"), flush_every=3600)
    stats.count("accepted")
    assert stats.last_hour() == {}
    stats.close()
