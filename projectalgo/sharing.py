"""Share links (issue 16): read-only links to one strategy's performance, or to its owner's combined portfolio,
for people without an account. What a link shows is decided here, on the server, at every read and push.

A link is a random token shown once, when it is made; only its SHA-256 is kept (tokens.py). It shows percentages
and curves, and amounts only if its owner ticked it; it stops when it expires (at most a year), when it is
revoked (by its owner, or by an admin: audited), or when its owner is disabled. Its page is rate-limited per
client (throttle.py: the database, so every worker counts alike). No Reflex here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import delete, false, func, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import admin, analytics, charts, flows, forms, strategies, throttle
from projectalgo.analytics import DailyPnl, FlowCorrection
from projectalgo.errors import InvalidInputError, NotFoundError, RateLimitedError
from projectalgo.members import Actor
from projectalgo.models import Attempt, ShareLink, Strategy, User, id_of, max_length
from projectalgo.snapshots import Snapshot
from projectalgo.tokens import new_token, token_hash

TOKEN_PREFIX = "sh_"
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8  # what lists show of a token, to tell links apart
LABEL_MAX_LENGTH = max_length(ShareLink, "label")
MAX_DAYS = 365
DEFAULT_DAYS = 30
MAX_LIVE_LINKS = 20  # per owner, not revoked nor expired
LISTED = 100  # an owner's links listed for one strategy (or the portfolio), newest first
ADMIN_LISTED = 200
# A shared page's loads per client: every load reads the store (bounded), and anyone on the internet may ask.
VIEWS_PER_WINDOW = 30
VIEW_WINDOW = timedelta(minutes=1)
VIEW_KIND = "share_view"
LAST_VIEWED_EVERY = timedelta(minutes=5)  # last_viewed_at is written at most this often per link
NOT_FOUND = "This link does not exist. Ask whoever shared it for a new one."


def links_showing(session: Session, strategy_id: int, link_ids: Collection[int], *, now: datetime) -> set[int]:
    """Those of the links that show the strategy now: not revoked, not expired, their owner not disabled, and made
    for this strategy, or for the portfolio of its owner while the strategy is not archived."""
    strategy = session.get(Strategy, strategy_id)
    if strategy is None or not link_ids:
        return set()
    for_portfolio = (
        col(ShareLink.strategy_id).is_(None) & (col(ShareLink.owner_id) == strategy.owner_id)
        if strategy.archived_at is None
        else false()
    )
    query = (
        select(col(ShareLink.id))
        .join(User, col(User.id) == ShareLink.owner_id)
        .where(
            col(ShareLink.id).in_(link_ids),
            col(ShareLink.revoked_at).is_(None),
            col(ShareLink.expires_at) > now,
            col(User.disabled_at).is_(None),
            or_(col(ShareLink.strategy_id) == strategy_id, for_portfolio),
        )
    )
    return set(session.scalars(query))


def status(link: ShareLink, now: datetime) -> str:
    """active, expired or revoked."""
    if link.revoked_at is not None:
        return "revoked"
    return "active" if link.expires_at > now else "expired"


@dataclass(frozen=True)
class LinkView:
    """A link as its owner's list shows it (never its token: only its first characters)."""

    id: int
    label: str
    prefix: str
    strategy_id: int | None
    show_amounts: bool
    created_at: datetime
    expires_at: datetime
    last_viewed_at: datetime | None
    status: str


def _view(link: ShareLink, now: datetime) -> LinkView:
    return LinkView(
        id_of(link),
        link.label,
        link.prefix,
        link.strategy_id,
        link.show_amounts,
        link.created_at,
        link.expires_at,
        link.last_viewed_at,
        status(link, now),
    )


def _check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError(f"A link lasts 1 to {MAX_DAYS} days.")
    return days


