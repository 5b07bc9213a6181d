"""/dashboard: combined equity, PnL over the chosen range, the wallet balance chart and each strategy's status.

Two states: DashboardState holds the (large) figure, sent on load and range changes only; DashboardLiveState
holds the small live part (numbers, statuses, the chart's tail) that each stored snapshot updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import anyio
import reflex as rx

from projectalgo import charts, dashboard, strategies
from projectalgo.clock import utcnow
from projectalgo.components.layout import layout
from projectalgo.components.live_chart import live_chart
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from projectalgo.state import AuthState, CurrentUser, in_session


@dataclass
class StatusRow:
    id: int
    name: str
    account: str
    status: str
    last_snapshot_ms: int  # 0: never


class DashboardLiveState(AuthState):
    equity: str = "—"
    change: str = "—"
    change_up: bool = True
    percent: str = "—"
    last_update: str = ""  # ISO 8601, shown in the viewer's time zone
    range_label: str = charts.DEFAULT_RANGE
    statuses: list[StatusRow] = []
    tail: dict = {}
    _wallets: dict[int, tuple[int, Decimal]] = {}
    _start: Decimal = Decimal(0)
    _bucket_ms: int = charts.HOUR_MS
    _accounts: dict[int, int] = {}  # strategy id -> account id, for the strategies this tab may see
    _seq: int = 0

    def _show(self, equity: dashboard.Equity, win: dashboard.Window, rows: list[StatusRow], accounts: dict) -> int:
        self._wallets = dict(equity.latest)
        self._start, self._bucket_ms, self._accounts = equity.start, win.bucket_ms, accounts
        self.range_label, self.statuses = win.key, rows
        self._refresh_numbers()
        return self._seq

    def _total(self) -> Decimal:
        return charts.combined_equity({account: wallet for account, (_, wallet) in self._wallets.items()})

    def _refresh_numbers(self) -> None:
        total = self._total()
        moved = charts.change(self._start, total)
        self.equity = charts.money(total) if self._wallets else "—"
        self.change = charts.money(moved.amount) if self._wallets else "—"
        self.change_up = moved.amount >= 0
        self.percent = f"{moved.percent:+.2f}%" if moved.percent is not None and self._wallets else "—"
        latest_ms = max((at for at, _ in self._wallets.values()), default=None)
        self.last_update = charts.iso_time(latest_ms) if latest_ms else ""

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        """A new snapshot of one of this tab's strategies (pushed by the live hub)."""
        if snapshot.strategy_id not in self._accounts:
            return
        account = snapshot.account_id
        if account not in self._wallets or self._wallets[account][0] <= snapshot.at_ms:
            self._wallets[account] = (snapshot.at_ms, snapshot.wallet_balance)
        self._seq += 1
        self._refresh_numbers()
        bucket = snapshot.at_ms - snapshot.at_ms % self._bucket_ms
        self.tail = charts.equity_tail(bucket, self._total(), self._seq)
        self.statuses = [
            StatusRow(r.id, r.name, r.account, "live", snapshot.at_ms) if r.id == snapshot.strategy_id else r
            for r in self.statuses
        ]


