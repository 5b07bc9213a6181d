"""/strategies/<id>: one strategy's charts (balances, PnL, price, position, drawdown), latest figures and
its snapshots, newest first, paged and downloadable as CSV. Live: each stored snapshot updates the open tab, and
the page's one timer ages its status once a minute. "All" starts at the strategy's oldest stored snapshot, for
the chart and the CSV alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
import reflex as rx
from reflex.event import EventSpec, EventType
from reflex.vars import ObjectVar

from projectalgo import charts, dashboard, exports, flows, forms, liveness, strategies
from projectalgo.analytics import FlowPoint
from projectalgo.clock import utcnow
from projectalgo.components.bot import TOKEN_PLACEHOLDER, bot_instructions, bot_snippet
from projectalgo.components.layout import figure_card, layout
from projectalgo.components.live_chart import live_chart
from projectalgo.components.status import ago, range_picker, status_badge, status_timer, time_zone_note
from projectalgo.components.tables import labelled_cell, stacked_table
from projectalgo.errors import NotFoundError
from projectalgo.live import Viewer
from projectalgo.live_push import live_push
from projectalgo.pages.share_links_section import share_links_section
from projectalgo.pages.strategy_performance import StrategyPerformanceState, compute, performance_section
from projectalgo.runtime import services
from projectalgo.snapshots import ALL_TIME_END_MS, Snapshot, epoch_ms
from projectalgo.state import AuthState, CurrentUser, event_handler, in_session, members_only

PAGE_SIZE = 50


@dataclass
class SnapshotRow:
    at: str  # ISO 8601 UTC
    wallet: str
    margin: str
    unrealised: str
    realised: str
    positions: str
    average_entry: str
    last_price: str


def _row(snapshot: Snapshot) -> SnapshotRow:
    return SnapshotRow(
        charts.iso_time(snapshot.at_ms),
        charts.money(snapshot.wallet_balance),
        charts.money(snapshot.margin_balance),
        charts.money(snapshot.unrealised_pnl),
        charts.money(snapshot.realised_pnl),
        f"{snapshot.positions:,f}",
        f"{snapshot.average_entry_price:,f}",
        f"{snapshot.last_price:,f}",
    )


class StrategyLiveState(AuthState):
    """The small, live part of a strategy page: what each stored snapshot changes."""

    wallet: rx.Field[str] = rx.field("—")
    margin: rx.Field[str] = rx.field("—")
    unrealised: rx.Field[str] = rx.field("—")
    realised: rx.Field[str] = rx.field("—")
    position: rx.Field[str] = rx.field("—")
    status: rx.Field[str] = rx.field("never")
    last_update: rx.Field[str] = rx.field("")  # the newest stored snapshot's time, ISO 8601
    unseen: rx.Field[int] = rx.field(0)  # snapshots stored since the table was loaded
    charted: rx.Field[bool] = rx.field(False)  # the chart has points (else the page says why not)
    tail: rx.Field[dict] = rx.field(default_factory=dict)
    _live: dashboard.LiveStrategy = dashboard.LiveStrategy()
    _last_ms: int = 0  # the newest stored snapshot's time; 0: none
    _since_figures: int = 0  # snapshots pushed since the performance figures were computed

    def _show_latest(self, snapshot: Snapshot | None, now_ms: int) -> None:
        if snapshot is not None and snapshot.at_ms >= self._last_ms:
            self.wallet, self.margin = charts.money(snapshot.wallet_balance), charts.money(snapshot.margin_balance)
            self.unrealised = charts.money(snapshot.unrealised_pnl)
            self.realised = charts.money(snapshot.realised_pnl)
            self.position = f"{snapshot.positions:,f} {snapshot.symbol}".strip()
            self.last_update, self._last_ms = charts.iso_time(snapshot.at_ms), snapshot.at_ms
        self._restatus(now_ms)

    def _restatus(self, now_ms: int) -> None:
        status = liveness.status(self._last_ms or None, now_ms, services().settings)
        if status != self.status:
            self.status = status

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        """A new snapshot of this tab's strategy (pushed by the live hub)."""
        if (applied := self._live.apply(snapshot)) is None:
            return
        self._live, tail = applied
        self.tail = tail
        if not self.charted:  # a var set is sent even when unchanged: only the first point is news
            self.charted = True
        self._show_latest(snapshot, epoch_ms(utcnow()))  # a backfilled older one does not replace the latest
        self.unseen += 1
        self._since_figures += 1

    @event_handler
    @members_only
    async def tick(self, member: CurrentUser, _shown: str = "") -> EventType[()] | None:
        """The page's timer, once a minute: the status as of now, from what the tab holds (nothing is read). A tab
        this worker does not push to (its websocket came from another worker) loads again, which registers it;
        the performance figures are computed again when snapshots came since (once a minute, not per snapshot)."""
        self._restatus(epoch_ms(utcnow()))
        if self._live.strategy_id and not live_push.watching(self.router.session.client_token):
            return StrategyPageState.resync
        if self._since_figures:  # a server-side step of the tick: no browser can ask for it in a loop
            self._since_figures = 0
            await (await self.get_state(StrategyPerformanceState))._reload(member)
        return None


