"""/share/<token>: a share link's read-only page, for anyone holding the link (no sign-in). It shows one strategy's
performance, or its owner's combined portfolio, under the label the owner chose: percentages and curves, amounts
only if the owner allowed them, never a name, email, account, token, symbol or any other strategy.

Every public var here reaches the browser, so amounts are never put in one unless the link allows them. The link
is resolved from the URL's token at every load, tick and notice; a revoked or expired link empties the page and
says so, and its pushes stop (live.allowed_viewers checks the link before each one). Loads are rate-limited per
client (sharing.take_view) and read what the member's own pages read for a range (bounded).
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import anyio
import reflex as rx
from reflex.event import EventSpec, EventType

from projectalgo import charts, dashboard, flows, liveness, sharing
from projectalgo.clock import utcnow
from projectalgo.components.layout import figure_card
from projectalgo.components.live_chart import live_chart
from projectalgo.components.status import ago, range_picker, status_badge, status_timer
from projectalgo.live import Viewer, share_link_topic
from projectalgo.live_push import live_push
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, epoch_ms
from projectalgo.state import event_handler, failure_message, in_session

GONE = {
    "revoked": "This link was revoked.",
    "expired": "This link has expired.",
    "disabled": "This link is no longer available.",
}
NO_FIGURE: dict[str, object] = {}


def _token(state: rx.State) -> str:
    return state.router.url.path.rstrip("/").rsplit("/", 1)[-1]


async def _resolved(state: rx.State) -> sharing.Resolved | None:
    token, now = _token(state), utcnow()
    return await in_session(lambda session: sharing.resolve(session, token, now=now))


class SharedLiveState(rx.State):
    """The small, live part of a shared page: what each stored snapshot changes (percentages, and the balance only
    when the link shows amounts)."""

    status: rx.Field[str] = rx.field("never")
    last_update: rx.Field[str] = rx.field("")  # the newest snapshot's time, ISO 8601
    twr: rx.Field[str] = rx.field("—")  # the range's return so far
    balance: rx.Field[str] = rx.field("")  # a portfolio link's combined balance, with amounts only
    change: rx.Field[str] = rx.field("")  # its profit in the range, with amounts only
    tail: rx.Field[dict] = rx.field(default_factory=dict)
    _link_id: int = 0  # the link this tab shows, while it is active; 0: none
    _amounts: bool = False
    _strategy: sharing.LiveReturn = sharing.LiveReturn()
    _portfolio: dashboard.LiveEquity | None = None
    _last_ms: int = 0
    _since_figures: int = 0

    def _viewer(self) -> Viewer | None:
        return Viewer.link(self._link_id) if self._link_id else None

    def _restatus(self, now_ms: int) -> None:
        status = liveness.status(self._last_ms or None, now_ms, services().settings)
        if status != self.status:
            self.status = status

    def _seen(self, at_ms: int) -> None:
        if at_ms > self._last_ms:
            self._last_ms, self.last_update = at_ms, charts.iso_time(at_ms)
        self._restatus(epoch_ms(utcnow()))

    def _show_portfolio(self) -> None:
        assert self._portfolio is not None
        numbers = self._portfolio.numbers()
        self.twr = numbers.percent
        if self._amounts:
            self.balance, self.change = numbers.equity, numbers.change

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        """A new snapshot of what the link shows (pushed by the live hub, after it checked the link)."""
        if self._portfolio is not None:
            if (combined := self._portfolio.apply(snapshot)) is None:
                return
            self._portfolio, tail = combined
            self._show_portfolio()
            if self._amounts:  # the combined balance's tail is an amount
                self.tail = tail
        else:
            if (applied := self._strategy.apply(snapshot)) is None:
                return
            self._strategy, self.tail = applied
            self.twr = self._strategy.twr
        self._seen(snapshot.at_ms)
        self._since_figures += 1

    async def _apply_notice(self, topic: str) -> None:
        """The link changed (revoked): read it again; a link that no longer shows anything empties the page."""
        if self._link_id:
            await (await self.get_state(SharedPageState))._check_link()

    @event_handler
    async def tick(self, _shown: str = "") -> EventType[()] | None:
        """The page's timer, once a minute: the link checked again (it may have expired), the status as of now;
        the figures computed again when snapshots came (a server-side step: no browser can ask for it in a
        loop). A tab this worker does not push to (its websocket came from another worker) loads again."""
        if not self._link_id:
            return None
        page = await self.get_state(SharedPageState)
        if (resolved := await page._check_link()) is None:
            return None
        self._restatus(epoch_ms(utcnow()))
        if not live_push.watching(self.router.session.client_token):
            return SharedPageState.resync
        if self._since_figures:
            await page._show(resolved, live=self)
        return None


class SharedPageState(rx.State):
    gone: rx.Field[str] = rx.field("")  # why the page shows nothing: no such link, revoked, expired, rate-limited
    shown: rx.Field[bool] = rx.field(False)
    label: rx.Field[str] = rx.field("")
    portfolio: rx.Field[bool] = rx.field(False)
    amounts: rx.Field[bool] = rx.field(False)
    range_key: rx.Field[str] = rx.field(charts.DEFAULT_RANGE)
    drawdown: rx.Field[str] = rx.field("—")
    drawdown_dates: rx.Field[str] = rx.field("")
    best_day: rx.Field[str] = rx.field("—")
    worst_day: rx.Field[str] = rx.field("—")
    winning_days: rx.Field[str] = rx.field("—")
    sharpe: rx.Field[str] = rx.field("—")
    profit: rx.Field[str] = rx.field("")  # with amounts only
    deposits: rx.Field[str] = rx.field("")
    withdrawals: rx.Field[str] = rx.field("")
    figure: rx.Field[dict] = rx.field(default_factory=dict)  # the live chart: returns, or the combined balance
    days_figure: rx.Field[dict] = rx.field(default_factory=dict)
    zone: rx.Field[str] = rx.field("UTC")  # the browser's time zone (IANA name), once it has said it

    async def _empty(self, why: str) -> None:
        """Nothing of the link stays on the page, its live updates stop, and the page says why."""
        self.reset()
        (await self.get_state(SharedLiveState)).reset()
        live_push.forget(self.router.session.client_token)
        self.gone = why

    async def _check_link(self) -> sharing.Resolved | None:
        """The URL's link, if it still shows something; else the page is emptied (None)."""
        resolved = await _resolved(self)
        if resolved is None or resolved.shown is None:
            await self._empty(GONE.get(resolved.status, sharing.NOT_FOUND) if resolved else sharing.NOT_FOUND)
            return None
        return resolved

    async def _load(self) -> None:
        """Count this client's load (rate-limited), resolve the link, register the tab and show the range."""
        range_key, client, now = self.range_key, self.router.session.client_ip or "unknown", utcnow()
        try:
            await in_session(lambda session: sharing.take_view(session, client, now=now))
        except Exception as error:  # noqa: BLE001 - failure_message logs what is not a refusal
            await self._empty(failure_message(error))
            return
        resolved = await self._check_link()
        if resolved is None:
            return
        self.range_key = range_key
        await in_session(lambda session: sharing.record_view(session, resolved.link_id, now=now))
        await self._show(resolved, live=await self.get_state(SharedLiveState))

    async def _show(self, resolved: sharing.Resolved, live: SharedLiveState) -> None:
        shown = resolved.shown
        assert shown is not None  # _check_link returns only links that show something
        ids = [sid for sid, _ in shown.strategy_accounts]
        # Watched before anything is read, as the members' pages do: a snapshot stored meanwhile is pushed after.
        live_push.watch(
            self.router.session.client_token,
            SharedLiveState,
            ids,
            Viewer.link(shown.link_id),
            [share_link_topic(shown.link_id)],
        )
        self.gone, self.shown, self.label = "", True, shown.label
        self.portfolio, self.amounts = shown.portfolio, shown.show_amounts
        live._link_id, live._amounts, live._since_figures = shown.link_id, shown.show_amounts, 0
        if shown.portfolio:
            await self._show_portfolio(shown, live)
        else:
            await self._show_strategy(shown, live)

    async def _show_strategy(self, shown: sharing.Shown, live: SharedLiveState) -> None:
        ((strategy_id, _),) = shown.strategy_accounts
        store, settings, range_key, now = services().snapshot_store, services().settings, self.range_key, utcnow()
        zone = flows.viewer_zone(self.zone) or UTC

        def read() -> tuple[sharing.SharedFigures, list[Snapshot], dict[str, object], dict[str, object]]:
            win = dashboard.range_window(store, range_key, epoch_ms(now), [strategy_id])
            snapshots = dashboard.opening(store, strategy_id, win) + dashboard.snapshots_in(store, strategy_id, win)
            corrections = shown.corrections.get(strategy_id, [])
            points = flows.points_of(services().engine, strategy_id, snapshots)
            found = flows.strategy_figures(snapshots, corrections, settings, zone, points, coarse=win.source != "raw")
            figures = sharing.shared_figures(found, amounts=shown.show_amounts, zone=zone)
            # The symbol is not named: "Holding the symbol".
            returns = charts.returns_figure(figures.curve, figures.hold, "") if len(figures.curve) > 1 else NO_FIGURE
            days = charts.daily_pnl_figure if shown.show_amounts else charts.daily_returns_figure
            return figures, snapshots, returns, days(figures.days) if figures.days else NO_FIGURE

        figures, snapshots, returns, days = await anyio.to_thread.run_sync(read)
        last = snapshots[-1] if snapshots else None
        opening_price = next((s.last_price for s in snapshots if s.last_price > 0), Decimal(0))
        live._strategy = sharing.LiveReturn(
            strategy_id, last, figures.growth, opening_price, live._strategy.seq, flows.tolerance(settings)
        )
        live._portfolio = None
        live.twr = figures.twr
        live._last_ms = 0
        if last is not None:
            live._seen(last.at_ms)
        self.figure = {**returns, "seq": live._strategy.seq} if returns else NO_FIGURE
        self.days_figure = days
        self.drawdown, self.drawdown_dates = figures.drawdown, figures.drawdown_dates
        self.best_day, self.worst_day = figures.best_day, figures.worst_day
        self.winning_days, self.sharpe = figures.winning_days, figures.sharpe
        self.profit, self.deposits, self.withdrawals = figures.profit, figures.deposits, figures.withdrawals

    async def _show_portfolio(self, shown: sharing.Shown, live: SharedLiveState) -> None:
        store, settings, range_key, now = services().snapshot_store, services().settings, self.range_key, utcnow()
        pairs = list(shown.strategy_accounts)
        rules = dashboard.FlowRules(flows.tolerance(settings), shown.corrections)

        def read() -> tuple[dashboard.Window, dashboard.Equity]:
            win = dashboard.range_window(store, range_key, epoch_ms(now), [sid for sid, _ in pairs])
            return win, dashboard.equity(store, pairs, win, rules)

        win, equity = await anyio.to_thread.run_sync(read)
        seq = live._portfolio.seq if live._portfolio else 0
        live._portfolio = dashboard.LiveEquity(
            dict(pairs),
            dict(equity.latest),
            equity.start,
            win.bucket_ms,
            seq,
            equity.net_flows,
            dict(equity.flow_last),
            rules.tolerance,
        )
        live._show_portfolio()
        live._last_ms = 0
        if equity.latest:
            live._seen(max(at for at, _ in equity.latest.values()))
        self.figure = NO_FIGURE
        if shown.show_amounts and equity.series:
            title = f"Combined balance — {win.key}"
            self.figure = await anyio.to_thread.run_sync(charts.equity_figure, equity.series, seq, title)
        self.days_figure = NO_FIGURE

    @event_handler
    async def open_share(self) -> EventSpec | None:
        self.range_key = charts.DEFAULT_RANGE
        await self._load()
        return None

    @event_handler
    async def set_range(self, range_key: str | list[str]) -> EventSpec | None:
        self.range_key = charts.range_key(range_key)
        await self._load()
        return None

    @event_handler
    async def resync(self) -> EventSpec | None:
        await self._load()
        return None

    @event_handler
    async def set_time_zone(self, name: str) -> EventSpec | None:
        """The browser says its time zone when the page shows: days and times follow it (an unknown name is
        ignored: they stay in UTC, as the page says). A load of its own: rate-limited like the others."""
        if flows.viewer_zone(name) is not None and name != self.zone:
            self.zone = name
            await self._load()
        return None


