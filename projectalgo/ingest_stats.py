"""Ingestion figures for the admin page: snapshots accepted and refused (by reason) in the last hour.

IngestStats counts per minute in this process (one worker). RedisIngestStats counts in Redis, so that with
several workers each one's figures are everybody's. Both are an IngestCounter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import redis

from projectalgo.integrations.redis_client import UNAVAILABLE_ERRORS

WINDOW_MINUTES = 60
log = logging.getLogger("projectalgo.ingest_stats")


class IngestCounter(Protocol):
    def count(self, outcome: str) -> None:
        """One post's outcome ("accepted", or a refusal's code); never raises."""
        ...

    def last_hour(self) -> dict[str, int]:
        """Each outcome's count over the last WINDOW_MINUTES minutes, by outcome name."""
        ...

    def close(self) -> None:
        """The server is stopping: keep what was counted (Redis: send the tally not sent yet)."""
        ...


class IngestStats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._minutes: dict[int, Counter[str]] = {}

    def count(self, outcome: str) -> None:
        minute = int(self._clock() // 60)
        if minute not in self._minutes:  # a new minute: drop the ones out of the window (once, not per post)
            for old in [m for m in self._minutes if m <= minute - WINDOW_MINUTES]:
                del self._minutes[old]
            self._minutes[minute] = Counter()
        self._minutes[minute][outcome] += 1

    def last_hour(self) -> dict[str, int]:
        since = int(self._clock() // 60) - WINDOW_MINUTES
        total: Counter[str] = Counter()
        for minute, counts in self._minutes.items():
            if minute > since:
                total.update(counts)
        return dict(sorted(total.items()))

    def close(self) -> None:
        """Nothing to send: the counts live and end with the process."""


FLUSH_EVERY_SECONDS = 1.0
# A minute's hash outlives the window by a little: the last worker to add to it sets the expiry again.
MINUTE_EXPIRY_SECONDS = (WINDOW_MINUTES + 5) * 60


class RedisIngestStats:
    """The figures in Redis: one hash per minute, `<prefix><minute>` (minutes since the epoch, UTC), an outcome's
    count in each field, added to by every worker (HINCRBY) and expiring a little after the window.

    `count` runs for every post, on the event loop: it only adds to this process's own tally, which a thread
    adds to Redis every FLUSH_EVERY_SECONDS (one round trip for them all) and `last_hour` before it reads. A
    failure to reach Redis never fails a post: it is logged (once until Redis answers again) and the tally is
    kept for the next try, minus the minutes that have left the window. `last_hour` reads the window's minutes
    in one round trip; when Redis cannot be reached it logs that and says nothing was counted ({}).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "projectalgo:ingest:",
        clock: Callable[[], float] = time.time,
        flush_every: float = FLUSH_EVERY_SECONDS,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._flush_every = flush_every
        self._pending: Counter[tuple[int, str]] = Counter()  # (minute, outcome) -> not yet added to Redis
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time: a failed one puts its tally back
        self._failing = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def count(self, outcome: str) -> None:
        with self._lock:
            self._pending[(int(self._clock() // 60), outcome)] += 1
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_regularly, name="ingest-stats", daemon=True)
                self._flusher.start()

    def _flush_regularly(self) -> None:
        while not self._stop.wait(self._flush_every):
            try:
                self.flush()
            except Exception:  # keep flushing next second: the figures must not stop for one bad write
                log.exception("ingest_stats.flush_failed")

    def flush(self) -> bool:
        """Add this process's tally to Redis; False (logged) when Redis could not be reached."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, Counter()
            if not pending:
                return True
            pipeline = self._client.pipeline(transaction=False)
            for (minute, outcome), number in pending.items():
                pipeline.hincrby(f"{self._prefix}{minute}", outcome, number)
            for minute in {minute for minute, _ in pending}:
                pipeline.expire(f"{self._prefix}{minute}", MINUTE_EXPIRY_SECONDS)
            try:
                pipeline.execute()
            except UNAVAILABLE_ERRORS as error:
                # A pipeline without a transaction may have applied part of it: counting some posts twice
                # beats losing them all, for figures.
                oldest = int(self._clock() // 60) - WINDOW_MINUTES
                with self._lock:
                    self._pending.update({key: n for key, n in pending.items() if key[0] > oldest})
                if not self._failing:
                    log.warning("ingest_stats.redis_unreachable error=%s", error)
                self._failing = True
                return False
            if self._failing:
                log.info("ingest_stats.redis_reachable")
            self._failing = False
            return True

    def last_hour(self) -> dict[str, int]:
        self.flush()
        now = int(self._clock() // 60)
        pipeline = self._client.pipeline(transaction=False)
        for minute in range(now - WINDOW_MINUTES + 1, now + 1):
            pipeline.hgetall(f"{self._prefix}{minute}")
        try:
            minutes: list[dict[bytes, bytes]] = pipeline.execute()
        except UNAVAILABLE_ERRORS as error:
            log.warning("ingest_stats.redis_unreachable reading=last_hour error=%s", error)
            return {}
        total: Counter[str] = Counter()
        for counts in minutes:
            total.update({outcome.decode(): int(number) for outcome, number in counts.items()})
        return dict(sorted(total.items()))

    def close(self) -> None:
        """Stop the flushing thread, and add what is left to Redis."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()