def create_link(
    session: Session,
    actor: Actor,
    *,
    strategy_id: int | None,
    label: str,
    days: int,
    show_amounts: bool,
    now: datetime,
) -> tuple[LinkView, str]:
    """A new link to the actor's own strategy (or, with None, to their combined portfolio), and its token, which is
    shown now and never again. Anyone else's strategy is not found."""
    if strategy_id is not None:
        strategies.own_strategy(session, actor, strategy_id)
    label = label.strip()
    if len(label) > LABEL_MAX_LENGTH:
        raise InvalidInputError(f"The label must be at most {LABEL_MAX_LENGTH} characters long.")
    live = session.scalar(
        select(func.count())
        .select_from(ShareLink)
        .where(
            col(ShareLink.owner_id) == actor.user_id,
            col(ShareLink.revoked_at).is_(None),
            col(ShareLink.expires_at) > now,
        )
    )
    if (live or 0) >= MAX_LIVE_LINKS:
        raise InvalidInputError(f"You have {MAX_LIVE_LINKS} links in use, the most there may be: revoke one first.")
    token = new_token(TOKEN_PREFIX)
    link = ShareLink(
        owner_id=actor.user_id,
        strategy_id=strategy_id,
        token_hash=token_hash(token),
        prefix=token[:PREFIX_LENGTH],
        label=label,
        show_amounts=show_amounts,
        created_at=now,
        expires_at=now + timedelta(days=_check_days(days)),
    )
    session.add(link)
    session.flush()
    return _view(link, now), token


def owner_links(session: Session, actor: Actor, strategy_id: int | None, *, now: datetime) -> list[LinkView]:
    """The actor's own links to this strategy (None: to their portfolio), newest first."""
    if strategy_id is not None:
        strategies.own_strategy(session, actor, strategy_id)
    where_strategy = (
        col(ShareLink.strategy_id).is_(None) if strategy_id is None else col(ShareLink.strategy_id) == strategy_id
    )
    rows = session.scalars(
        select(ShareLink)
        .where(col(ShareLink.owner_id) == actor.user_id, where_strategy)
        .order_by(col(ShareLink.id).desc())
        .limit(LISTED)
    )
    return [_view(link, now) for link in rows]


@dataclass(frozen=True)
class AdminLinkView:
    link: LinkView
    owner_email: str
    shows: str  # "strategy <name> (#id)" or "portfolio"


def all_links(session: Session, actor: Actor, *, now: datetime) -> list[AdminLinkView]:
    """Every member's links, newest first: admins only."""
    if not actor.is_admin:
        raise admin.AdminError("Only admins may see this.")
    rows = session.execute(
        select(ShareLink, col(User.email), col(Strategy.name))
        .join(User, col(User.id) == ShareLink.owner_id)
        .outerjoin(Strategy, col(Strategy.id) == ShareLink.strategy_id)
        .order_by(col(ShareLink.id).desc())
        .limit(ADMIN_LISTED)
    ).all()
    return [
        AdminLinkView(
            _view(link, now),
            email,
            "portfolio" if link.strategy_id is None else f"strategy {name} (#{link.strategy_id})",
        )
        for link, email, name in rows
    ]


def revoke(session: Session, actor: Actor, link_id: object, *, now: datetime, as_admin: bool = False) -> int:
    """Revoke a link at once: the actor's own, or, `as_admin` (from /admin), any link if the actor is an admin
    (audited). Returns its id; anyone else's is not found. Revoking a revoked link changes nothing."""
    link = session.get(ShareLink, forms.parse_id(link_id))
    if link is None or not (link.owner_id == actor.user_id or (as_admin and actor.is_admin)):
        raise NotFoundError("No such link.")
    if link.revoked_at is None:
        link.revoked_at = now
        if link.owner_id != actor.user_id:
            owner = session.get(User, link.owner_id)
            admin.record_change(session, actor, action="revoke share link", user=owner, target=f"link {link.prefix}")
    return id_of(link)