class StrategyPageState(AuthState):
    found: rx.Field[bool] = rx.field(True)
    name: rx.Field[str] = rx.field("")
    description: rx.Field[str] = rx.field("")
    account_name: rx.Field[str] = rx.field("")
    symbol: rx.Field[str] = rx.field("")
    range_key: rx.Field[str] = rx.field(charts.DEFAULT_RANGE)
    figure: rx.Field[dict] = rx.field(default_factory=dict)
    snippet: rx.Field[str] = rx.field("")  # how a bot posts, with a placeholder for its token
    lines: rx.Field[list[SnapshotRow]] = rx.field(default_factory=list)
    page: rx.Field[int] = rx.field(1)
    has_more: rx.Field[bool] = rx.field(False)
    _strategy_id: int = 0
    _page_ends: list[int] = []  # before_ms of each page shown so far
    _next_before: int = 0  # before_ms of the next older page

    def _route_id(self) -> int:
        return forms.parse_id(self.router.url.path.rstrip("/").rsplit("/", 1)[-1])

    async def _viewable(self, member: CurrentUser) -> strategies.StrategyView | None:
        """The strategy of this page's URL, checked now against the member's right to see it (never an id kept
        from an earlier call). None empties the page and stops its live updates."""
        strategy_id, actor = self._route_id(), member.actor
        try:
            return await in_session(lambda session: strategies.get_strategy(session, actor, strategy_id))
        except NotFoundError:
            self.reset()
            self.found = False
            (await self.get_state(StrategyLiveState)).reset()
            (await self.get_state(StrategyPerformanceState)).reset()
            live_push.forget(self.router.session.client_token)
            return None

    async def _load(self, member: CurrentUser) -> None:
        """Check the member may see this strategy (owner, or admin), then send the figure and the first page."""
        range_key = self.range_key
        view = await self._viewable(member)
        if view is None:
            return
        # Watched before anything is read: a snapshot stored meanwhile is then pushed once the load ends (pushes
        # wait for the tab's state), where watching after the reads would miss it. The chart skips one read twice.
        live_push.watch(
            self.router.session.client_token, StrategyLiveState, [view.id], Viewer.login(member.login_session_id)
        )
        self.found, self.range_key, self._strategy_id = True, range_key, view.id
        self.name, self.description, self.account_name, self.symbol = (
            view.name,
            view.description,
            view.account_name,
            view.symbol,
        )
        store, settings = services().snapshot_store, services().settings
        now = epoch_ms(utcnow())

        def read() -> tuple[list[Snapshot], list[Snapshot], Snapshot | None, list[FlowPoint], bool]:
            win = dashboard.range_window(store, range_key, now, [view.id])
            opened, snapshots = dashboard.opening(store, view.id, win), dashboard.snapshots_in(store, view.id, win)
            flow_points = flows.points_of(services().engine, view.id, opened + snapshots)
            return opened, snapshots, store.latest(view.id), flow_points, win.source != "raw"

        opened, snapshots, latest, flow_points, coarse = await anyio.to_thread.run_sync(read)
        points = [dashboard.point(s) for s in snapshots]

        corrections = await in_session(lambda session: flows.corrections_of(session, view.id))
        performance = await self.get_state(StrategyPerformanceState)
        computed = await anyio.to_thread.run_sync(
            lambda: compute(opened + snapshots, corrections, view.symbol, performance.zone, flow_points, coarse=coarse)
        )
        live = await self.get_state(StrategyLiveState)
        if live._live.strategy_id != view.id:  # nothing of another strategy stays on the page
            live.reset()
        peaks = charts.running_peaks([p.margin for p in points], [computed.moved.get(p.at_ms, 0.0) for p in points])
        live._live = dashboard.LiveStrategy(
            view.id,
            peaks[-1] if peaks else 0.0,
            live._live.seq,
            latest.at_ms if latest else 0,
            latest,
            flows.tolerance(settings),
        )
        live._last_ms = 0
        live._show_latest(latest, now)
        live.charted = bool(points)
        self.snippet = bot_snippet(settings.public_url, TOKEN_PLACEHOLDER)
        self.figure = await anyio.to_thread.run_sync(  # ~40 ms
            charts.strategy_figure, points, live._live.seq, computed.moved
        )
        self._page_ends, self.page = [], 1
        await self._read_page(view.id, ALL_TIME_END_MS)
        live.unseen = 0
        live._since_figures = 0
        performance.error = performance.notice = ""
        performance._show(computed, view.id, range_key, view.symbol, view.owner_id == member.id)

    async def _read_page(self, strategy_id: int, before_ms: int) -> None:
        store = services().snapshot_store
        found = await anyio.to_thread.run_sync(lambda: store.recent(strategy_id, before_ms, limit=PAGE_SIZE + 1))
        self._page_ends = [*self._page_ends[: self.page - 1], before_ms]
        self.lines = [_row(s) for s in found[:PAGE_SIZE]]
        self.has_more = len(found) > PAGE_SIZE
        self._next_before = found[PAGE_SIZE - 1].at_ms if self.has_more else 0

    @members_only
    async def _page_to(self, member: CurrentUser, page: int, before_ms: int) -> EventSpec | None:
        """Show page `page` (ending before `before_ms`) of the URL's strategy, if the member may see it now."""
        view = await self._viewable(member)
        if view is None:
            return None
        if view.id != self._strategy_id:  # pages kept for another strategy mean nothing here: start over
            page, before_ms = 1, ALL_TIME_END_MS
        self._strategy_id, self.page = view.id, page
        await self._read_page(view.id, before_ms)
        if page == 1:
            (await self.get_state(StrategyLiveState)).unseen = 0
        return None

    @event_handler
    @members_only
    async def open_strategy(self, member: CurrentUser) -> EventSpec | None:
        self.range_key = charts.DEFAULT_RANGE
        await self._load(member)
        return None

    @event_handler
    async def set_range(self, range_key: str | list[str]) -> EventSpec | None:
        self.range_key = charts.range_key(range_key)
        return await self.resync()

    @event_handler
    @members_only
    async def resync(self, member: CurrentUser) -> EventSpec | None:
        await self._load(member)
        return None

    @event_handler
    async def newer_page(self) -> EventSpec | None:
        if self.page <= 1:
            return await self._page_to(1, ALL_TIME_END_MS)
        return await self._page_to(self.page - 1, self._page_ends[self.page - 2])

    @event_handler
    async def older_page(self) -> EventSpec | None:
        if not (self.has_more and self._next_before):
            return await self._page_to(self.page, self._page_ends[-1] if self._page_ends else ALL_TIME_END_MS)
        return await self._page_to(self.page + 1, self._next_before)

    @event_handler
    async def show_newest(self) -> EventSpec | None:
        return await self._page_to(1, ALL_TIME_END_MS)

    @event_handler
    @members_only
    async def download_csv(self, member: CurrentUser) -> EventSpec | None:
        """A link valid for a minute, for this sign-in, strategy and the chosen range."""
        view = await self._viewable(member)
        if view is None:
            return rx.redirect("/strategies")
        store, range_key, now = services().snapshot_store, self.range_key, epoch_ms(utcnow())
        win = await anyio.to_thread.run_sync(lambda: dashboard.range_window(store, range_key, now, [view.id]))
        link = exports.signed_link(
            services().settings.secret_key_base,
            user_id=member.id,
            login_session_id=member.login_session_id,
            strategy_id=view.id,
            start_ms=win.start_ms,
            end_ms=win.end_ms,
            now_s=int(time.time()),
        )
        return rx.download(url=link)


