"""/dashboard: combined equity, PnL over the chosen range, the wallet balance chart and each strategy's status.

Two states: DashboardState holds the (large) figure, sent on load and range changes only; DashboardLiveState
holds the small live part (numbers, statuses, the chart's tail) that each stored snapshot updates, and which
the page's one timer brings up to date once a minute (statuses age without any snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import anyio
import reflex as rx
from reflex.event import EventSpec, EventType
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import charts, dashboard, flows, liveness, strategies
from projectalgo.clock import utcnow
from projectalgo.components.bot import TOKEN_PLACEHOLDER, bot_instructions, bot_snippet
from projectalgo.components.layout import layout
from projectalgo.components.live_chart import live_chart
from projectalgo.components.status import ago, range_picker, status_badge, status_timer, time_zone_note
from projectalgo.components.tables import labelled_cell, stacked_table
from projectalgo.live import Viewer
from projectalgo.live_push import live_push
from projectalgo.pages.share_links_section import share_links_section
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from projectalgo.state import AuthState, CurrentUser, event_handler, in_session, members_only


@dataclass
class StatusRow:
    """A strategy's line of the comparison table: its status, last snapshot, returns per range and drawdown."""

    id: int
    name: str
    account: str
    status: str
    last_snapshot_ms: int  # 0: never
    returns: list[str] = field(default_factory=list)  # "+1.25%" or "—", one per range (charts.RANGES' order)
    drawdown: str = "—"
    # What the table sorts by: the returns, then the drawdown, as numbers (None: no figure, sorted last).
    sort_values: list[float | None] = field(default_factory=list)


SORTABLE = ("name", "status", "last", *charts.RANGES, "drawdown")
STATUS_ORDER = {"live": 0, "stale": 1, "offline": 2, "never": 3}


def comparison_row(row: StatusRow, compared: dashboard.Comparison | None) -> StatusRow:
    if compared is None:
        return row
    ratios = [compared.returns.get(key) for key in charts.RANGES] + [compared.max_drawdown]
    return replace(
        row,
        returns=[flows.percent(ratio) for ratio in ratios[:-1]],
        drawdown=flows.percent(compared.max_drawdown) if compared.max_drawdown is not None else "—",
        sort_values=[float(ratio) if ratio is not None else None for ratio in ratios],
    )


def sorted_rows(rows: list[StatusRow], column: str, descending: bool) -> list[StatusRow]:
    """The rows by `column` (SORTABLE); rows without a figure last, whichever the direction."""

    def key(row: StatusRow) -> tuple[bool, float | str]:
        if column == "name":
            return False, row.name.lower()
        if column == "status":
            return False, STATUS_ORDER.get(row.status, 9)
        if column == "last":
            return row.last_snapshot_ms == 0, row.last_snapshot_ms
        value = row.sort_values[SORTABLE.index(column) - 3] if row.sort_values else None
        return value is None, value if value is not None else 0.0

    present = sorted((r for r in rows if not key(r)[0]), key=lambda r: key(r)[1], reverse=descending)
    return present + [r for r in rows if key(r)[0]]


def restatus(rows: list[StatusRow], now_ms: int) -> list[StatusRow] | None:
    """The rows with each status as of `now_ms`; None when none changed (nothing to send)."""
    fresh = [replace(r, status=liveness.status(r.last_snapshot_ms or None, now_ms, services().settings)) for r in rows]
    return None if [r.status for r in fresh] == [r.status for r in rows] else fresh


