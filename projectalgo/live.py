"""The live path's domain: where a stored snapshot or a notice is announced (a Broadcast), who may still receive
a snapshot (allowed_viewers), and which tabs of this worker watch which strategy or topic (Watchers). No Reflex
here: the Reflex side (projectalgo/live_push.py) registers tabs, listens to the broadcast and pushes to the tabs.

A notice names a topic and carries nothing else ("the group board changed", "share link 7 was revoked"): each tab
watching the topic reads again what it shows, with its own rights checked then.

One worker: LocalBroadcast, an in-process fan-out. Several workers: RedisBroadcast, a Redis channel every worker
listens to, so what any worker announces reaches the tabs whose websockets each worker holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import redis.asyncio as aioredis
from sqlalchemy.orm import Session

from projectalgo import members, memberships, sharing, strategies
from projectalgo.models import Strategy, id_of
from projectalgo.snapshots import NUMBER_FIELDS, Snapshot


@dataclass(frozen=True)
class Notice:
    """Something changed that tabs watching `topic` show; they read it again (see the module's doc)."""

    topic: str


GROUP_BOARD = "group-board"  # a strategy joined or left the group board, or its alias changed


def alerts_topic(user_id: int) -> str:
    """The topic of one user's open tabs' bell: a firing for them was delivered in the app, or read."""
    return f"alerts:{user_id}"


def share_link_topic(link_id: int) -> str:
    """The topic of one share link's open pages (revoked, or its owner's choices changed)."""
    return f"share-link:{link_id}"


@dataclass(frozen=True)
class Viewer:
    """Whom a tab shows strategies to: a member's sign-in (LoginSession id), or a share link's visitor."""

    kind: str  # "login" or "link"
    id: int

    @classmethod
    def login(cls, login_session_id: int) -> Viewer:
        return cls("login", login_session_id)

    @classmethod
    def link(cls, share_link_id: int) -> Viewer:
        return cls("link", share_link_id)


K = TypeVar("K")
V = TypeVar("V")
Message = Snapshot | Notice
Subscriber = Callable[[Message], Awaitable[None]]
log = logging.getLogger("projectalgo.live")
CHANNEL = "projectalgo:snapshots"
RECONNECT_SECONDS = (0.5, 1, 2, 5)  # waits between attempts to listen again after Redis went away
LISTEN_PING_SECONDS = 15


def encode(message: Message) -> str:
    """A snapshot as JSON text, its amounts as exact decimal strings; a notice as its topic."""
    if isinstance(message, Notice):
        return json.dumps({"notice": message.topic})
    return json.dumps(
        {name: str(value) if isinstance(value, Decimal) else value for name, value in asdict(message).items()}
    )


def decode(text: str | bytes) -> Message:
    data = json.loads(text)
    if "notice" in data:
        return Notice(data["notice"])
    return Snapshot(
        strategy_id=data["strategy_id"],
        account_id=data["account_id"],
        at_ms=data["at_ms"],
        symbol=data["symbol"],
        **{name: Decimal(data[name]) for name in NUMBER_FIELDS},
    )


class LocalBroadcast:
    """One worker: a stored snapshot or a notice goes straight to this process's subscribers."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, message: Message) -> None:
        await self._deliver(message)

    async def listen(self) -> None:
        """Nothing to listen to: publish delivers."""

    async def _deliver(self, message: Message) -> None:
        """Tell every subscriber; one failing subscriber never stops the others or the caller."""
        for subscriber in list(self._subscribers):
            try:
                await subscriber(message)
            except Exception:
                log.exception("live.subscriber_failed message=%s", _described(message))


class RedisBroadcast(LocalBroadcast):
    """Several workers: a stored snapshot is published on a Redis channel, and each worker's `listen` (a task the
    app runs for its lifetime) hands every snapshot heard to its own subscribers. Redis pub/sub delivers at most
    once and only to listeners connected at that moment: a worker reconnecting after a Redis outage misses what
    was published meanwhile, and its tabs catch up from the store when they resync."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._publisher: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None

    async def publish(self, message: Message) -> None:
        loop = asyncio.get_running_loop()
        if self._publisher is None or self._publisher[0] is not loop:  # a client's connections serve one loop
            self._publisher = (loop, aioredis.from_url(self._url, socket_timeout=2, socket_connect_timeout=2))
        await self._publisher[1].publish(CHANNEL, encode(message))

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


