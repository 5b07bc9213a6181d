"""The live push, as one piece: which tabs of this worker watch which strategy, pruning the closed ones, and sending
each stored snapshot the broadcast announces (live.py) to the tabs whose user may still see it.

Pages register a tab once they have checked its user may see the strategies (`live_push.watch`), and their live
state implements `_apply_snapshot`. The composition root starts it with the app (`live_push.start`). With several
workers every worker hears every snapshot (RedisBroadcast) and pushes it to the tabs whose websockets it holds; a
tab whose websocket moved to another worker is registered there again by its page's minute timer (`watching`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol, runtime_checkable

import reflex as rx
from reflex.config import get_config

from projectalgo import live
from projectalgo.db import session_scope
from projectalgo.live import Broadcast, Watchers
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot

log = logging.getLogger("projectalgo.live")
PRUNE_EVERY_SECONDS = 60


class SignedIn(Protocol):
    login_session_id: int


@runtime_checkable
class LiveTab(Protocol):
    """What a page's live state offers the push: who the tab's user is (AuthState's), and what a new snapshot
    changes."""

    _user: SignedIn | None

    def _apply_snapshot(self, snapshot: Snapshot) -> None: ...


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
        broadcast.subscribe(self.push)
        app.register_lifespan_task(broadcast.listen)
        app.register_lifespan_task(self._prune_forever)

    def watch(
        self, client_token: str, live_state: type[rx.State], strategy_ids: Iterable[int], login_session_id: int
    ) -> None:
        """The tab shows these strategies through `live_state` for that sign-in (and no longer what it showed)."""
        self.watchers.watch(client_token, live_state, strategy_ids, login_session_id)

    def forget(self, client_token: str) -> None:
        self.watchers.forget(client_token)
        self._in_order.pop(client_token, None)

    def watching(self, client_token: str) -> bool:
        """Whether this worker pushes to the tab (False after its websocket moved here from another worker)."""
        return self.watchers.watches(client_token)

    def _holds_socket(self, client_token: str) -> bool:
        """Whether this worker holds the tab's websocket. Reflex keeps sockets by token with the id of the worker
        that holds each (with Redis, records of other workers' sockets too): only this worker's count."""
        if self._app is None or self._app.event_namespace is None:
            return False
        manager = self._app.event_namespace._token_manager
        record = manager.token_to_socket.get(client_token)
        return record is not None and record.instance_id == manager.instance_id

    async def push(self, snapshot: Snapshot) -> None:
        """Send a stored snapshot to this worker's tabs showing its strategy whose user may still see it. Rights are
        checked again for every push: a sign-out, a demotion, a disabled user or an ended membership stops the
        pushes at once, whatever the tab shows. Each tab's push is queued before anything is awaited, so a tab
        gets the snapshots in the order they were announced; the pushes run on their own, so a burst for busy
        tabs never holds up the next announcement."""
        watching = self.watchers.of(snapshot.strategy_id)
        tabs = [tab for tab in watching if self._holds_socket(tab[0])]
        if len(tabs) < len(watching):
            log.debug("live.not_held strategy_id=%s tabs=%d", snapshot.strategy_id, len(watching) - len(tabs))
        if not tabs:
            return  # closed tabs: touching their state would only keep it alive
        idle = timedelta(minutes=services().settings.session_idle_minutes)

        def allowed_now() -> set[int]:
            with session_scope(services().engine) as session:
                logins = {login for _, _, login in tabs}
                return live.allowed_sessions(session, snapshot.strategy_id, logins, idle=idle)

        allowed = asyncio.ensure_future(asyncio.to_thread(allowed_now))  # one check for all the tabs
        log.debug("live.push strategy_id=%s at_ms=%s tabs=%d", snapshot.strategy_id, snapshot.at_ms, len(tabs))
        for client_token, state, login_session_id in tabs:
            in_order = self._in_order.setdefault(client_token, asyncio.Lock())
            task = asyncio.create_task(
                self._push_to_tab(in_order, allowed, client_token, state, login_session_id, snapshot)
            )
            self._pushes.add(task)
            task.add_done_callback(self._pushes.discard)
        # Not awaited here: the listener takes the next snapshot at once, instead of one per rights check's wall
        # time (bench/scale.py saw one worker's deliveries fall seconds behind on that). Each tab's pushes still
        # go one at a time in announcement order (its lock), and a failed check is each push's to log.

    async def _push_to_tab(
        self,
        in_order: asyncio.Lock,
        allowed: asyncio.Future[set[int]],
        client_token: str,
        state: type[rx.State],
        login_session_id: int,
        snapshot: Snapshot,
    ) -> None:
        assert self._app is not None  # only pushes after start
        try:
            async with in_order:  # asyncio's locks are first come, first served: the tasks' order holds
                if login_session_id not in await allowed:
                    log.debug("live.forgot tab=%s reason=not_allowed", client_token[:8])
                    self.forget(client_token)
                    return
                async with self._app.modify_state(rx.BaseStateToken(ident=client_token, cls=state)) as root:
                    tab = await root.get_state(state)
                    if not isinstance(tab, LiveTab):  # pages register their live state, which is one
                        raise TypeError(f"{state.__name__} is registered for live pushes but is not a LiveTab")
                    # The tab may have signed out or changed user since it was registered, without an event here.
                    if tab._user is None or tab._user.login_session_id != login_session_id:
                        log.debug("live.forgot tab=%s reason=signed_out", client_token[:8])
                        self.forget(client_token)
                        return
                    tab._apply_snapshot(snapshot)
            log.debug("live.pushed tab=%s at_ms=%s", client_token[:8], snapshot.at_ms)
        except Exception:
            log.exception("live.push_failed strategy_id=%s", snapshot.strategy_id)

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
                if not self.watchers.watches(client_token):
                    del self._in_order[client_token]
            if gone:
                log.info("live.forgot_closed_tabs count=%d", gone)


live_push = LivePush()
