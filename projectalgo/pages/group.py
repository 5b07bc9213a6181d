"""/group: the group's board. Every signed-in member sees the strategies their owners put on it, ranked by return
over the chosen range, with the deepest drawdown, status and last update, under the owner's alias or name; and puts
their own strategies on it or takes them off ("Your strategies"). Moderators and admins take a line off (audited).

Percentages only: the rows carry ratios as text, a status and a time (group.py builds them without any amount).
Every change is announced (a GROUP_BOARD notice): every open board, on every worker, reads the board again, each
checking its viewer still may see it; the page's minute timer reads it too (statuses age, figures follow).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar, cast

import anyio
import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import admin, charts, dashboard, flows, forms, group
from projectalgo.clock import utcnow
from projectalgo.components.layout import form_error, layout, notice
from projectalgo.components.status import ago, range_picker, status_badge, status_timer, time_zone_note
from projectalgo.components.tables import ROW_ACTION_SIZE, WHOLE_CARD, labelled_cell, stacked_table
from projectalgo.live import GROUP_BOARD, Notice, Viewer
from projectalgo.live_push import live_push
from projectalgo.members import Actor
from projectalgo.pages.dashboard import SORTABLE, StatusRow, comparison_row, sorted_rows
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from projectalgo.state import (
    AuthState,
    CurrentUser,
    MemberActionsMixin,
    event_handler,
    idle_limit,
    in_session,
    members_only,
)

T = TypeVar("T")
log = logging.getLogger("projectalgo.group")
FIGURES = group.BoardFigures()  # this worker's board figures, shared by its tabs (they all show the same)


async def announce_board_changed() -> None:
    """Tell every open board, on every worker, to read the board again. A failed announcement is logged, never the
    action's failure: the open boards catch up at their minute tick."""
    try:
        await services().broadcast.publish(Notice(GROUP_BOARD))
    except Exception:
        log.exception("group.announce_failed")


@dataclass
class BoardRow(StatusRow):
    """A board line as the page shows it (its `account` always ""): its place by the chosen range's return (0: no
    return over it) and that return."""

    rank: int = 0
    shown_return: str = "—"


@dataclass
class OwnRow:
    id: int
    name: str
    on_board: bool
    alias: str


def board_rows(lines: list[group.BoardLine], range_key: str) -> list[BoardRow]:
    """The board's lines as rows, each with its place and its return over `range_key`."""
    places, index = group.ranks(lines, range_key), list(charts.RANGES).index(range_key)
    rows = []
    for line in lines:
        row = BoardRow(line.strategy_id, line.shown_as, "", line.status, line.last_snapshot_ms)
        shown = cast(BoardRow, comparison_row(row, line.compared))  # replace() keeps the row's class
        rows.append(replace(shown, rank=places.get(line.strategy_id, 0), shown_return=shown.returns[index]))
    return rows


def sorted_board(rows: list[BoardRow], column: str, descending: bool) -> list[BoardRow]:
    """The dashboard's order (sorted_rows) on board rows, which are its StatusRows with a place."""
    return cast(list[BoardRow], sorted_rows(cast(list[StatusRow], rows), column, descending))


