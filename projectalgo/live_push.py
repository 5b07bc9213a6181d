"""The live push, as one piece: which tabs of this worker watch which strategy or topic, pruning the closed ones,
sending each stored snapshot the broadcast announces (live.py) to the tabs whose viewer may still see it, and
each notice to the tabs watching its topic.

Pages register a tab once they have checked its viewer may see the strategies (`live_push.watch`), and their live
state implements `_apply_snapshot` (and `_apply_notice` if it watches topics). The composition root starts it
with the app (`live_push.start`). With several workers every worker hears every snapshot and notice
(RedisBroadcast) and passes it to the tabs whose websockets it holds; a tab whose websocket moved to another
worker is registered there again by its page's minute timer (`watching`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from datetime import timedelta
from typing import Protocol, runtime_checkable

import reflex as rx
from reflex.config import get_config

from projectalgo import live
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.live import PAGE, Broadcast, Message, Notice, Viewer, Watchers
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot

log = logging.getLogger("projectalgo.live")
PRUNE_EVERY_SECONDS = 60


@runtime_checkable
class LiveTab(Protocol):
    """What a page's live state offers the push: whom the tab shows its page to now (None: nobody, any more), and
    what a new snapshot changes."""

    def _viewer(self) -> Viewer | None: ...

    def _apply_snapshot(self, snapshot: Snapshot) -> None: ...


@runtime_checkable
class NoticedTab(Protocol):
    """A page's state that watches topics: reads again what a notice says changed (checking its viewer's rights)."""

    async def _apply_notice(self, topic: str) -> None: ...


class LivePush:
    def __init__(self) -> None:
        self.watchers = Watchers()
        self._app: rx.App | None = None
        self._pushes: set[asyncio.Task[None]] = set()  # running pushes, kept so they are not garbage-collected
        # One push at a time per tab, in the order the snapshots came: concurrent modify_state calls on one tab's
        # state contend for its lock in Redis, and a tab's updates must keep their order (their seq).
        self._in_order: dict[str, asyncio.Lock] = {}

    def start(self, app: rx.App, broadcast: Broadcast) -> None:
        """Push what `broadcast` announces to this app's tabs, and prune closed tabs every minute."""
        self._app = app
        broadcast.subscribe(self.hear)
        app.register_lifespan_task(broadcast.listen)
        app.register_lifespan_task(self._prune_forever)

    def watch(
        self,
        client_token: str,
        live_state: type[rx.State],
        strategy_ids: Iterable[int],
        viewer: Viewer,
        topics: Iterable[str] = (),
        slot: str = PAGE,
    ) -> None:
        """The tab shows these strategies (and topics) through `live_state` for that viewer in this slot (and no
        longer what the slot showed): its page's, or a part of the layout's (live.Watchers)."""
        self.watchers.watch(client_token, live_state, strategy_ids, viewer, topics, slot)

    def forget(self, client_token: str) -> None:
        self.watchers.forget(client_token)
        self._in_order.pop(client_token, None)

    def watching(self, client_token: str, slot: str = PAGE) -> bool:
        """Whether this worker pushes to the tab's slot (False after its websocket moved here from another
        worker)."""
        return self.watchers.watches(client_token, slot)

    def _holds_socket(self, client_token: str) -> bool:
        """Whether this worker holds the tab's websocket. Reflex keeps sockets by token with the id of the worker
        that holds each (with Redis, records of other workers' sockets too): only this worker's count."""
        if self._app is None or self._app.event_namespace is None:
            return False
        manager = self._app.event_namespace._token_manager
        record = manager.token_to_socket.get(client_token)
        return record is not None and record.instance_id == manager.instance_id

    async def hear(self, message: Message) -> None:
        """What the broadcast announced: a snapshot to push, or a notice to pass on."""
        if isinstance(message, Notice):
            self._pass_on(message)
        else:
            await self.push(message)

    async def push(self, snapshot: Snapshot) -> None:
        """Send a stored snapshot to this worker's tabs showing its strategy whose viewer may still see it. Rights
        are checked again for every push: a sign-out, a demotion, a disabled user, an ended membership or a revoked
        share link stops the pushes at once, whatever the tab shows. Each tab's push is queued before anything is
        awaited, so a tab gets the snapshots in the order they were announced; the pushes run on their own, so a
        burst for busy tabs never holds up the next announcement."""
        watching = self.watchers.of(snapshot.strategy_id)
        tabs = [tab for tab in watching if self._holds_socket(tab[0])]
        if len(tabs) < len(watching):
            log.debug("live.not_held strategy_id=%s tabs=%d", snapshot.strategy_id, len(watching) - len(tabs))
        if not tabs:
            return  # closed tabs: touching their state would only keep it alive
        idle = timedelta(minutes=services().settings.session_idle_minutes)

        def allowed_now() -> set[Viewer]:
            with session_scope(services().engine) as session:
                viewers = {viewer for _, _, viewer in tabs}
                return live.allowed_viewers(session, snapshot.strategy_id, viewers, idle=idle, now=utcnow())

        allowed = asyncio.ensure_future(asyncio.to_thread(allowed_now))  # one check for all the tabs
        log.debug("live.push strategy_id=%s at_ms=%s tabs=%d", snapshot.strategy_id, snapshot.at_ms, len(tabs))
        for client_token, state, viewer in tabs:
            self._queue(client_token, self._push_to_tab(allowed, client_token, state, viewer, snapshot))
        # Not awaited here: the listener takes the next snapshot at once, instead of one per rights check's wall
        # time (bench/scale.py saw one worker's deliveries fall seconds behind on that). Each tab's pushes still
        # go one at a time in announcement order (its lock), and a failed check is each push's to log.

    def _pass_on(self, notice: Notice) -> None:
        """Hand a notice to this worker's tabs watching its topic, each in its turn with the tab's pushes."""
        for client_token, state in self.watchers.on(notice.topic):
            if self._holds_socket(client_token):
                self._queue(client_token, self._notify_tab(client_token, state, notice.topic))

    def _queue(self, client_token: str, work: Coroutine[None, None, None]) -> None:
        """Run `work` on its own, after the tab's earlier pushes and notices (one at a time per tab, in order)."""
        in_order = self._in_order.setdefault(client_token, asyncio.Lock())

        async def in_turn() -> None:
            async with in_order:  # asyncio's locks are first come, first served: the tasks' order holds
                await work

        task = asyncio.create_task(in_turn())
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    async def _push_to_tab(
        self,
        allowed: asyncio.Future[set[Viewer]],
        client_token: str,
        state: type[rx.State],
        viewer: Viewer,
        snapshot: Snapshot,
    ) -> None:
        assert self._app is not None  # only pushes after start
        try:
            if viewer not in await allowed:
                log.debug("live.forgot tab=%s reason=not_allowed", client_token[:8])
                self.forget(client_token)
                return
            async with self._app.modify_state(rx.BaseStateToken(ident=client_token, cls=state)) as root:
                tab = await root.get_state(state)
                if not isinstance(tab, LiveTab):  # pages register their live state, which is one
                    raise TypeError(f"{state.__name__} is registered for live pushes but is not a LiveTab")
                # The tab may have signed out or changed user since it was registered, without an event here.
                if tab._viewer() != viewer:
                    log.debug("live.forgot tab=%s reason=viewer_changed", client_token[:8])
                    self.forget(client_token)
                    return
                tab._apply_snapshot(snapshot)
            log.debug("live.pushed tab=%s at_ms=%s", client_token[:8], snapshot.at_ms)
        except Exception:
            log.exception("live.push_failed strategy_id=%s", snapshot.strategy_id)

    async def _notify_tab(self, client_token: str, state: type[rx.State], topic: str) -> None:
        assert self._app is not None  # only hears after start
        try:
            async with self._app.modify_state(rx.BaseStateToken(ident=client_token, cls=state)) as root:
                tab = await root.get_state(state)
                if not isinstance(tab, NoticedTab):  # pages that watch topics register a state that is one
                    raise TypeError(f"{state.__name__} watches topics but is not a NoticedTab")
                await tab._apply_notice(topic)
            log.debug("live.noticed tab=%s topic=%s", client_token[:8], topic)
        except Exception:
            log.exception("live.notice_failed topic=%s", topic)

    async def _prune_forever(self) -> None:
        """Drop the registrations of tabs whose websocket this worker has not held for longer than Reflex keeps
        a tab's state: closed tabs, and tabs gone to another worker (registered there by their next tick)."""
        while True:
            await asyncio.sleep(PRUNE_EVERY_SECONDS)
            try:
                gone = self.watchers.prune(self._holds_socket, time.monotonic(), get_config().redis_token_expiration)
            except Exception:  # keep pruning next minute
                log.exception("live.prune_failed")
                continue
            for client_token in [t for t, lock in self._in_order.items() if not lock.locked()]:
                if not self.watchers.registered(client_token):
                    del self._in_order[client_token]
            if gone:
                log.info("live.forgot_closed_tabs count=%d", gone)


live_push = LivePush()