class DashboardLiveState(AuthState):
    equity: rx.Field[str] = rx.field("—")
    change: rx.Field[str] = rx.field("—")  # with its arrow: "↑ $12.00"
    change_tone: rx.Field[str] = rx.field("gray")  # green, red, or gray without data
    percent: rx.Field[str] = rx.field("—")
    net_flows: rx.Field[str] = rx.field("—")  # deposits less withdrawals in the range: not profit
    last_update: rx.Field[str] = rx.field("")  # ISO 8601, shown in the viewer's time zone
    range_label: rx.Field[str] = rx.field(charts.DEFAULT_RANGE)
    statuses: rx.Field[list[StatusRow]] = rx.field(default_factory=list)
    # Each strategy's newest snapshot time (epoch ms) by its id as text: what a push changes, so a push sends this
    # small map and not the whole comparison table (statuses are sent again only when one changes).
    last_seen: rx.Field[dict[str, int]] = rx.field(default_factory=dict)
    charted: rx.Field[bool] = rx.field(False)  # the chart has points (else the page says why not)
    tail: rx.Field[dict] = rx.field(default_factory=dict)
    sort_column: rx.Field[str] = rx.field("name")  # the comparison table's order (SORTABLE)
    sort_descending: rx.Field[bool] = rx.field(False)
    _live: dashboard.LiveEquity = dashboard.LiveEquity()
    _since_figures: int = 0  # snapshots pushed since the comparison's returns were read

    def _show(self, equity: dashboard.Equity, win: dashboard.Window, rows: list[StatusRow], accounts: dict) -> int:
        self._live = dashboard.LiveEquity(
            dict(accounts),
            dict(equity.latest),
            equity.start,
            win.bucket_ms,
            self._live.seq,
            equity.net_flows,
            dict(equity.flow_last),
            flows.tolerance(services().settings),
        )
        self.range_label = win.key
        self.statuses = sorted_rows(rows, self.sort_column, self.sort_descending)
        self.last_seen = {str(r.id): r.last_snapshot_ms for r in rows}
        self._since_figures = 0
        self.charted = bool(equity.series)
        self._show_numbers()
        return self._live.seq

    def _show_numbers(self) -> None:
        shown = self._live.numbers()
        self.equity, self.change, self.change_tone = shown.equity, shown.change, shown.tone
        self.percent, self.last_update, self.net_flows = shown.percent, shown.last_update, shown.net_flows

    def _rows(self) -> list[StatusRow]:
        """The table's rows with the newest snapshot times the tab holds (pushes move only `last_seen`)."""
        return [replace(r, last_snapshot_ms=self.last_seen.get(str(r.id), r.last_snapshot_ms)) for r in self.statuses]

    def _restatus(self, now_ms: int) -> None:
        """The statuses as of now; sent only if one changed."""
        if (fresh := restatus(self._rows(), now_ms)) is not None:
            self.statuses = sorted_rows(fresh, self.sort_column, self.sort_descending)

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        """A new snapshot of one of this tab's strategies (pushed by the live hub)."""
        if (applied := self._live.apply(snapshot)) is None:
            return
        self._live, tail = applied
        self._show_numbers()
        self.tail = tail
        if not self.charted:  # a var set is sent even when unchanged: only the first point is news
            self.charted = True
        # A backfilled (older) snapshot does not make the strategy's last snapshot older.
        key = str(snapshot.strategy_id)
        if snapshot.at_ms > self.last_seen.get(key, 0):
            self.last_seen = {**self.last_seen, key: snapshot.at_ms}
        self._since_figures += 1
        self._restatus(epoch_ms(utcnow()))

    @event_handler
    @members_only
    async def tick(self, member: CurrentUser, _shown: str = "") -> EventType[()] | None:
        """The page's timer, once a minute: statuses as of now, from what the tab holds (nothing is read). A tab
        this worker does not push to (its websocket came from another worker) loads again, which registers it."""
        self._restatus(epoch_ms(utcnow()))
        if self._live.accounts and not live_push.watching(self.router.session.client_token):
            return DashboardState.resync
        if self._since_figures:  # the comparison's returns again, once a minute at most, not per snapshot
            self._since_figures = 0
            await (await self.get_state(DashboardState))._refresh_comparison(member)
        return None

    @event_handler
    @members_only
    async def sort_by(self, member: CurrentUser, column: str) -> EventSpec | None:
        """Order the comparison table by a column; the same column again turns the order round."""
        if column not in SORTABLE:
            return None
        if column == self.sort_column:
            self.sort_descending = not self.sort_descending
        else:  # figures best first; names and statuses from the top of the alphabet and "live"
            self.sort_column, self.sort_descending = column, column not in ("name", "status")
        self.statuses = sorted_rows(self._rows(), self.sort_column, self.sort_descending)
        return None