class GroupState(MemberActionsMixin, AuthState):
    range_key: rx.Field[str] = rx.field(charts.DEFAULT_RANGE)
    rows: rx.Field[list[BoardRow]] = rx.field(default_factory=list)
    own: rx.Field[list[OwnRow]] = rx.field(default_factory=list)
    sort_column: rx.Field[str] = rx.field(charts.DEFAULT_RANGE)  # ranked: the range's return, best first
    sort_descending: rx.Field[bool] = rx.field(True)
    saved: rx.Field[int] = rx.field(0)  # the own rows' forms' key: they show what is stored after each change

    def _watch(self, member: CurrentUser) -> None:
        live_push.watch(
            self.router.session.client_token, GroupState, [], Viewer.login(member.login_session_id), [GROUP_BOARD]
        )

    async def _read_board(self) -> None:
        """The board as it is now: who is on it from the database, their figures at most FIGURES' age old."""
        settings, now = services().settings, epoch_ms(utcnow())

        def read(session: Session) -> tuple[list[group.Entrant], dashboard.FlowRules]:
            shown = group.entrants(session)
            stale = FIGURES.stale([e.strategy_id for e in shown], now)
            return shown, flows.flow_rules(session, settings, stale)  # as the dashboard's comparison reads them

        shown, rules = await in_session(read)
        lines = await anyio.to_thread.run_sync(FIGURES.lines, services().snapshot_store, shown, rules, now, settings)
        self.rows = sorted_board(board_rows(lines, self.range_key), self.sort_column, self.sort_descending)

    async def _read_own(self, actor: Actor) -> None:
        own = await in_session(lambda session: group.own_entries(session, actor))
        self.own = [OwnRow(e.strategy_id, e.name, e.on_board, e.alias) for e in own]
        self.saved += 1

    async def _reload(self, member: CurrentUser) -> None:
        await self._read_own(member.actor)
        await self._read_board()

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        """The board watches no strategy's snapshots: its figures follow on the minute tick."""

    async def _apply_notice(self, topic: str) -> None:
        """The board changed (live push): read it again if this tab's viewer still may see it, else empty it."""
        viewer, user = self._viewer(), self._user
        if topic != GROUP_BOARD or viewer is None or user is None:
            return
        if not await in_session(lambda session: group.may_see_board(session, viewer.id, idle=idle_limit())):
            self.rows, self.own = [], []
            live_push.forget(self.router.session.client_token)
            return
        await self._read_own(user.actor)  # a moderator may have taken one of theirs off
        await self._read_board()

    @event_handler
    @members_only
    async def open_group(self, member: CurrentUser) -> EventSpec | None:
        self.error = self.notice = ""
        self._watch(member)  # before reading: a change meanwhile is read again
        await self._reload(member)
        return None

    @event_handler
    @members_only
    async def tick(self, member: CurrentUser, _shown: str = "") -> EventSpec | None:
        """The page's timer, once a minute: the board again (statuses, figures); a tab whose websocket came from
        another worker is registered here."""
        if not live_push.watching(self.router.session.client_token):
            self._watch(member)
        await self._read_board()
        return None

    @event_handler
    @members_only
    async def set_range(self, member: CurrentUser, range_key: str | list[str]) -> EventSpec | None:
        """Rank by the return over another range."""
        self.range_key = charts.range_key(range_key)
        self.sort_column, self.sort_descending = self.range_key, True
        await self._read_board()
        return None

    @event_handler
    @members_only
    async def sort_by(self, member: CurrentUser, column: str) -> EventSpec | None:
        """Order the board by a column; the same column again turns the order round."""
        if column not in SORTABLE:
            return None
        if column == self.sort_column:
            self.sort_descending = not self.sort_descending
        else:  # figures best first; names and statuses from the top of the alphabet and "live"
            self.sort_column, self.sort_descending = column, column not in ("name", "status")
        self.rows = sorted_board(self.rows, self.sort_column, self.sort_descending)
        return None

    async def _change(self, work: Callable[[Session, Actor], T], done: Callable[[T], str]) -> EventSpec | None:
        """Run one of the member's board changes (MemberActionsMixin._act: membership and rights checked on the
        server); announce it when it was made."""
        redirect = await self._act(work, done)
        if redirect is None and not self.error:
            await announce_board_changed()
        return redirect

    @event_handler
    async def join_board(self, form: dict[str, str]) -> EventSpec | None:
        return await self._change(
            lambda session, actor: group.join(session, actor, forms.form_id(form, "strategy_id"), alias=_alias(form)),
            lambda _entry: "On the board: every member now sees its returns and status (percentages only).",
        )

    @event_handler
    async def set_alias(self, form: dict[str, str]) -> EventSpec | None:
        return await self._change(
            lambda session, actor: group.set_alias(
                session, actor, forms.form_id(form, "strategy_id"), alias=_alias(form)
            ),
            lambda entry: f"Shown as {entry.alias!r}." if entry.alias else "Shown under your name.",
        )

    @event_handler
    async def leave_board(self, strategy_id: int) -> EventSpec | None:
        return await self._change(
            lambda session, actor: group.leave(session, actor, forms.parse_id(strategy_id)),
            lambda _left: "Taken off the board.",
        )

    @event_handler
    @members_only
    async def take_off(self, member: CurrentUser, form: dict[str, str]) -> EventSpec | None:
        """A moderator or admin takes a line off the board, with a reason (audited). Anyone else is refused, the
        refusal audited (a few a minute per caller at most), and sent away."""
        actor = member.actor
        if not actor.is_moderator:
            await in_session(lambda session: admin.record_refusal(session, actor, group.TAKE_OFF_ACTION, "/group"))
            self.rows, self.own = [], []
            return rx.redirect("/dashboard")
        return await self._change(
            lambda session, _actor: group.take_off(
                session,
                actor,
                forms.form_id(form, "strategy_id"),
                reason=forms.form_text(form, "reason", max_length=admin.REASON_MAX_LENGTH, label="The reason"),
            ),
            lambda _none: "Taken off the board; the change is in the audit log.",
        )


def _alias(form: object) -> str:
    return forms.form_text(form, "alias", max_length=group.ALIAS_MAX_LENGTH, label="The alias")


# The page


def sort_header(label: str | rx.Var, column: str | rx.Var) -> rx.Component:
    """A column header that sorts the board by it; the arrow shows the order."""
    arrow = rx.cond(GroupState.sort_column == column, rx.cond(GroupState.sort_descending, " ↓", " ↑"), "")
    return rx.button(label, arrow, variant="ghost", size="1", on_click=GroupState.sort_by(column), id=f"sort-{column}")


