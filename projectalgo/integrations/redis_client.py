"""The Redis connection that several workers share things through (REFLEX_REDIS_URL, the one Reflex's state
manager uses): the bots' rate limits (ratelimit.py) and the ingestion figures (ingest_stats.py).

Short timeouts and one retry: a retry covers a pooled connection that went stale (Redis restarted); past that,
a caller that needs Redis answers "try later" quickly instead of holding a request for long.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

CONNECT_TIMEOUT_SECONDS = 1.0
TIMEOUT_SECONDS = 1.0
# Redis cannot serve now: down, unreachable, too slow, read-only after a failover, out of memory (any RedisError).
# Callers answer "try later" and log it; they never let it become a 500 or stop counting.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, TimeoutError, OSError)


def connect(url: str) -> redis.Redis:
    """A client with its own connection pool; thread-safe, so one serves a whole process."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        client_name="projectalgo",
    )
