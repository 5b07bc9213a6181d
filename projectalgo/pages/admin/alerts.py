"""/admin's alerts tab (issue 17): everyone's recent firings (members' and the admins' system alerts) with how each
delivery went, and the deliveries that gave up. Admins only: anyone else's call is refused and audited as /admin's
other calls are (AdminState). Read-only: nothing of a member's rules, channels or webhook is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import alerts, notify
from projectalgo.clock import iso
from projectalgo.components.status import local_minute
from projectalgo.components.tables import labelled_cell, stacked_table
from projectalgo.pages.admin.state import AdminState
from projectalgo.state import AuthState, event_handler, in_session


@dataclass
class AdminFiringRow:
    id: int
    user: str
    kind: str
    title: str
    created_at: str
    deliveries: str  # "app sent, webhook failed (3 tries)"


@dataclass
class FailedRow:
    id: int
    user: str  # name and email
    channel: str
    kind: str
    attempts: int
    fired_at: str
    last_attempt_at: str
    last_detail: str


def _deliveries(firing: alerts.FiringView) -> str:
    return ", ".join(
        f"{d.channel} {d.status}" + (f" ({d.attempts} tries)" if d.attempts > 1 else "") for d in firing.deliveries
    )


class AdminAlertsState(AuthState):
    firings: rx.Field[list[AdminFiringRow]] = rx.field(default_factory=list)
    failed: rx.Field[list[FailedRow]] = rx.field(default_factory=list)

    @event_handler
    async def open_alerts(self) -> EventSpec | None:
        """The tab is shown (its on_mount)."""
        user = await self._current_user()
        actor = user.actor if user else None
        if actor is None or not actor.is_admin:
            self.firings, self.failed = [], []
            return await (await self.get_state(AdminState))._refuse(actor, "list alerts", "")

        def read(session: Session) -> tuple[list[alerts.FiringView], list[notify.FailedDeliveryView]]:
            return alerts.admin_recent_firings(session, actor), notify.failed_deliveries(session, actor)

        firings, failed = await in_session(read)
        self.firings = [
            AdminFiringRow(f.id, f.user_name, f.kind, f.title, f.created_at, _deliveries(f)) for f in firings
        ]
        self.failed = [
            FailedRow(
                f.delivery_id,
                f"{f.user_name} <{f.user_email}>",
                f.channel,
                f.kind,
                f.attempts,
                iso(f.fired_at),
                iso(f.last_attempt_at),
                f.last_detail,
            )
            for f in failed
        ]
        return None


def _firing_row(firing: ObjectVar[AdminFiringRow]) -> rx.Component:
    return rx.table.row(
        labelled_cell("Fired", local_minute(firing.created_at, otherwise="—")),
        labelled_cell("For", firing.user),
        labelled_cell("Kind", firing.kind),
        labelled_cell("Alert", firing.title),
        labelled_cell("Deliveries", firing.deliveries),
    )


def _failed_row(failed: ObjectVar[FailedRow]) -> rx.Component:
    return rx.table.row(
        labelled_cell("Fired", local_minute(failed.fired_at, otherwise="—")),
        labelled_cell("For", failed.user),
        labelled_cell("Channel", failed.channel),
        labelled_cell("Kind", failed.kind),
        labelled_cell("Tries", failed.attempts),
        labelled_cell("Last try", local_minute(failed.last_attempt_at, otherwise="—")),
        labelled_cell("Result", failed.last_detail),
    )


def alerts_section() -> rx.Component:
    s = AdminAlertsState
    return rx.vstack(
        rx.heading("Failed deliveries", size="4"),
        rx.cond(
            s.failed.length() > 0,
            stacked_table(
                ("Fired", "For", "Channel", "Kind", "Tries", "Last try", "Result"),
                s.failed,
                _failed_row,
                id_="admin-failed-deliveries",
                size="1",
            ),
            rx.text("None: every delivery was sent or is still being tried.", size="2", color_scheme="gray"),
        ),
        rx.heading("Recent alerts", size="4"),
        rx.text(
            f"Everyone's, newest first (at most {alerts.ADMIN_FIRINGS_SHOWN}), with the admins' system alerts.",
            size="2",
            color_scheme="gray",
        ),
        stacked_table(
            ("Fired", "For", "Kind", "Alert", "Deliveries"),
            s.firings,
            _firing_row,
            id_="admin-alert-firings",
            size="1",
        ),
        on_mount=s.open_alerts,
        width="100%",
        spacing="3",
    )