def latest_figures() -> rx.Component:
    live = StrategyLiveState
    return rx.grid(
        figure_card("Wallet balance", live.wallet, "latest-wallet"),
        figure_card("Margin balance", live.margin, "latest-margin"),
        figure_card("Unrealised PnL", live.unrealised, "latest-unrealised"),
        figure_card("Realised PnL", live.realised, "latest-realised"),
        figure_card("Position", live.position, "latest-position"),
        columns=rx.breakpoints(initial="2", sm="3", md="5"),
        spacing="3",
        width="100%",
    )


LINE_COLUMNS = (
    ("Wallet", "wallet"),
    ("Margin", "margin"),
    ("Unrealised", "unrealised"),
    ("Realised", "realised"),
    ("Position", "positions"),
    ("Avg entry", "average_entry"),
    ("Last price", "last_price"),
)


def snapshot_row(line: ObjectVar[SnapshotRow]) -> rx.Component:
    return rx.table.row(
        labelled_cell("Time", rx.moment(line.at, format="YYYY-MM-DD HH:mm:ss", local=True)),
        *(labelled_cell(label, getattr(line, field)) for label, field in LINE_COLUMNS),
    )


def snapshot_table() -> rx.Component:
    headers = ("Time", *(label for label, _ in LINE_COLUMNS))
    return rx.vstack(
        rx.flex(
            rx.heading("Snapshots", size="4"),
            rx.spacer(),
            rx.cond(
                StrategyLiveState.unseen > 0,
                rx.button(
                    StrategyLiveState.unseen,
                    " new — show",
                    size="1",
                    variant="soft",
                    on_click=StrategyPageState.show_newest,
                    id="show-new",
                ),
            ),
            rx.button(
                rx.icon("download", size=14),
                "CSV",
                size="1",
                variant="soft",
                on_click=StrategyPageState.download_csv,
                id="download-csv",
            ),
            width="100%",
            align="center",
            spacing="2",
            wrap="wrap",
        ),
        stacked_table(headers, StrategyPageState.lines, snapshot_row, id_="snapshot-table", size="1"),
        rx.flex(
            rx.button(
                "Newer",
                size="1",
                variant="soft",
                disabled=StrategyPageState.page <= 1,
                on_click=StrategyPageState.newer_page,
            ),
            rx.text("Page ", StrategyPageState.page, size="2"),
            rx.button(
                "Older",
                size="1",
                variant="soft",
                disabled=~StrategyPageState.has_more,
                on_click=StrategyPageState.older_page,
            ),
            spacing="3",
            align="center",
        ),
        width="100%",
        spacing="3",
    )