def take_off_dialog(row: ObjectVar[BoardRow]) -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button("Take off", size=ROW_ACTION_SIZE, variant="soft", color_scheme="red")),
        rx.dialog.content(
            rx.dialog.title("Take ", row.name, " off the board"),
            rx.form(
                rx.input(type="hidden", name="strategy_id", value=row.id.to_string()),
                rx.input(
                    name="reason",
                    placeholder="Reason (for the audit log)",
                    max_length=admin.REASON_MAX_LENGTH,
                    aria_label="Reason",
                ),
                rx.flex(
                    rx.dialog.close(rx.button("Cancel", type="button", variant="soft", color_scheme="gray")),
                    rx.button("Take off", type="submit", color_scheme="red"),  # the line, and this dialog, go
                    spacing="3",
                    justify="end",
                    margin_top="1em",
                ),
                on_submit=GroupState.take_off,
            ),
        ),
    )


def board_row(row: ObjectVar[BoardRow]) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.text(rx.cond(row.rank > 0, row.rank.to_string() + ". ", ""), row.name),  # type: ignore[operator]
            overflow_wrap="anywhere",
            id=f"board-name-{row.id}",
        ),
        labelled_cell("Status", status_badge(row.status), id=f"board-status-{row.id}"),
        labelled_cell(
            "Last update",
            rx.cond(row.last_snapshot_ms > 0, ago(row.last_snapshot_ms), "never"),  # type: ignore[operator]
        ),
        labelled_cell("Return", row.shown_return, id=f"board-return-{row.id}"),
        labelled_cell("Max drawdown", row.drawdown, id=f"board-drawdown-{row.id}"),
        # Empty but for moderators (an empty cell takes no room in a stacked card).
        rx.table.cell(rx.cond(AuthState.is_moderator, take_off_dialog(row)), grid_column=WHOLE_CARD),
        id=f"board-row-{row.id}",
    )


def board_table() -> rx.Component:
    headers: list[str | rx.Component] = [
        sort_header("Member", "name"),
        sort_header("Status", "status"),
        sort_header("Last update", "last"),
        sort_header(rx.Var.create("Return ") + GroupState.range_key, GroupState.range_key),
        sort_header("Max drawdown", "drawdown"),
        "",  # a moderator's take-off
    ]
    return rx.cond(
        GroupState.rows.length() > 0,
        stacked_table(headers, GroupState.rows, board_row, id_="board-table"),
        rx.text("No strategy is on the board yet.", color_scheme="gray", id="board-empty"),
    )


def own_row(row: ObjectVar[OwnRow]) -> rx.Component:
    alias = rx.input(
        name="alias",
        default_value=row.alias,
        placeholder=AuthState.user_name,
        max_length=group.ALIAS_MAX_LENGTH,
        aria_label="Alias",
        flex="1 1 12em",
    )
    hidden = rx.input(type="hidden", name="strategy_id", value=row.id.to_string())
    return rx.card(
        rx.text(row.name, weight="medium", overflow_wrap="anywhere"),
        rx.cond(
            row.on_board,
            rx.form(
                rx.flex(
                    hidden,
                    alias,
                    rx.button("Save alias", type="submit", size="2"),
                    rx.button(
                        "Take off the board",
                        type="button",
                        size="2",
                        variant="soft",
                        color_scheme="red",
                        on_click=GroupState.leave_board(row.id),
                    ),
                    spacing="2",
                    wrap="wrap",
                ),
                on_submit=GroupState.set_alias,
            ),
            rx.form(
                rx.flex(
                    hidden, alias, rx.button("Put on the board", type="submit", size="2"), spacing="2", wrap="wrap"
                ),
                on_submit=GroupState.join_board,
            ),
        ),
        key=f"own-{row.id}-{GroupState.saved}",
        id=f"own-{row.id}",
        width="100%",
    )


def own_section() -> rx.Component:
    return rx.vstack(
        rx.heading("Your strategies", size="4"),
        rx.text(
            "On the board, members see a strategy's returns and drawdown (percentages), status and last update, "
            "under the alias you give it or else your name: never an amount, an account, a token or its name.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            GroupState.own.length() > 0,
            rx.foreach(GroupState.own, own_row),
            rx.text("You have no active strategy.", color_scheme="gray"),
        ),
        width="100%",
        spacing="3",
        id="own-strategies",
    )


def group_page() -> rx.Component:
    return layout(
        rx.vstack(
            status_timer(GroupState.tick),
            rx.flex(
                rx.heading("Group board", size="7"),
                rx.spacer(),
                range_picker(GroupState.range_key, GroupState.set_range),
                width="100%",
                align="center",
                wrap="wrap",
                spacing="3",
            ),
            form_error(GroupState.error),
            notice(GroupState.notice),
            board_table(),
            rx.text(
                "Time-weighted returns on the margin balance, net of deposits and withdrawals; the max drawdown over "
                "daily closes. Figures follow the bots within a minute.",
                size="1",
                color_scheme="gray",
            ),
            own_section(),
            time_zone_note(),
            spacing="4",
            width="100%",
        )
    )
