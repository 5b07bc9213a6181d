"""SnapshotHub: where a stored snapshot is announced, so that the browsers watching it update at once.

In-process fan-out to subscribers. The live dashboard subscribes a pusher that forwards each snapshot
to the Reflex tabs allowed to see it (see the dashboard pages).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Container, Iterable
from datetime import timedelta

from sqlalchemy.orm import Session

from projectalgo import members, memberships, strategies
from projectalgo.models import Strategy, id_of
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
    """Which browser tabs show which strategies, and for which sign-in. A tab is added only after its page
    checked that its user may see them; each push checks again (allowed_sessions) before it is sent.

    In-process: with one worker (the default) every tab's websocket is here. Several workers behind Redis
    need this registry shared too (the production round). Closed tabs are dropped by `prune`, which the app
    runs every minute.
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

    def prune(self, connected: Container[str], now: float, grace_seconds: float) -> int:
        """Forget the tabs that have had no connection for `grace_seconds`: closed ones (a tab that comes back
        loads its page's state again, which registers it again). Returns how many were forgotten."""
        gone = []
        for client_token in self._by_tab:
            if client_token in connected:
                self._away_since.pop(client_token, None)
            elif now - self._away_since.setdefault(client_token, now) >= grace_seconds:
                gone.append(client_token)
        for client_token in gone:
            self.forget(client_token)
        return len(gone)