class DashboardState(AuthState):
    range_key: rx.Field[str] = rx.field(charts.DEFAULT_RANGE)
    figure: rx.Field[dict] = rx.field(default_factory=dict)
    setup: rx.Field[str] = rx.field("")  # the member's next step before any chart: "account", "strategy", or "" (done)
    snippet: rx.Field[str] = rx.field("")  # how a bot posts, with a placeholder for its token

    async def _load(self, member: CurrentUser) -> None:
        settings, actor = services().settings, member.actor

        def read(session: Session) -> tuple[list[strategies.StrategyView], bool, dashboard.FlowRules]:
            own = strategies.list_strategies(session, actor)
            rules = flows.flow_rules(session, settings, [s.id for s in own if not s.archived])
            return own, any(not a.archived for a in strategies.list_accounts(session, actor)), rules

        own, has_account, rules = await in_session(read)
        active = [s for s in own if not s.archived]
        now = epoch_ms(utcnow())
        accounts = {s.id: s.account_id for s in active}
        # Watched before anything is read, so a snapshot stored meanwhile is pushed once the load ends (a push waits
        # for the tab's state); counting it twice changes nothing: each account's newest wallet is kept once.
        live_push.watch(
            self.router.session.client_token, DashboardLiveState, accounts, Viewer.login(member.login_session_id)
        )
        app = services()
        seen = await anyio.to_thread.run_sync(
            dashboard.overview, app.snapshot_store, self.range_key, now, list(accounts.items()), rules, app.comparisons
        )
        rows = [
            comparison_row(
                StatusRow(
                    s.id,
                    s.name,
                    s.account_name,
                    liveness.status(seen.latest_ms.get(s.id), now, settings),
                    seen.latest_ms.get(s.id, 0),
                ),
                seen.compared.get(s.id),
            )
            for s in active
        ]
        self.setup = "" if active else ("strategy" if has_account else "account")
        self.snippet = bot_snippet(settings.public_url, TOKEN_PLACEHOLDER)
        live = await self.get_state(DashboardLiveState)
        seq = live._show(seen.equity, seen.window, rows, accounts)
        title = f"Wallet balance — {seen.window.key}"
        self.figure = await anyio.to_thread.run_sync(charts.equity_figure, seen.equity.series, seq, title)

    @members_only
    async def _guarded_load(self, member: CurrentUser) -> EventSpec | None:
        await self._load(member)
        return None

    async def _refresh_comparison(self, member: CurrentUser) -> None:
        """The comparison's returns and drawdowns again (a step of the page's tick, when snapshots came since)."""
        settings, actor, now = services().settings, member.actor, epoch_ms(utcnow())

        def read(session: Session) -> tuple[list[int], dashboard.FlowRules]:
            ids = [s.id for s in strategies.list_strategies(session, actor) if not s.archived]
            return ids, flows.flow_rules(session, settings, ids)

        ids, rules = await in_session(read)
        app = services()
        compared = await anyio.to_thread.run_sync(
            lambda: {sid: app.comparisons.of(app.snapshot_store, sid, now, rules) for sid in ids}
        )
        live = await self.get_state(DashboardLiveState)
        # Only the member's own strategies, as listed now: one archived or gone since drops out.
        rows = [comparison_row(r, compared[r.id]) for r in live._rows() if r.id in compared]
        live.statuses = sorted_rows(rows, live.sort_column, live.sort_descending)

    @event_handler
    async def open_dashboard(self) -> EventSpec | None:
        return await self._guarded_load()

    @event_handler
    async def set_range(self, range_key: str | list[str]) -> EventSpec | None:
        self.range_key = charts.range_key(range_key)
        return await self._guarded_load()

    @event_handler
    async def resync(self) -> EventSpec | None:
        """The chart missed live updates (e.g. after a reconnect): send the whole figure again."""
        return await self._guarded_load()


def stat(label: rx.Component | str, value: rx.Component, id_: str) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", color_scheme="gray"), rx.box(value, id=id_), spacing="1")


def equity_card() -> rx.Component:
    live = DashboardLiveState
    return rx.card(
        rx.grid(
            stat("Equity", rx.heading(live.equity, size="7"), "equity"),
            stat(
                rx.text("Profit/Loss ", live.range_label),
                rx.heading(live.change, size="6", color_scheme=live.change_tone),
                "pnl",
            ),
            stat(
                rx.text("Return on the wallets ", live.range_label), rx.heading(live.percent, size="6"), "pnl-percent"
            ),
            stat(
                rx.text("Net deposits ", live.range_label),
                rx.heading(live.net_flows, size="6", color_scheme="gray"),
                "net-flows",
            ),
            stat(
                "Last update",
                rx.cond(
                    live.last_update != "",
                    rx.moment(live.last_update, format="YYYY-MM-DD HH:mm:ss", local=True),
                    rx.text("no snapshot yet"),
                ),
                "last-update",
            ),
            columns=rx.breakpoints(initial="1", sm="2", md="5"),
            spacing="4",
        ),
        rx.text(
            "Profit and return are net of money moved in or out of the accounts (each account counted once).",
            size="1",
            color_scheme="gray",
            margin_top="0.5em",
        ),
        width="100%",
    )