def _described(message: Message) -> str:
    return f"notice:{message.topic}" if isinstance(message, Notice) else f"strategy:{message.strategy_id}"


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


def allowed_viewers(
    session: Session, strategy_id: int, viewers: Collection[Viewer], *, idle: timedelta, now: datetime
) -> set[Viewer]:
    """Those viewers who may see the strategy's snapshots now: members' sign-ins (allowed_sessions) and share
    links that still show it (sharing.links_showing: not revoked, not expired, of this strategy or its owner's
    portfolio). Checked before every push."""
    logins = {v.id for v in viewers if v.kind == "login"}
    links = {v.id for v in viewers if v.kind == "link"}
    allowed = {Viewer.login(i) for i in allowed_sessions(session, strategy_id, logins, idle=idle)} if logins else set()
    if links:
        allowed |= {Viewer.link(i) for i in sharing.links_showing(session, strategy_id, links, now=now)}
    return allowed


PAGE = "page"  # the registration slot of a tab's page; the layout's own parts (the alerts' bell) have theirs


class Watchers:
    """Which browser tabs show which strategies and topics, and for whom: this worker's registrations (each worker
    pushes to the tabs whose websockets it holds). A tab is added only after its page checked that its viewer may
    see them; each push checks again (allowed_viewers) before it is sent. Closed tabs are dropped by `prune`.

    A tab has one registration per slot: its page's (PAGE), which the next page replaces, and one for each part of
    the layout around every page (the alerts' bell), which stays as the tab goes from page to page."""

    def __init__(self) -> None:
        self._by_strategy: dict[int, dict[tuple[str, str], tuple[type, Viewer]]] = {}
        self._by_topic: dict[str, dict[tuple[str, str], type]] = {}
        self._by_tab: dict[str, dict[str, tuple[set[int], set[str]]]] = {}  # tab -> slot -> (strategies, topics)
        self._away_since: dict[str, float] = {}  # tabs seen without a connection, and since when

    def watch(
        self,
        client_token: str,
        state: type,
        strategy_ids: Iterable[int],
        viewer: Viewer,
        topics: Iterable[str] = (),
        slot: str = PAGE,
    ) -> None:
        """The tab now shows these strategies (and topics) through `state` for that viewer in this slot (and no
        longer what the slot showed before)."""
        self._forget_slot(client_token, slot)
        ids, names = set(strategy_ids), set(topics)
        self._by_tab.setdefault(client_token, {})[slot] = (ids, names)
        for strategy_id in ids:
            self._by_strategy.setdefault(strategy_id, {})[client_token, slot] = (state, viewer)
        for topic in names:
            self._by_topic.setdefault(topic, {})[client_token, slot] = state

    def watches(self, client_token: str, slot: str = PAGE) -> bool:
        return slot in self._by_tab.get(client_token, {})

    def registered(self, client_token: str) -> bool:
        """Whether the tab has a registration in any slot."""
        return client_token in self._by_tab

    def forget(self, client_token: str) -> None:
        """The tab shows nothing any more (closed, signed out): every slot's registration goes."""
        self._away_since.pop(client_token, None)
        for slot in list(self._by_tab.get(client_token, {})):
            self._forget_slot(client_token, slot)

    def _forget_slot(self, client_token: str, slot: str) -> None:
        slots = self._by_tab.get(client_token, {})
        ids, names = slots.pop(slot, (set(), set()))
        if not slots:
            self._by_tab.pop(client_token, None)
        for strategy_id in ids:
            _drop(self._by_strategy, strategy_id, (client_token, slot))
        for topic in names:
            _drop(self._by_topic, topic, (client_token, slot))

    def of(self, strategy_id: int) -> list[tuple[str, type, Viewer]]:
        """(client token, state class, viewer) of each registration watching the strategy."""
        return [(tab, state, viewer) for (tab, _), (state, viewer) in self._by_strategy.get(strategy_id, {}).items()]

    def on(self, topic: str) -> list[tuple[str, type]]:
        """(client token, state class) of each registration watching the topic."""
        return [(tab, state) for (tab, _), state in self._by_topic.get(topic, {}).items()]

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


def _drop(index: dict[K, dict[tuple[str, str], V]], key: K, registration: tuple[str, str]) -> None:
    """Take a tab's registration out of one key's entry, and the entry out when nothing is left in it."""
    tabs = index.get(key, {})
    tabs.pop(registration, None)
    if not tabs:
        index.pop(key, None)
