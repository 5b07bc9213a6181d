"""/admin's share links tab (issue 16): every member's links (owner, what each shows, status), and revoking any of
them at once. Admins only: anyone else's call is refused and audited as /admin's other changes are (AdminState).
The revocation is audited (sharing.revoke) and announced, so the link's open pages stop at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from projectalgo import sharing
from projectalgo.clock import iso, utcnow
from projectalgo.components.layout import form_error, notice
from projectalgo.components.status import local_minute
from projectalgo.components.tables import labelled_cell, stacked_table
from projectalgo.members import Actor
from projectalgo.pages.admin.state import AdminState
from projectalgo.pages.share_links_section import announce_revoked, revoke_cell
from projectalgo.state import AuthState, event_handler, failure_message, in_session


@dataclass
class AdminLinkRow:
    id: int
    owner: str  # the owner's email
    shows: str  # "strategy <name> (#id)" or "portfolio"
    label: str
    prefix: str
    amounts: str
    expires_at: str
    last_viewed_at: str
    status: str


def _row(found: sharing.AdminLinkView) -> AdminLinkRow:
    link = found.link
    return AdminLinkRow(
        link.id,
        found.owner_email,
        found.shows,
        link.label,
        link.prefix,
        "shown" if link.show_amounts else "hidden",
        iso(link.expires_at),
        iso(link.last_viewed_at),
        link.status,
    )


class AdminShareLinksState(AuthState):
    links: rx.Field[list[AdminLinkRow]] = rx.field(default_factory=list)
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    async def _admin(self, action: str, target: str) -> Actor | EventSpec:
        """The signed-in admin, or the refusal (audited, as /admin's) that ends the visit of anyone else."""
        user = await self._current_user()
        actor = user.actor if user else None
        if actor is None or not actor.is_admin:
            self.links = []
            return await (await self.get_state(AdminState))._refuse(actor, action, target)
        return actor

    async def _reload(self, actor: Actor) -> None:
        now = utcnow()
        self.links = [_row(f) for f in await in_session(lambda session: sharing.all_links(session, actor, now=now))]

    @event_handler
    async def open_links(self) -> EventSpec | None:
        """The tab is shown (its on_mount)."""
        actor = await self._admin("list share links", "")
        if not isinstance(actor, Actor):
            return actor
        self.error = self.notice = ""
        await self._reload(actor)
        return None

    @event_handler
    async def revoke_link(self, link_id: int) -> EventSpec | None:
        actor = await self._admin("revoke share link", f"link {str(link_id)[:20]}")
        if not isinstance(actor, Actor):
            return actor
        now = utcnow()
        try:
            revoked = await in_session(lambda session: sharing.revoke(session, actor, link_id, now=now, as_admin=True))
        except Exception as error:  # noqa: BLE001 - failure_message logs what is not a refusal
            self.error, self.notice = failure_message(error), ""
        else:
            await announce_revoked(revoked)
            self.error, self.notice = "", "Link revoked: its open pages stop now."
        await self._reload(actor)
        return None


def _link_row(link: ObjectVar[AdminLinkRow]) -> rx.Component:
    return rx.table.row(
        labelled_cell("Owner", link.owner),
        labelled_cell("Shows", link.shows),
        labelled_cell("Label", link.label),
        labelled_cell("Link", rx.code(link.prefix, "…")),
        labelled_cell("Amounts", link.amounts),
        labelled_cell("Expires", local_minute(link.expires_at, otherwise="—")),
        labelled_cell("Last viewed", local_minute(link.last_viewed_at, otherwise="never")),
        labelled_cell("Status", link.status),
        revoke_cell(link.status, AdminShareLinksState.revoke_link(link.id)),
    )


def share_links_section() -> rx.Component:
    s = AdminShareLinksState
    return rx.vstack(
        rx.text(
            f"Every member's share links, newest first (at most {sharing.ADMIN_LISTED}). Revoking one is audited.",
            size="2",
            color_scheme="gray",
        ),
        form_error(s.error),
        notice(s.notice),
        stacked_table(
            ("Owner", "Shows", "Label", "Link", "Amounts", "Expires", "Last viewed", "Status", ""),
            s.links,
            _link_row,
            id_="admin-share-links",
            size="1",
        ),
        on_mount=s.open_links,
        width="100%",
        spacing="3",
    )