def status_row(row: ObjectVar[StatusRow]) -> rx.Component:
    last = DashboardLiveState.last_seen[row.id.to_string()].to(int)  # type: ignore[call-overload]  # a dict Var at run time
    return rx.table.row(
        rx.table.row_header_cell(rx.link(row.name, href=f"/strategies/{row.id}"), overflow_wrap="anywhere"),
        labelled_cell("Account", row.account),
        labelled_cell("Status", status_badge(row.status), id=f"status-{row.id}"),
        labelled_cell(
            "Last snapshot",
            rx.cond(last > 0, ago(last), "never"),
            id=f"last-snapshot-{row.id}",
        ),
        *(
            labelled_cell(key, row.returns[n], id=f"return-{key}-{row.id}")  # type: ignore[index]  # a list Var, indexed in the page
            for n, key in enumerate(charts.RANGES)
        ),
        labelled_cell("Max drawdown", row.drawdown, id=f"drawdown-{row.id}"),
    )


def sort_header(label: str, column: str) -> rx.Component:
    """A column header that sorts the table by it; the arrow shows the order."""
    live = DashboardLiveState
    arrow = rx.cond(live.sort_column == column, rx.cond(live.sort_descending, " ↓", " ↑"), "")
    return rx.button(
        label,
        arrow,
        variant="ghost",
        size="1",
        on_click=live.sort_by(column),
        id=f"sort-{column}",
        aria_label=f"Sort by {label}",
    )


def next_step(text: str, label: str, href: str, id_: str) -> rx.Component:
    return rx.callout(rx.text(text, " ", rx.link(label, href=href, weight="bold")), icon="info", id=id_, width="100%")


def chart_or_first_steps() -> rx.Component:
    return rx.match(
        DashboardState.setup,
        (
            "account",
            next_step(
                "Welcome! Start by adding the brokerage account your bots trade on:",
                "add an account",
                "/accounts",
                "first-step",
            ),
        ),
        (
            "strategy",
            next_step(
                "Next, create a strategy for your account: it gets the token your bot posts with.",
                "Create a strategy",
                "/strategies",
                "first-step",
            ),
        ),
        rx.cond(
            DashboardLiveState.charted,
            rx.card(
                live_chart(
                    figure=DashboardState.figure,
                    tail=DashboardLiveState.tail,
                    on_resync=DashboardState.resync,
                    id="equity-chart",
                ),
                width="100%",
            ),
            bot_instructions(
                DashboardState.snippet,
                rx.text(
                    "Use the token shown when you created the strategy, or get a new one on ",
                    rx.link("Strategies", href="/strategies"),
                    " (New token).",
                ),
            ),
        ),
    )


def status_table() -> rx.Component:
    headers: list[str | rx.Component] = [
        sort_header("Strategy", "name"),
        "Account",
        sort_header("Status", "status"),
        sort_header("Last snapshot", "last"),
        *(sort_header(key, key) for key in charts.RANGES),
        sort_header("Max drawdown", "drawdown"),
    ]
    return rx.vstack(
        stacked_table(headers, DashboardLiveState.statuses, status_row, id_="status-table"),
        rx.text(
            "Each strategy's time-weighted return on its margin balance, net of deposits and withdrawals: hourly "
            "points for 24H to 30D, daily closes for 1Y and All; its max drawdown over daily closes.",
            size="1",
            color_scheme="gray",
        ),
        width="100%",
        spacing="2",
    )


def dashboard_page() -> rx.Component:
    return layout(
        rx.vstack(
            status_timer(DashboardLiveState.tick),
            rx.flex(
                rx.heading("Dashboard", size="7"),
                rx.spacer(),
                range_picker(DashboardState.range_key, DashboardState.set_range),
                width="100%",
                align="center",
                wrap="wrap",
                spacing="3",
            ),
            equity_card(),
            chart_or_first_steps(),
            rx.cond(
                DashboardLiveState.statuses.length() > 0,
                rx.vstack(rx.heading("Strategies", size="4"), status_table(), width="100%"),
            ),
            share_links_section("your combined portfolio"),
            time_zone_note(),
            spacing="4",
            width="100%",
        )
    )
