"""The live path's domain: where a stored snapshot is announced (a Broadcast), who may still receive it
(allowed_sessions), and which tabs of this worker watch which strategy (Watchers). No Reflex here: the Reflex
side (projectalgo/live_push.py) registers tabs, listens to the broadcast and pushes to the tabs.

One worker: LocalBroadcast, an in-process fan-out. Several workers: RedisBroadcast, a Redis channel every worker
listens to, so a snapshot stored by any worker reaches the tabs whose websockets each worker holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

import redis.asyncio as aioredis
from sqlalchemy.orm import Session

from projectalgo import members, memberships, strategies
from projectalgo.models import Strategy, id_of
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot

Subscriber = Callable[[Snapshot], Awaitable[None]]
log = logging.getLogger("projectalgo.live")
CHANNEL = "projectalgo:snapshots"
RECONNECT_SECONDS = (0.5, 1, 2, 5)  # waits between attempts to listen again after Redis went away
LISTEN_PING_SECONDS = 15


def encode(snapshot: Snapshot) -> str:
    """A snapshot as JSON text, its amounts as exact decimal strings."""
    return json.dumps(
        {name: str(value) if isinstance(value, Decimal) else value for name, value in asdict(snapshot).items()}
    )


def decode(text: str | bytes) -> Snapshot:
    data = json.loads(text)
    return Snapshot(
        strategy_id=data["strategy_id"],
        account_id=data["account_id"],
        at_ms=data["at_ms"],
        symbol=data["symbol"],
        **{name: Decimal(data[name]) for name in NUMBER_FIELDS},
    )


class LocalBroadcast:
    """One worker: a stored snapshot goes straight to this process's subscribers."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, snapshot: Snapshot) -> None:
        await self._deliver(snapshot)

    async def listen(self) -> None:
        """Nothing to listen to: publish delivers."""

    async def _deliver(self, snapshot: Snapshot) -> None:
        """Tell every subscriber; one failing subscriber never stops the others or the caller."""
        for subscriber in list(self._subscribers):
            try:
                await subscriber(snapshot)
            except Exception:
                log.exception("live.subscriber_failed strategy_id=%s", snapshot.strategy_id)


class RedisBroadcast(LocalBroadcast):
    """Several workers: a stored snapshot is published on a Redis channel, and each worker's `listen` (a task the
    app runs for its lifetime) hands every snapshot heard to its own subscribers. Redis pub/sub delivers at most
    once and only to listeners connected at that moment: a worker reconnecting after a Redis outage misses what
    was published meanwhile, and its tabs catch up from the store when they resync."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._publisher: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None

    async def publish(self, snapshot: Snapshot) -> None:
        loop = asyncio.get_running_loop()
        if self._publisher is None or self._publisher[0] is not loop:  # a client's connections serve one loop
            self._publisher = (loop, aioredis.from_url(self._url, socket_timeout=2, socket_connect_timeout=2))
        await self._publisher[1].publish(CHANNEL, encode(snapshot))

    async def listen(self) -> None:
        attempt = 0
        while True:
            try:
                # Pinged while idle (health_check_interval) and kept alive by TCP: a connection a failover or an
                # idle timeout dropped fails here and is opened again, instead of waiting silently forever.
                client = aioredis.from_url(
                    self._url,
                    socket_connect_timeout=2,
                    socket_keepalive=True,
                    health_check_interval=LISTEN_PING_SECONDS,
                )
                async with client, client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    log.info("live.listening channel=%s", CHANNEL)
                    attempt = 0
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_PING_SECONDS)
                        if message is not None and message["type"] == "message":
                            await self._deliver(decode(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live.listen_failed")
            await asyncio.sleep(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)])
            attempt += 1


Broadcast = LocalBroadcast  # LocalBroadcast or RedisBroadcast


def allowed_sessions(
    session: Session, strategy_id: int, login_session_ids: Collection[int], *, idle: timedelta
) -> set[int]:
    """Those login sessions whose user may see the strategy now: the sign-in still lasts, the user may view it
    (owner or admin) and has an active membership. Checked before every push: rights can end at any time."""
    strategy = session.get(Strategy, strategy_id)
    if strategy is None or not login_session_ids:
        return set()
    users = members.live_session_users(session, login_session_ids, idle=idle)
    allowed: dict[int, bool] = {}  # by user id: several tabs of one user cost one check
    for user in users.values():
        if (user_id := id_of(user)) not in allowed:
            actor = members.Actor(user_id, tuple(user.roles))
            allowed[user_id] = strategies.may_view(strategy, actor) and memberships.status(session, user).active
    return {login_id for login_id, user in users.items() if allowed[id_of(user)]}


class Watchers:
    """Which browser tabs show which strategies, and for which sign-in: this worker's registrations (each worker
    pushes to the tabs whose websockets it holds). A tab is added only after its page checked that its user may
    see them; each push checks again (allowed_sessions) before it is sent. Closed tabs are dropped by `prune`.
    """

    def __init__(self) -> None:
        self._by_strategy: dict[int, dict[str, tuple[type, int]]] = {}
        self._by_tab: dict[str, set[int]] = {}
        self._away_since: dict[str, float] = {}  # tabs seen without a connection, and since when

    def watch(self, client_token: str, state: type, strategy_ids: Iterable[int], login_session_id: int) -> None:
        """The tab now shows these strategies through `state` for that sign-in (and stops showing what it
        showed before)."""
        self.forget(client_token)
        ids = set(strategy_ids)
        self._by_tab[client_token] = ids
        for strategy_id in ids:
            self._by_strategy.setdefault(strategy_id, {})[client_token] = (state, login_session_id)

    def watches(self, client_token: str) -> bool:
        return client_token in self._by_tab

    def forget(self, client_token: str) -> None:
        self._away_since.pop(client_token, None)
        for strategy_id in self._by_tab.pop(client_token, ()):
            tabs = self._by_strategy.get(strategy_id, {})
            tabs.pop(client_token, None)
            if not tabs:
                self._by_strategy.pop(strategy_id, None)

    def of(self, strategy_id: int) -> list[tuple[str, type, int]]:
        """(client token, state class, login session id) of each tab watching the strategy."""
        return [(tab, state, login) for tab, (state, login) in self._by_strategy.get(strategy_id, {}).items()]

    def prune(self, connected: Callable[[str], bool], now: float, grace_seconds: float) -> int:
        """Forget the tabs that have had no connection here for `grace_seconds`: closed ones (a tab that comes
        back loads its page's state again, which registers it again). Returns how many were forgotten."""
        gone = []
        for client_token in self._by_tab:
            if connected(client_token):
                self._away_since.pop(client_token, None)
            elif now - self._away_since.setdefault(client_token, now) >= grace_seconds:
                gone.append(client_token)
        for client_token in gone:
            self.forget(client_token)
        return len(gone)
