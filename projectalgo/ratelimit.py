"""A token-bucket rate limiter, one bucket per key (e.g. per bot token).

RateLimiter keeps the buckets in this process (one worker). RedisRateLimiter keeps them in Redis, so that
several workers share each bucket: a bot spreading its posts over the workers gets the same rate as with one.
Both are a Limiter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from projectalgo.integrations.redis_client import UNAVAILABLE_ERRORS
from projectalgo.snapshots import StoreUnavailableError

log = logging.getLogger("projectalgo.ratelimit")


class Limiter(Protocol):
    def acquire(self, key: object) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds to wait before retrying."""
        ...


class RateLimiter:
    def __init__(self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_second
        self._burst = burst
        self._clock = clock
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()  # callers run in worker threads

    def acquire(self, key: object) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds to wait before retrying."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - then) * self._rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self._rate


# The bucket RateLimiter.acquire keeps, in one Redis hash (tokens, at_us) taken and put back by one script, so
# no other worker's acquire comes in between (Redis runs a script alone).
#
# The time is Redis's own (TIME), not the caller's: the workers (on one host or several) then share one clock.
# With each worker's own, a worker whose clock is behind another's would find the bucket refilled "in the
# future" and add nothing until its clock caught up, and one ahead would refill it early; time.monotonic, as
# RateLimiter uses, means nothing across processes at all. (A script that reads TIME may still write since
# Redis 5 replicates a script's effects rather than the script; Redis 7 does nothing else.) Should Redis's clock
# step back, the elapsed time counts as 0: never a negative refill.
#
# The key expires once the bucket would be full again (burst / rate), plus a second: a missing key is a full
# bucket, so an idle bot's bucket costs no memory. Numbers go back as text: Redis would truncate a Lua number
# it returns to an integer, and %.17g keeps a double exactly.
ACQUIRE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at_us')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000000 * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at_us', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return string.format('%.17g', wait)
"""
# After Redis could not be reached, acquire refuses at once for this long instead of trying again: a batch of
# posts (ingestion.py) then waits for one timeout, not one per post.
UNREACHABLE_PAUSE_SECONDS = 1.0


class RedisRateLimiter:
    """RateLimiter's token buckets in Redis (key `<prefix><key>`), shared by every worker using that Redis.

    When Redis cannot be reached, acquire raises StoreUnavailableError (503 with Retry-After: "nothing was
    stored, retry later"): a bot's snapshots wait in the bot and arrive once Redis is back, as they do when the
    store itself is down. Letting them all through instead would leave the store open to any bot's flood for as
    long as Redis is down, and Redis being down already stops the workers' shared sign-in state. Blocking (up
    to the client's timeouts, redis_client.py): call it from a worker thread.
    """

    def __init__(
        self,
        client: redis.Redis,
        rate_per_second: float,
        burst: int,
        *,
        prefix: str = "projectalgo:ratelimit:ingest:",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_second
        self._burst = burst
        self._prefix = prefix
        self._expire_ms = int(burst / rate_per_second * 1000) + 1000
        self._script = client.register_script(ACQUIRE_SCRIPT)  # EVALSHA, loaded again if Redis lost it
        self._clock = clock  # for the pause after a failure only; the buckets use Redis's clock
        self._unreachable_until = -float("inf")

    def acquire(self, key: object) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds to wait before retrying. Raises
        StoreUnavailableError when Redis cannot be reached."""
        if self._clock() < self._unreachable_until:
            raise StoreUnavailableError("the rate limits' Redis is unreachable (refusing for a moment)")
        try:
            wait = self._script(keys=[f"{self._prefix}{key}"], args=[self._rate, self._burst, self._expire_ms])
        except UNAVAILABLE_ERRORS as error:
            self._unreachable_until = self._clock() + UNREACHABLE_PAUSE_SECONDS
            log.warning("ratelimit.redis_unreachable error=%s", error)
            raise StoreUnavailableError(f"the rate limits' Redis is unreachable: {error}") from error
        return float(wait)