def chart_or_why_not() -> rx.Component:
    """The chart; else, with snapshots outside the range, where the newest is; else how a bot posts them."""
    live = StrategyLiveState
    return rx.cond(
        live.charted,
        rx.card(
            live_chart(
                figure=StrategyPageState.figure,
                tail=live.tail,
                on_resync=StrategyPageState.resync,
                id="strategy-chart",
            ),
            width="100%",
        ),
        rx.cond(
            live.last_update != "",
            rx.callout(
                rx.flex(
                    rx.text(
                        "No snapshots in the last ",
                        StrategyPageState.range_key,
                        ": the newest is from ",
                        ago(live.last_update),
                        ".",
                    ),
                    rx.button("Show all", size="1", variant="soft", on_click=StrategyPageState.set_range(charts.ALL)),
                    align="center",
                    spacing="3",
                    wrap="wrap",
                ),
                icon="info",
                id="empty-range",
                width="100%",
            ),
            bot_instructions(
                StrategyPageState.snippet,
                rx.text(
                    "Use this strategy's token (shown once, when it was made), or get a new one on ",
                    rx.link("Strategies", href="/strategies"),
                    " (New token).",
                ),
            ),
        ),
    )


def strategy_header() -> rx.Component:
    return rx.flex(
        rx.vstack(
            # A long unbroken name wraps instead of widening the page.
            rx.heading(StrategyPageState.name, size="7", id="strategy-name", overflow_wrap="anywhere"),
            rx.text(
                StrategyPageState.account_name,
                " · ",
                StrategyPageState.symbol,
                size="2",
                color_scheme="gray",
                overflow_wrap="anywhere",
            ),
            spacing="1",
            min_width="0",
            flex="1 1 16em",
        ),
        rx.box(status_badge(StrategyLiveState.status), id="strategy-status"),
        range_picker(StrategyPageState.range_key, StrategyPageState.set_range),
        width="100%",
        align="center",
        wrap="wrap",
        spacing="3",
    )


def strategy_page() -> rx.Component:
    live = StrategyLiveState
    return layout(
        rx.cond(
            StrategyPageState.found,
            rx.vstack(
                status_timer(live.tick),
                strategy_header(),
                rx.text(StrategyPageState.description, overflow_wrap="anywhere"),
                rx.vstack(
                    rx.text(
                        "Last update ",
                        rx.cond(
                            live.last_update != "",
                            rx.fragment(
                                rx.moment(live.last_update, format="YYYY-MM-DD HH:mm:ss", local=True),
                                " (",
                                ago(live.last_update),
                                ")",
                            ),
                            "never",
                        ),
                        size="2",
                        color_scheme="gray",
                        id="strategy-last-update",
                    ),
                    time_zone_note(),
                    spacing="1",
                ),
                latest_figures(),
                chart_or_why_not(),
                performance_section(),
                share_links_section("this strategy"),
                snapshot_table(),
                spacing="4",
                width="100%",
            ),
            rx.callout("No such strategy.", icon="info", color_scheme="amber"),
        )
    )
