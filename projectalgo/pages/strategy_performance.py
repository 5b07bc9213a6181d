"""The performance part of a strategy page (issue 16): profit, time-weighted return, drawdown and daily PnL net of
deposits and withdrawals, the strategy beside holding its symbol, and the cash flows found, which the owner
confirms, corrects, calls no flow, or adds by hand. The figures are of the page's range (flows.py, analytics.py);
they are computed when the page loads, after a correction, and on the page's minute tick when snapshots came.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

import anyio
import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import charts, dashboard, flows, forms, strategies
from projectalgo.analytics import FlowCorrection, FlowPoint
from projectalgo.clock import utcnow
from projectalgo.components.layout import figure_card, form_error, notice
from projectalgo.components.live_chart import live_chart
from projectalgo.components.tables import labelled_cell, stacked_table
from projectalgo.errors import InvalidInputError, NotFoundError
from projectalgo.flows import FlowView
from projectalgo.members import Actor
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from projectalgo.state import AuthState, CurrentUser, MemberActionsMixin, event_handler, in_session, members_only

NO_FIGURE: dict[str, object] = {}


@dataclass(frozen=True)
class Computed:
    """Everything the section shows, built in a worker thread (figures take milliseconds to build)."""

    summary: flows.Summary
    days_figure: dict[str, object]
    returns_figure: dict[str, object]
    moved: dict[int, float]  # money moved in or out at each point: the strategy chart's drawdown is net of it


def compute(
    snapshots: list[Snapshot],
    corrections: list[FlowCorrection],
    symbol: str,
    zone: str,
    points: Sequence[FlowPoint] = (),
    *,
    coarse: bool = False,
) -> Computed:
    """The figures of the snapshots (raw, or roll-ups' if `coarse`) and flow points, their days and times in the
    viewer's zone (an IANA name, UTC until known)."""
    where = flows.viewer_zone(zone) or UTC
    figures = flows.strategy_figures(snapshots, corrections, services().settings, where, points, coarse=coarse)
    summary = flows.summary(figures, where)
    return Computed(
        summary,
        charts.daily_pnl_figure(summary.days) if summary.days else NO_FIGURE,
        charts.returns_figure(summary.curve, summary.hold, symbol) if len(summary.curve) > 1 else NO_FIGURE,
        flows.moved_at_points(figures),
    )


class StrategyPerformanceState(MemberActionsMixin, AuthState):
    profit: rx.Field[str] = rx.field("—")
    tone: rx.Field[str] = rx.field("gray")
    twr: rx.Field[str] = rx.field("—")
    deposits: rx.Field[str] = rx.field("—")
    withdrawals: rx.Field[str] = rx.field("—")
    drawdown: rx.Field[str] = rx.field("—")
    drawdown_peak: rx.Field[str] = rx.field("")
    drawdown_trough: rx.Field[str] = rx.field("")
    drawdown_recovered: rx.Field[str] = rx.field("")
    best_day: rx.Field[str] = rx.field("—")
    worst_day: rx.Field[str] = rx.field("—")
    winning_days: rx.Field[str] = rx.field("—")
    sharpe: rx.Field[str] = rx.field("—")
    days_figure: rx.Field[dict] = rx.field(default_factory=dict)
    returns_figure: rx.Field[dict] = rx.field(default_factory=dict)
    flows: rx.Field[list[FlowView]] = rx.field(default_factory=list)
    owner: rx.Field[bool] = rx.field(False)  # the viewer owns the strategy: only the owner corrects its flows
    zone: rx.Field[str] = rx.field("UTC")  # the browser's time zone (IANA name), once it has said it
    _strategy_id: int = 0
    _range_key: str = charts.DEFAULT_RANGE
    _symbol: str = ""
    # What the page lists, kept on the server (at_ms -> the row): a correction takes what was found and its
    # interval from here, never from the browser.
    _listed: dict[int, FlowView] = {}

    def _show(self, computed: Computed, strategy_id: int, range_key: str, symbol: str, owner: bool) -> None:
        s = computed.summary
        self._strategy_id, self._range_key, self._symbol, self.owner = strategy_id, range_key, symbol, owner
        self.profit, self.tone, self.twr, self.deposits, self.withdrawals = (
            s.profit,
            s.tone,
            s.twr,
            s.deposits,
            s.withdrawals,
        )
        self.drawdown, self.drawdown_peak, self.drawdown_trough, self.drawdown_recovered = (
            s.drawdown,
            s.drawdown_peak,
            s.drawdown_trough,
            s.drawdown_recovered,
        )
        self.best_day, self.worst_day, self.winning_days, self.sharpe = (
            s.best_day,
            s.worst_day,
            s.winning_days,
            s.sharpe,
        )
        self.days_figure, self.returns_figure = computed.days_figure, computed.returns_figure
        self.flows = list(s.flows)
        self._listed = {f.at_ms: f for f in s.flows if f.source != "manual"}

    async def _reload(self, member: CurrentUser) -> None:
        """The figures again, for the range and strategy the page shows, if the member may still see it."""
        strategy_id, range_key, zone = self._strategy_id, self._range_key, self.zone
        if not strategy_id:  # the page found no strategy this member may see
            self.error = "No such strategy."
            return

        def read(session: Session) -> tuple[strategies.StrategyView, list[FlowCorrection]]:
            return strategies.get_strategy(session, member.actor, strategy_id), flows.corrections_of(
                session, strategy_id
            )

        try:
            view, corrections = await in_session(read)
        except NotFoundError as gone:
            self.reset()
            self.error = str(gone)
            return
        store, now = services().snapshot_store, epoch_ms(utcnow())

        def figures() -> Computed:
            win = dashboard.range_window(store, range_key, now, [strategy_id])
            # The figures open at the balance before the range.
            series = dashboard.opening(store, strategy_id, win) + dashboard.snapshots_in(store, strategy_id, win)
            points = flows.points_of(services().engine, strategy_id, series)
            return compute(series, corrections, view.symbol, zone, points, coarse=win.source != "raw")

        computed = await anyio.to_thread.run_sync(figures)
        self._show(computed, strategy_id, range_key, view.symbol, view.owner_id == member.id)

    @event_handler
    @members_only
    async def set_time_zone(self, member: CurrentUser, name: str) -> EventSpec | None:
        """The browser says its time zone when the page shows: days and times follow it (an unknown name is
        ignored: they stay in UTC, as the page says)."""
        if flows.viewer_zone(name) is not None and name != self.zone:
            self.zone = name
            await self._reload(member)
        return None

    def _word(self, at_ms: object, say: str, amount: Decimal | None = None) -> Callable[[Session, Actor], None]:
        """The owner's word on a listed flow: what was found and its interval come from the page's own list (kept
        on the server), never from the browser."""
        strategy_id, listed = self._strategy_id, self._listed

        def work(session: Session, actor: Actor) -> None:
            strategies.own_strategy(session, actor, strategy_id)  # anyone else's: "No such strategy."
            row = listed.get(forms.parse_ms(at_ms))
            if row is None:
                raise InvalidInputError("That flow is not on the page any more (another range?): look again.")
            found, where = Decimal(row.found), {"at_ms": row.at_ms, "from_ms": row.from_ms}
            if say == "not_a_flow":
                flows.mark_not_a_flow(session, actor, strategy_id, found=found, **where)
            else:
                flows.confirm_flow(session, actor, strategy_id, found=found, amount=amount, **where)

        return work

    @event_handler
    async def confirm(self, at_ms: int) -> EventSpec | None:
        return await self._act(self._word(at_ms, "confirm"), lambda _none: "Flow confirmed.")

    @event_handler
    async def not_a_flow(self, at_ms: int) -> EventSpec | None:
        return await self._act(
            self._word(at_ms, "not_a_flow"), lambda _none: "Counted as profit or loss, not as a flow."
        )

    @event_handler
    async def correct(self, form: dict[str, str]) -> EventSpec | None:
        def work(session: Session, actor: Actor) -> None:
            typed = forms.form_text(form, "amount", max_length=40, label="The amount")
            self._word(form.get("at_ms"), "confirm", flows.parse_amount(typed, zero=True))(session, actor)

        return await self._act(work, lambda _none: "Flow corrected.")

    @event_handler
    async def add_flow(self, form: dict[str, str]) -> EventSpec | None:
        strategy_id, zone = self._strategy_id, flows.viewer_zone(self.zone) or UTC
        return await self._act(
            lambda session, actor: flows.add_manual_flow(
                session,
                actor,
                strategy_id,
                at_ms=flows.zoned_ms(forms.form_text(form, "at", max_length=40, label="The date"), zone),
                amount=flows.parse_amount(forms.form_text(form, "amount", max_length=40, label="The amount")),
            ),
            lambda _none: "Flow added.",
        )

    @event_handler
    async def remove_flow(self, at_ms: int, amount: str) -> EventSpec | None:
        strategy_id = self._strategy_id
        # The row is looked up by its time and amount among the owner's manual flows: anything else is refused.
        return await self._act(
            lambda session, actor: flows.remove_manual_flow(
                session, actor, strategy_id, at_ms=forms.parse_ms(at_ms), amount=flows.parse_amount(str(amount))
            ),
            lambda _none: "Flow removed.",
        )


def _figures() -> rx.Component:
    p = StrategyPerformanceState
    return rx.grid(
        figure_card("Profit", p.profit, "perf-profit", color_scheme=p.tone),
        figure_card("Return (time-weighted)", p.twr, "perf-twr"),
        figure_card("Deposits", p.deposits, "perf-deposits"),
        figure_card("Withdrawals", p.withdrawals, "perf-withdrawals"),
        rx.card(
            rx.text("Max drawdown", size="1", color_scheme="gray"),
            rx.text(p.drawdown, size="4", weight="bold", id="perf-drawdown"),
            rx.cond(
                p.drawdown_peak != "",
                rx.text(
                    "from ",
                    p.drawdown_peak,
                    " to ",
                    p.drawdown_trough,
                    rx.cond(p.drawdown_recovered != "", rx.fragment(", back by ", p.drawdown_recovered), ""),
                    size="1",
                    color_scheme="gray",
                ),
            ),
        ),
        figure_card("Best day", p.best_day, "perf-best-day"),
        figure_card("Worst day", p.worst_day, "perf-worst-day"),
        figure_card("Winning days", p.winning_days, "perf-winning-days"),
        figure_card("Sharpe-like ratio", p.sharpe, "perf-sharpe"),
        columns=rx.breakpoints(initial="2", sm="3", md="5"),
        spacing="3",
        width="100%",
    )


def _chart(figure: rx.Var[dict], id_: str) -> rx.Component:
    return rx.cond(
        figure.length() > 0,  # type: ignore[attr-defined]
        rx.card(live_chart(figure=figure, tail=NO_FIGURE, id=id_), width="100%"),
    )


def _flow_actions(flow: ObjectVar[FlowView]) -> rx.Component:
    p = StrategyPerformanceState
    return rx.match(
        flow.source,
        (
            "manual",
            rx.button(
                "Remove", size="1", variant="soft", color_scheme="red", on_click=p.remove_flow(flow.at_ms, flow.amount)
            ),
        ),
        (
            "dismissed",
            rx.button("Count as a flow", size="1", variant="soft", on_click=p.confirm(flow.at_ms)),
        ),
        rx.flex(
            rx.cond(  # a corrected or confirmed flow has had its word: Confirm would undo a correction
                (flow.source == "detected") | (flow.source == "stated"),
                rx.button("Confirm", size="1", variant="soft", on_click=p.confirm(flow.at_ms)),
            ),
            rx.button("Not a flow", size="1", variant="soft", on_click=p.not_a_flow(flow.at_ms)),
            rx.form(
                rx.flex(
                    rx.input(type="hidden", name="at_ms", value=flow.at_ms.to_string()),
                    rx.input(
                        name="amount",
                        placeholder="Amount",
                        size="1",
                        width="7em",
                        aria_label="Corrected amount",
                        required=True,
                    ),
                    rx.button("Correct", size="1", variant="soft", type="submit"),
                    spacing="1",
                ),
                on_submit=p.correct,
                reset_on_submit=True,
            ),
            spacing="2",
            wrap="wrap",
            align="center",
        ),
    )


def _flow_row(flow: ObjectVar[FlowView]) -> rx.Component:
    return rx.table.row(
        labelled_cell("Seen", flow.at),
        labelled_cell("Amount", flow.shown),
        labelled_cell(
            "How",
            flow.source,
            rx.cond(
                (flow.source == "corrected") | (flow.source == "dismissed"),
                rx.text(" (found ", flow.found_shown, ")", as_="span"),
                "",
            ),
        ),
        rx.cond(StrategyPerformanceState.owner, labelled_cell("", _flow_actions(flow))),
    )


def _add_flow_form() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.input(name="at", type="datetime-local", size="1", aria_label="When", required=True),
            rx.input(name="amount", placeholder="5000 or -1000", size="1", aria_label="Amount", required=True),
            rx.button("Add a flow", size="1", type="submit"),
            spacing="2",
            wrap="wrap",
            align="center",
        ),
        on_submit=StrategyPerformanceState.add_flow,
        reset_on_submit=True,
        id="add-flow",
    )


