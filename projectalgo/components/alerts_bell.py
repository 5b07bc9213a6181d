"""The alerts' bell (issue 17), in the top bar of every signed-in page: the member's unread count, a link to /alerts,
and a dismissible notice for each new in-app firing, pushed live to every open tab of that member.

The tab's bell registers in its own live slot ("bell"), which stays as the tab goes from page to page. Its timer
reads the count on mount and once a minute, and registers the tab again when this worker does not push to it (its
websocket came from another worker). A push reads again only if the tab's sign-in still lasts and is the topic's
user's: the state holds the signed-in user's own count and firings, and is emptied with the tab (AuthState).
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import alerts, members
from projectalgo.components.status import status_timer
from projectalgo.live import Viewer, alerts_topic
from projectalgo.live_push import live_push
from projectalgo.models import id_of
from projectalgo.snapshots import Snapshot
from projectalgo.state import AuthState, CurrentUser, event_handler, idle_limit, in_session

BELL = "bell"  # the bell's live slot (the page's is live.PAGE)
TOASTS_SHOWN = 3


@dataclass
class AlertToast:
    id: int
    title: str
    body: str


class BellState(AuthState):
    unread: rx.Field[int] = rx.field(0)
    toasts: rx.Field[list[AlertToast]] = rx.field(default_factory=list)  # newest first
    # The newest firing this tab has read (None: none read yet): a newer unread one is shown as a toast.
    _newest: int | None = None

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        """The bell watches no strategy."""

    async def _read(self, user: CurrentUser) -> None:
        """The unread count again, and a toast for each unread firing newer than the tab last read."""

        def read(session: Session) -> tuple[int, list[alerts.FiringView]]:
            return alerts.unread_count(session, user.id), alerts.recent_firings(session, user.actor, limit=TOASTS_SHOWN)

        self.unread, newest = await in_session(read)
        if self._newest is not None:
            fresh = [AlertToast(f.id, f.title, f.body) for f in newest if f.id > self._newest and not f.read_at]
            if fresh:
                self.toasts = (fresh + self.toasts)[:TOASTS_SHOWN]
        self._newest = max([f.id for f in newest], default=self._newest or 0)

    def _empty(self) -> None:
        self.unread, self.toasts, self._newest = 0, [], None

    async def _apply_notice(self, topic: str) -> None:
        """A firing was delivered in the app, or read (live push): read again if the tab's sign-in still lasts and
        is that user's; else empty the bell and stop the tab's pushes."""
        user, viewer = self._user, self._viewer()
        if user is None or viewer is None or topic != alerts_topic(user.id):
            return
        still = await in_session(lambda session: members.live_session_user(session, viewer.id, idle=idle_limit()))
        if still is None or id_of(still) != user.id:
            self._empty()
            live_push.forget(self.router.session.client_token)
            return
        await self._read(user)

    @event_handler
    async def tick(self, _shown: str = "") -> EventSpec | None:
        """The bell's timer (on mount and once a minute): the count again, registering the tab for pushes when this
        worker does not push to it. Nobody signed in: an empty bell (no redirect: the page decides that)."""
        user = await self._current_user()
        if user is None:
            self._empty()
            return None
        token = self.router.session.client_token
        if not live_push.watching(token, slot=BELL):
            viewer = Viewer.login(user.login_session_id)
            live_push.watch(token, BellState, [], viewer, [alerts_topic(user.id)], slot=BELL)
        await self._read(user)
        return None

    @event_handler
    async def dismiss(self, firing_id: int) -> EventSpec | None:
        """Hide one toast (it stays unread until marked read on /alerts)."""
        self.toasts = [toast for toast in self.toasts if toast.id != firing_id]
        return None


def bell() -> rx.Component:
    """The bell with the unread count, linking to /alerts; its hidden timer loads it on every page."""
    return rx.link(
        rx.icon("bell", size=20),
        rx.cond(
            BellState.unread > 0,
            rx.badge(BellState.unread, color_scheme="red", variant="solid", radius="full", id="bell-count"),
        ),
        status_timer(BellState.tick),
        href="/alerts",
        id="bell",
        aria_label=rx.cond(BellState.unread > 0, f"Alerts: {BellState.unread} unread", "Alerts"),
        display="flex",
        align_items="center",
        gap="0.25em",
        color="inherit",
    )


def _toast(toast: ObjectVar[AlertToast]) -> rx.Component:
    return rx.callout.root(
        rx.flex(
            rx.callout.icon(rx.icon("bell")),
            rx.vstack(
                rx.text(toast.title, weight="bold", size="2"),
                rx.text(toast.body, size="2"),
                rx.link("See your alerts", href="/alerts", size="2"),
                spacing="1",
                flex="1",
                min_width="0",
                overflow_wrap="anywhere",
            ),
            rx.icon_button(
                rx.icon("x", size=14),
                size="1",
                variant="ghost",
                aria_label="Dismiss",
                on_click=BellState.dismiss(toast.id),
            ),
            spacing="2",
            align="start",
        ),
        color_scheme="amber",
        class_name="alert-toast",
        box_shadow="var(--shadow-4)",
        background_color=rx.color("amber", 2),
    )


def alert_toasts() -> rx.Component:
    """New firings, pushed live: fixed at the bottom right (across the screen's width on a phone)."""
    return rx.vstack(
        rx.foreach(BellState.toasts, _toast),
        id="alert-toasts",
        aria_live="polite",  # read out as they come, without taking the page's role="status" notices' place
        position="fixed",
        bottom="1em",
        right="1em",
        left=rx.breakpoints(initial="1em", sm="auto"),
        max_width=rx.breakpoints(initial="none", sm="24em"),
        z_index="50",
        spacing="2",
    )
