"""Ingestion figures for the admin page: snapshots accepted and refused (by reason) in the last hour.

Counted per minute in this process (one worker by default; with several, each counts its own share).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

WINDOW_MINUTES = 60


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