@dataclass(frozen=True)
class Shown:
    """What an active link shows, read for one request: the strategies in it, with their brokerage accounts (the
    link's strategy, or its owner's non-archived ones), and their flow corrections."""

    link_id: int
    label: str
    portfolio: bool
    show_amounts: bool
    strategy_accounts: tuple[tuple[int, int], ...]
    corrections: dict[int, list[FlowCorrection]]


@dataclass(frozen=True)
class Resolved:
    """A link found by its token: `status` active, expired, revoked (or disabled: its owner was); `shown` only while
    active."""

    link_id: int
    status: str
    shown: Shown | None


def resolve(session: Session, token: str, *, now: datetime) -> Resolved | None:
    """What the link of this token shows now; None for a token of no link."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    link = session.scalars(select(ShareLink).where(col(ShareLink.token_hash) == token_hash(token))).first()
    if link is None:
        return None
    link_id, owner = id_of(link), session.get(User, link.owner_id)
    if (found := status(link, now)) != "active":
        return Resolved(link_id, found, None)
    if owner is None or owner.disabled_at is not None:
        return Resolved(link_id, "disabled", None)
    query = select(col(Strategy.id), col(Strategy.account_id)).where(col(Strategy.owner_id) == link.owner_id)
    if link.strategy_id is None:
        query = query.where(col(Strategy.archived_at).is_(None))
    else:
        query = query.where(col(Strategy.id) == link.strategy_id)
    pairs = tuple((sid or 0, account) for sid, account in session.execute(query.order_by(col(Strategy.id))).all())
    corrections = flows.corrections_by_strategy(session, [sid for sid, _ in pairs])
    shown = Shown(link_id, link.label, link.strategy_id is None, link.show_amounts, pairs, corrections)
    return Resolved(link_id, "active", shown)


def record_view(session: Session, link_id: int, *, now: datetime) -> None:
    """The link was viewed now: written at most every LAST_VIEWED_EVERY (one conditional UPDATE, no read)."""
    session.execute(
        update(ShareLink)
        .where(
            col(ShareLink.id) == link_id,
            or_(col(ShareLink.last_viewed_at).is_(None), col(ShareLink.last_viewed_at) < now - LAST_VIEWED_EVERY),
        )
        .values(last_viewed_at=now)
    )


def take_view(session: Session, client: str, *, now: datetime) -> None:
    """Count one load of a shared page by this client (its address); RateLimitedError past VIEWS_PER_WINDOW a
    window. The client's attempts older than the window are dropped here, so they never pile up."""
    attempt = throttle.record(session, kind=VIEW_KIND, key=client, now=now)
    since = now - VIEW_WINDOW
    seen = throttle.seen_before(session, attempt, since=since)
    if seen.count >= VIEWS_PER_WINDOW and seen.oldest is not None:
        throttle.withdraw(session, attempt)
        wait = seen.oldest + VIEW_WINDOW - now
        raise RateLimitedError(
            f"Too many views from your network. Try again in {throttle.wait_text(wait)}.",
            retry_after_seconds=max(1, int(wait.total_seconds())),
        )
    session.execute(
        delete(Attempt).where(col(Attempt.kind) == VIEW_KIND, col(Attempt.key) == attempt.key, col(Attempt.at) < since)
    )


# --- What a shared page shows: percentages and curves; amounts only when the link allows them -----------------


@dataclass(frozen=True)
class SharedFigures:
    """A strategy's figures for a range as its shared page shows them (text, ready to render; days and times in
    UTC). Without amounts, every figure is a percentage or a ratio, and `days` holds daily returns, not PnL."""

    twr: str
    drawdown: str
    drawdown_dates: str
    best_day: str
    worst_day: str
    winning_days: str
    sharpe: str
    profit: str  # "" without amounts
    deposits: str
    withdrawals: str
    days: tuple[tuple[str, float], ...]
    curve: tuple[tuple[int, float], ...]  # the time-weighted return so far
    hold: tuple[tuple[int, float], ...]  # holding the symbol
    growth: Decimal  # 1 + the range's return: where live updates carry on from