class DashboardState(AuthState):
    range_key: str = charts.DEFAULT_RANGE
    figure: dict = {}

    async def _load(self, member: CurrentUser) -> None:
        settings = services().settings
        own = await in_session(lambda session: strategies.list_strategies(session, member.actor))
        active = [s for s in own if not s.archived]
        now = epoch_ms(utcnow())
        first = min((epoch_ms(s.created_at) for s in active), default=now)
        win = dashboard.window(self.range_key, now, first)
        accounts = {s.id: s.account_id for s in active}
        equity = await anyio.to_thread.run_sync(
            dashboard.equity, services().snapshot_store, list(accounts.items()), win
        )
        stale_ms = settings.stale_after_minutes * 60_000
        rows = [
            StatusRow(
                s.id,
                s.name,
                s.account_name,
                charts.status(epoch_ms(s.last_snapshot_at) if s.last_snapshot_at else None, now, stale_ms),
                epoch_ms(s.last_snapshot_at) if s.last_snapshot_at else 0,
            )
            for s in active
        ]
        live = await self.get_state(DashboardLiveState)
        seq = live._show(equity, win, rows, accounts)
        self.figure = charts.equity_figure(equity.series, seq, f"Wallet balance — {win.key}")
        services().watchers.watch(
            self.router.session.client_token, DashboardLiveState, accounts, member.login_session_id
        )

    async def _guarded_load(self) -> rx.event.EventSpec | None:
        member = await self._member()
        if not isinstance(member, CurrentUser):
            return member
        await self._load(member)
        return None

    @rx.event
    async def open_dashboard(self) -> rx.event.EventSpec | None:
        return await self._guarded_load()

    @rx.event
    async def set_range(self, range_key: str | list[str]) -> rx.event.EventSpec | None:
        self.range_key = (
            range_key if isinstance(range_key, str) and range_key in charts.RANGES else charts.DEFAULT_RANGE
        )
        return await self._guarded_load()

    @rx.event
    async def resync(self) -> rx.event.EventSpec | None:
        """The chart missed live updates (e.g. after a reconnect): send the whole figure again."""
        return await self._guarded_load()


def range_picker(current: rx.Var[str], on_change: rx.EventHandler) -> rx.Component:
    return rx.segmented_control.root(
        *(rx.segmented_control.item(key, value=key) for key in charts.RANGES),
        value=current,
        on_change=on_change,
        size="1",
        aria_label="Time range",
    )


def stat(label: rx.Component | str, value: rx.Component, id_: str) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", color_scheme="gray"), rx.box(value, id=id_), spacing="1")


def equity_card() -> rx.Component:
    live = DashboardLiveState
    return rx.card(
        rx.grid(
            stat("Equity", rx.heading(live.equity, size="7"), "equity"),
            stat(
                rx.text("Profit/Loss ", live.range_label),
                rx.heading(
                    rx.cond(live.change_up, "↑ ", "↓ "),
                    live.change,
                    size="6",
                    color_scheme=rx.cond(live.change_up, "green", "red"),
                ),
                "pnl",
            ),
            stat(rx.text("% change ", live.range_label), rx.heading(live.percent, size="6"), "pnl-percent"),
            stat(
                "Last update",
                rx.cond(
                    live.last_update != "",
                    rx.moment(live.last_update, format="YYYY-MM-DD HH:mm:ss", local=True),
                    rx.text("no snapshot yet"),
                ),
                "last-update",
            ),
            columns=rx.breakpoints(initial="1", sm="2", md="4"),
            spacing="4",
        ),
        width="100%",
    )


def status_badge(status: rx.Var[str]) -> rx.Component:
    return rx.badge(status, color_scheme=rx.match(status, ("live", "green"), ("stale", "amber"), "gray"))


def status_row(row: StatusRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.link(row.name, href=f"/strategies/{row.id}")),
        rx.table.cell(row.account),
        rx.table.cell(status_badge(row.status), id=f"status-{row.id}"),
        rx.table.cell(rx.cond(row.last_snapshot_ms > 0, rx.moment(row.last_snapshot_ms, from_now=True), "never")),
    )


def dashboard_page() -> rx.Component:
    return layout(
        rx.vstack(
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
            rx.card(
                live_chart(
                    figure=DashboardState.figure,
                    tail=DashboardLiveState.tail,
                    on_resync=DashboardState.resync,
                    id="equity-chart",
                ),
                width="100%",
            ),
            rx.heading("Strategies", size="4"),
            rx.cond(
                DashboardLiveState.statuses.length() > 0,
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *(
                                    rx.table.column_header_cell(h)
                                    for h in ("Strategy", "Account", "Status", "Last snapshot")
                                )
                            )
                        ),
                        rx.table.body(rx.foreach(DashboardLiveState.statuses, status_row)),
                        width="100%",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
                rx.text("No strategies yet. ", rx.link("Create one", href="/strategies"), " and point a bot at it."),
            ),
            spacing="4",
            width="100%",
        )
    )
