"""RedisRateLimiter on a real Redis: the token bucket RateLimiter keeps, shared by several workers."""

import threading
import time

import pytest
import redis

from projectalgo.ingest_stats import RedisIngestStats
from projectalgo.integrations.redis_client import connect
from projectalgo.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from projectalgo.snapshots import StoreUnavailableError
from tests.support.servers import free_port


def redis_seconds(client: redis.Redis) -> float:
    seconds, microseconds = client.time()
    return seconds + microseconds / 1e6


def test_both_limiters_are_limiters(redis_url):
    limiters: list[Limiter] = [RateLimiter(1, 1), RedisRateLimiter(connect(redis_url), 1, 1)]
    assert [limiter.acquire("k") for limiter in limiters] == [0.0, 0.0]


def test_a_burst_then_the_steady_rate_per_key(redis_url):
    limiter = RedisRateLimiter(connect(redis_url), rate_per_second=4, burst=5)
    assert [limiter.acquire(7) for _ in range(5)] == [0.0] * 5
    wait = limiter.acquire(7)
    assert 0 < wait <= 0.25  # a token every 1/4 s, less what has refilled since
    assert limiter.acquire(8) == 0.0  # another key has its own bucket
    time.sleep(wait + 0.02)
    assert limiter.acquire(7) == 0.0
    assert limiter.acquire(7) > 0
    time.sleep(5 / 4 + 0.1)  # long enough to fill the bucket, and more
    assert [limiter.acquire(7) for _ in range(5)] == [0.0] * 5  # up to the burst, not beyond
    assert limiter.acquire(7) > 0


def test_a_bucket_is_one_hash_that_expires_once_it_would_be_full_again(redis_url):
    client = connect(redis_url)
    RedisRateLimiter(client, rate_per_second=2, burst=10, prefix="test:bucket:").acquire(42)
    assert client.keys("test:bucket:*") == [b"test:bucket:42"]
    assert set(client.hgetall("test:bucket:42")) == {b"tokens", b"at_us"}
    assert float(client.hget("test:bucket:42", "tokens")) == 9
    assert 5_000 < client.pttl("test:bucket:42") <= 6_000  # 10 tokens at 2 a second, plus a second


def test_two_workers_hammering_one_bucket_never_get_more_than_it_holds(redis_url):
    """Two limiters with their own connections (two workers), eight threads each, all on one token."""
    rate, burst = 50, 30
    workers = [RedisRateLimiter(connect(redis_url), rate, burst) for _ in range(2)]
    allowed = [0, 0]
    counted = threading.Lock()
    stop = threading.Event()

    def hammer(worker: int) -> None:
        while not stop.is_set():
            if workers[worker].acquire("shared") == 0.0:
                with counted:
                    allowed[worker] += 1

    threads = [threading.Thread(target=hammer, args=(n % 2,)) for n in range(16)]
    clock = connect(redis_url)
    started = redis_seconds(clock)
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = redis_seconds(clock) - started
    assert all(allowed), f"both workers got tokens: {allowed}"
    assert burst + rate * 0.5 <= sum(allowed) <= burst + rate * elapsed + 1, (allowed, elapsed)


def test_the_script_is_loaded_again_when_redis_has_lost_it(redis_url):
    client = connect(redis_url)
    limiter = RedisRateLimiter(client, 0.01, 5)  # a token every 100 s: the test's own time refills next to none
    assert limiter.acquire("k") == 0.0
    client.script_flush()  # as a restarted Redis has no scripts
    assert limiter.acquire("k") == 0.0
    assert float(client.hget("projectalgo:ratelimit:ingest:k", "tokens")) == pytest.approx(3, abs=0.05)


def test_unreachable_redis_refuses_as_the_store_does_and_quickly():
    now = [0.0]
    limiter = RedisRateLimiter(connect(f"redis://127.0.0.1:{free_port()}/0"), 10, 5, clock=lambda: now[0])
    with pytest.raises(StoreUnavailableError) as refused:
        limiter.acquire("k")
    assert refused.value.code == "store_unavailable" and refused.value.retry_after_seconds == 5
    assert "Redis is unreachable" in refused.value.cause
    tried = []
    script = limiter._script
    limiter._script = lambda **kwargs: tried.append(kwargs) or script(**kwargs)  # counts the calls to Redis
    for _ in range(100):  # a whole batch's posts: refused without trying Redis again for a moment
        with pytest.raises(StoreUnavailableError):
            limiter.acquire("k")
    assert tried == []


def test_the_limiter_serves_again_once_redis_is_back(redis_server, redis_url):
    now = [0.0]
    limiter = RedisRateLimiter(connect(redis_url), 10, 5, clock=lambda: now[0])
    assert limiter.acquire("k") == 0.0
    redis_server.stop()
    try:
        with pytest.raises(StoreUnavailableError):
            limiter.acquire("k")
    finally:
        redis_server.restart()  # an empty Redis on the same port
    now[0] += 1.0  # the pause after the failure is over
    assert limiter.acquire("k") == 0.0  # the pooled connection to the old Redis is replaced


def test_a_redis_out_of_memory_refuses_as_unreachable_does(redis_url):
    """Redis answering with an error (here out of memory; read-only after a failover is alike) is not a 500."""
    client = connect(redis_url)
    limiter = RedisRateLimiter(client, 10, 5)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")  # every write is refused from now on
    try:
        with pytest.raises(StoreUnavailableError) as refused:
            limiter.acquire("k")
        assert refused.value.code == "store_unavailable"
        stats = RedisIngestStats(client)
        stats.count("accepted")
        assert stats.flush() is False and stats.last_hour() == {}  # kept, not raised
    finally:
        client.config_set("maxmemory", "0")
    assert stats.flush() is True and stats.last_hour() == {"accepted": 1}