def performance_section() -> rx.Component:
    p = StrategyPerformanceState
    return rx.vstack(
        rx.heading("Performance", size="4"),
        rx.text(
            "Net of deposits and withdrawals: money moved in or out is not profit. Days and times here are in ",
            p.zone,
            ".",
            size="1",
            color_scheme="gray",
        ),
        _figures(),
        _chart(p.returns_figure, "returns-chart"),
        _chart(p.days_figure, "daily-pnl-chart"),
        rx.heading("Deposits and withdrawals", size="3"),
        rx.text(
            "A wallet change that realised PnL does not explain is counted as money moved in or out. Confirm, "
            "correct or dismiss what was found, or add a flow by hand (its time in ",
            p.zone,
            ").",
            size="1",
            color_scheme="gray",
        ),
        form_error(p.error),
        notice(p.notice),
        rx.cond(
            p.flows.length() > 0,
            stacked_table(("Seen", "Amount", "How", ""), p.flows, _flow_row, id_="flows-table", size="1"),
            rx.text("None in this range.", size="2", color_scheme="gray", id="no-flows"),
        ),
        rx.cond(p.owner, _add_flow_form()),
        spacing="3",
        width="100%",
        id="performance",
        # The browser says its time zone (Intl's IANA name): days and times follow it.
        on_mount=rx.call_script(
            "Intl.DateTimeFormat().resolvedOptions().timeZone", callback=StrategyPerformanceState.set_time_zone
        ),
    )