def _figures() -> rx.Component:
    p, live = SharedPageState, SharedLiveState
    return rx.grid(
        figure_card("Return (time-weighted)", live.twr, "share-twr"),
        rx.cond(p.amounts & p.portfolio, figure_card("Balance", live.balance, "share-balance")),
        rx.cond(p.amounts & p.portfolio, figure_card("Profit", live.change, "share-change")),
        rx.cond(p.amounts & ~p.portfolio, figure_card("Profit", p.profit, "share-profit")),
        rx.cond(p.amounts & ~p.portfolio, figure_card("Deposits", p.deposits, "share-deposits")),
        rx.cond(p.amounts & ~p.portfolio, figure_card("Withdrawals", p.withdrawals, "share-withdrawals")),
        rx.cond(
            ~p.portfolio,
            rx.fragment(
                rx.card(
                    rx.text("Max drawdown", size="1", color_scheme="gray"),
                    rx.text(p.drawdown, size="4", weight="bold", id="share-drawdown"),
                    rx.text(p.drawdown_dates, size="1", color_scheme="gray"),
                ),
                figure_card("Best day", p.best_day, "share-best-day"),
                figure_card("Worst day", p.worst_day, "share-worst-day"),
                figure_card("Winning days", p.winning_days, "share-winning-days"),
                figure_card("Sharpe-like ratio", p.sharpe, "share-sharpe"),
            ),
        ),
        columns=rx.breakpoints(initial="2", sm="3", md="4"),
        spacing="3",
        width="100%",
    )