def _day_text(bar: DailyPnl | None, amounts: bool) -> str:
    if bar is None:
        return "—"
    return f"{bar.day.isoformat()}: {charts.money(bar.pnl) if amounts else flows.percent(bar.day_return)}"


def shared_figures(figures: flows.StrategyFigures, *, amounts: bool, zone: tzinfo = UTC) -> SharedFigures:
    """What the shared page shows of a strategy's figures (flows.strategy_figures, in the viewer's zone)."""
    perf, none = figures.performance, "—"
    hold = tuple((point.at_ms, float(point.value)) for point in figures.hold)
    if perf is None:
        blank = "" if not amounts else none
        return SharedFigures(none, none, "", none, none, none, none, blank, blank, blank, (), (), hold, Decimal(1))
    dd = perf.max_drawdown
    dates = f"from {flows.zoned_text(dd.peak_at_ms, zone)} to {flows.zoned_text(dd.trough_at_ms, zone)}" if dd else ""
    winning = "—" if perf.winning_day_share is None else f"{perf.winning_day_share * 100:.0f}% of {len(perf.days)} days"
    return SharedFigures(
        twr=flows.percent(perf.time_weighted_return),
        drawdown=flows.percent(dd.depth) if dd else "0.00%",
        drawdown_dates=dates,
        best_day=_day_text(perf.best_day, amounts),
        worst_day=_day_text(perf.worst_day, amounts),
        winning_days=winning,
        sharpe=none if perf.sharpe is None else f"{perf.sharpe:.2f}",
        profit=charts.money(perf.profit) if amounts else "",
        deposits=charts.money(perf.deposits) if amounts else "",
        withdrawals=charts.money(perf.withdrawals) if amounts else "",
        days=tuple((bar.day.isoformat(), float(bar.pnl if amounts else bar.day_return)) for bar in perf.days),
        curve=tuple((point.at_ms, float(point.value)) for point in perf.curve),
        hold=hold,
        growth=1 + perf.time_weighted_return,
    )


@dataclass(frozen=True)
class LiveReturn:
    """A shared strategy page's return, kept current snapshot by snapshot: each new snapshot's interval return net
    of its flow (as analytics finds it; the owner's corrections count from the page's next recompute), chained.
    The tail it gives holds ratios only, never an amount. Immutable: a page state holds one and replaces it."""

    strategy_id: int = 0
    last: Snapshot | None = None  # the newest point counted
    growth: Decimal = Decimal(1)
    opening_price: Decimal = Decimal(0)  # holding the symbol is measured from it (0: no price yet)
    seq: int = 0
    tolerance: analytics.FlowTolerance = analytics.DEFAULT_TOLERANCE

    def apply(self, snapshot: Snapshot) -> tuple[LiveReturn, dict[str, object]] | None:
        """With a new snapshot counted: the state, and the chart's tail (the strategy's return, and holding the
        symbol); None when it is another strategy's, or not newer than the last counted."""
        if snapshot.strategy_id != self.strategy_id or (self.last and snapshot.at_ms <= self.last.at_ms):
            return None
        growth = self.growth
        if self.last is not None:
            interval = analytics.strategy_performance([self.last, snapshot], self.tolerance)
            growth *= 1 + (interval.time_weighted_return if interval else 0)
        opening = self.opening_price or (snapshot.last_price if snapshot.last_price > 0 else Decimal(0))
        after = replace(self, last=snapshot, growth=growth, opening_price=opening, seq=self.seq + 1)
        points: list[list[object]] = [[0, snapshot.at_ms, charts.drawn_value(float(growth - 1))]]
        if opening > 0:
            points.append([1, snapshot.at_ms, charts.drawn_value(float(snapshot.last_price / opening - 1))])
        return after, {"seq": after.seq, "points": points}

    @property
    def twr(self) -> str:
        return flows.percent(self.growth - 1)
