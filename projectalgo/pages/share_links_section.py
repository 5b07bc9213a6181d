"""The owner's share links (issue 16): a section of the strategy page (links to that strategy) and of the dashboard
(links to the combined portfolio). Make a link (label, days, amounts or not), see it once, list and revoke them.

What the section is about comes from the tab's URL on the server at every event (a strategy's id, or the
dashboard's portfolio), and every handler checks the member owns it (sharing.py): an admin viewing someone's
strategy page sees no section, and may revoke links only on /admin. A revocation is announced (a live notice), so
the link's open pages stop at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import reflex as rx
from reflex.event import EventSpec, EventType
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import forms, sharing
from projectalgo.clock import iso, utcnow
from projectalgo.components.layout import form_error, notice
from projectalgo.components.status import local_minute
from projectalgo.components.tables import labelled_cell, stacked_table
from projectalgo.errors import NotFoundError
from projectalgo.live import Notice, share_link_topic
from projectalgo.members import Actor
from projectalgo.runtime import services
from projectalgo.state import AuthState, CurrentUser, MemberActionsMixin, event_handler, in_session

log = logging.getLogger("projectalgo.sharing")


@dataclass
class LinkRow:
    id: int
    label: str
    prefix: str
    amounts: str  # "shown" or "hidden"
    created_at: str  # ISO 8601
    expires_at: str
    last_viewed_at: str  # "" never
    status: str  # active, expired, revoked


def _row(view: sharing.LinkView) -> LinkRow:
    return LinkRow(
        view.id,
        view.label,
        view.prefix,
        "shown" if view.show_amounts else "hidden",
        iso(view.created_at),
        iso(view.expires_at),
        iso(view.last_viewed_at),
        view.status,
    )


class ShareLinksState(MemberActionsMixin, AuthState):
    links: rx.Field[list[LinkRow]] = rx.field(default_factory=list)
    mine: rx.Field[bool] = rx.field(False)  # the member owns what the page shows: the section is theirs
    # A link just made, shown to its owner until their next click; never kept longer (only its hash is stored).
    new_link: rx.Field[str] = rx.field("")

    def _scope(self) -> int | None:
        """What the page's links show, from the tab's URL: a strategy's id, or None on the dashboard (the
        portfolio)."""
        parts = self.router.url.path.strip("/").split("/")
        return forms.parse_id(parts[1]) if parts[0] == "strategies" and len(parts) == 2 else None

    async def _reload(self, member: CurrentUser) -> None:
        try:
            scope = self._scope()
        except forms.InputError:
            scope = 0  # not a strategy's id: no strategy is found for it below
        now = utcnow()
        try:
            views = await in_session(lambda session: sharing.owner_links(session, member.actor, scope, now=now))
        except NotFoundError as gone:  # someone else's strategy (an admin viewing it): no section
            self.links, self.mine, self.new_link, self.error = [], False, "", gone.message
            return
        self.links, self.mine = [_row(v) for v in views], True

    @event_handler
    async def open_links(self) -> EventSpec | None:
        """The section is shown (its on_mount)."""
        self.new_link = ""
        return await self._open()

    @event_handler
    async def create_link(self, form: dict[str, str]) -> EventSpec | None:
        self.new_link = ""
        public_url = services().settings.public_url

        def work(session: Session, actor: Actor) -> str:
            label = forms.form_text(form, "label", max_length=sharing.LABEL_MAX_LENGTH, label="The label")
            days = forms.form_number(form, "days", label="Days")
            amounts = form.get("amounts") in (True, "on", "true")
            _, token = sharing.create_link(
                session, actor, strategy_id=self._scope(), label=label, days=days, show_amounts=amounts, now=utcnow()
            )
            return token

        def show(token: str) -> None:
            self.new_link = f"{public_url}/share/{token}"

        return await self._act(work, lambda _token: "Link made: copy it now, it is shown only once.", show)

    @event_handler
    async def revoke_link(self, link_id: int) -> EventSpec | None:
        self.new_link = ""
        revoked: list[int] = []
        done = await self._act(
            lambda session, actor: sharing.revoke(session, actor, link_id, now=utcnow()),
            lambda _id: "Link revoked: its open pages stop now.",
            revoked.append,
        )
        for revoked_id in revoked:
            await announce_revoked(revoked_id)
        return done

    @event_handler
    async def dismiss_link(self) -> None:
        self.new_link = ""


async def announce_revoked(link_id: int) -> None:
    """Tell every worker's tabs showing the link that it was revoked (they read it again and empty their page).
    Should the announcement fail, the pushes stop all the same (each checks the link) and the page says so at its
    next minute tick."""
    try:
        await services().broadcast.publish(Notice(share_link_topic(link_id)))
    except Exception:
        log.exception("sharing.notice_failed link_id=%s", link_id)


def _link_row(link: ObjectVar[LinkRow]) -> rx.Component:
    return rx.table.row(
        labelled_cell("Label", rx.cond(link.label != "", link.label, "—")),
        labelled_cell("Link", rx.code(link.prefix, "…")),
        labelled_cell("Amounts", link.amounts),
        labelled_cell("Created", local_minute(link.created_at, otherwise="—")),
        labelled_cell("Expires", local_minute(link.expires_at, otherwise="—")),
        labelled_cell("Last viewed", local_minute(link.last_viewed_at, otherwise="never")),
        labelled_cell("Status", link.status),
        revoke_cell(link.status, ShareLinksState.revoke_link(link.id)),
    )


def revoke_cell(status: rx.Var[str], revoke: EventType[()]) -> rx.Component:
    """A link's Revoke button, while it is active (the owner's list and the admins' alike)."""
    return labelled_cell(
        "",
        rx.cond(status == "active", rx.button("Revoke", size="1", variant="soft", color_scheme="red", on_click=revoke)),
    )