def _chart(figure: rx.Var[dict], id_: str, tail: rx.Var[dict] | dict, **props: object) -> rx.Component:
    return rx.cond(
        figure.length() > 0,  # type: ignore[attr-defined]
        rx.card(live_chart(figure=figure, tail=tail, id=id_, **props), width="100%"),
    )


def _shown() -> rx.Component:
    p, live = SharedPageState, SharedLiveState
    return rx.vstack(
        status_timer(live.tick),
        rx.flex(
            rx.vstack(
                rx.heading(
                    rx.cond(p.label != "", p.label, rx.cond(p.portfolio, "Shared portfolio", "Shared strategy")),
                    size="7",
                    id="share-label",
                    overflow_wrap="anywhere",
                ),
                rx.text(
                    rx.cond(p.portfolio, "A combined portfolio's performance", "A strategy's performance"),
                    ", net of deposits and withdrawals, read-only. Days and times in ",
                    p.zone,
                    ".",
                    size="2",
                    color_scheme="gray",
                ),
                spacing="1",
                min_width="0",
                flex="1 1 16em",
            ),
            rx.box(status_badge(live.status), id="share-status"),
            range_picker(p.range_key, p.set_range),
            width="100%",
            align="center",
            wrap="wrap",
            spacing="3",
        ),
        rx.text(
            "Last update ",
            rx.cond(live.last_update != "", ago(live.last_update), "never"),
            size="2",
            color_scheme="gray",
            id="share-last-update",
        ),
        _figures(),
        _chart(p.figure, "share-chart", live.tail, on_resync=p.resync),
        _chart(p.days_figure, "share-days-chart", NO_FIGURE),
        spacing="4",
        width="100%",
        # The browser says its time zone (Intl's IANA name): days and times follow it.
        on_mount=rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone", callback=p.set_time_zone),
    )


def shared_page() -> rx.Component:
    """Not the members' layout: no navigation, nothing of whoever may be signed in on this browser."""
    return rx.container(
        rx.vstack(
            rx.text("ProjectAlgo", weight="bold", size="3"),
            rx.cond(
                SharedPageState.gone != "",
                rx.callout(SharedPageState.gone, icon="info", color_scheme="amber", id="share-gone"),
                rx.cond(SharedPageState.shown, _shown(), rx.text("Loading…", color_scheme="gray")),
            ),
            spacing="4",
            width="100%",
            padding_y="1em",
        ),
        size="4",
    )
