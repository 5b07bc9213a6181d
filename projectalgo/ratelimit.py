"""A token-bucket rate limiter, one bucket per key (e.g. per bot token)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
