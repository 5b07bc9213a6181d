"""SnapshotHub: where a stored snapshot is announced, so that the browsers watching it update at once.

In-process fan-out to subscribers. The live dashboard subscribes a pusher that forwards each snapshot
to the Reflex tabs allowed to see it (see the dashboard pages).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from projectalgo.snapshots import Snapshot

Subscriber = Callable[[Snapshot], Awaitable[None]]
log = logging.getLogger("projectalgo.live")


class SnapshotHub:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, snapshot: Snapshot) -> None:
        """Tell every subscriber; one failing subscriber never stops the others or the caller."""
        for subscriber in list(self._subscribers):
            try:
                await subscriber(snapshot)
            except Exception:
                log.exception("live.subscriber_failed strategy_id=%s", snapshot.strategy_id)