def _new_link() -> rx.Component:
    s = ShareLinksState
    return rx.cond(
        s.new_link != "",
        rx.callout(
            rx.flex(
                rx.code(s.new_link, id="new-share-link", word_break="break-all"),
                rx.button(
                    rx.icon("copy", size=14),
                    "Copy",
                    size="1",
                    variant="soft",
                    on_click=[rx.set_clipboard(s.new_link), rx.toast("Link copied.")],
                ),
                rx.button("Done", size="1", variant="soft", on_click=s.dismiss_link),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            icon="link",
            width="100%",
        ),
    )


def share_links_section(what: str) -> rx.Component:
    """The section, for `what` the links show ("this strategy" or "your combined portfolio")."""
    s = ShareLinksState
    section = rx.cond(
        s.mine,
        rx.vstack(
            rx.heading("Share links", size="4"),
            rx.text(
                f"A read-only link to {what}'s performance, for anyone who has it (no account needed): returns and "
                "curves, amounts only if you tick it; never your name, accounts or other strategies. It shows your "
                "label. Revoking it stops its open pages at once.",
                size="1",
                color_scheme="gray",
            ),
            rx.form(
                rx.flex(
                    rx.input(
                        name="label",
                        placeholder="Label (shown on the page)",
                        max_length=sharing.LABEL_MAX_LENGTH,
                        size="1",
                        aria_label="Label",
                    ),
                    rx.input(
                        name="days",
                        type="number",
                        min=1,
                        max=sharing.MAX_DAYS,
                        default_value=str(sharing.DEFAULT_DAYS),
                        size="1",
                        width="6em",
                        aria_label="Days valid",
                        required=True,
                    ),
                    rx.text("days", size="1"),
                    rx.checkbox("Show amounts", name="amounts", size="1"),
                    rx.button("Make a link", size="1", type="submit"),
                    spacing="2",
                    wrap="wrap",
                    align="center",
                ),
                on_submit=s.create_link,
                reset_on_submit=True,
                id="share-link-form",
            ),
            form_error(s.error),
            notice(s.notice),
            _new_link(),
            rx.cond(
                s.links.length() > 0,
                stacked_table(
                    ("Label", "Link", "Amounts", "Created", "Expires", "Last viewed", "Status", ""),
                    s.links,
                    _link_row,
                    id_="share-links-table",
                    size="1",
                ),
            ),
            width="100%",
            spacing="2",
        ),
    )
    return rx.box(section, on_mount=s.open_links, width="100%")
