"""The group board (/group): strategies their owners put on it, ranked by return for every signed-in member.

A board line holds ratios only (returns per range, the deepest drawdown), a status, the newest snapshot's time and
the name it is shown under (the owner's alias for it, or the owner's name): never an amount, an account, a token,
the strategy's own name or an email. A strategy is shown while it is not archived and its owner is enabled and a
member (an active membership, or a moderator or admin, who never pay): whoever leaves the group leaves the board.

The board holds MAX_ENTRIES strategies at most. Its figures are the dashboard's comparison (dashboard.comparison:
three bounded reads per strategy, plus its newest snapshot), kept FIGURES_MAX_AGE_MS per worker (BoardFigures),
since every open board reads them again each minute. Who is on it is read from the database every time, so
leaving it takes effect at once. Plain Python on a SQL session; no Reflex here.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo import admin, charts, dashboard, liveness, members, memberships, strategies
from projectalgo.clock import utcnow
from projectalgo.errors import InvalidInputError, NotAllowedError, NotFoundError
from projectalgo.members import Actor
from projectalgo.models import AuditEntry, BoardEntry, Membership, Strategy, User, id_of, max_length
from projectalgo.settings import Settings
from projectalgo.snapshots import SnapshotStore

MAX_ENTRIES = 200  # strategies on the board: each refresh reads 4 bounded things per strategy (BoardFigures)
ALIAS_MAX_LENGTH = max_length(BoardEntry, "alias")
FIGURES_MAX_AGE_MS = 30_000  # open boards refresh each minute: a strategy's figures are read twice a minute at most
# Unicode categories an alias may not hold: control, format (zero-width, bidi overrides), private use, surrogates.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Co", "Cs"}
TAKE_OFF_ACTION = "take off group board"  # the audit log's name for a moderator's removal


class BoardError(InvalidInputError):
    """A request the member can correct; the message is safe to show."""


def clean_alias(alias: str) -> str:
    """The alias as shown: trimmed, inner spaces collapsed; "" (the owner's name). Refuses hidden characters (a
    control, zero-width or direction-changing one) and more than ALIAS_MAX_LENGTH characters."""
    if any(unicodedata.category(c) in _HIDDEN_CATEGORIES for c in alias):
        raise BoardError("The alias may not contain control or invisible characters.")
    alias = " ".join(alias.split())
    if len(alias) > ALIAS_MAX_LENGTH:
        raise BoardError(f"The alias must be at most {ALIAS_MAX_LENGTH} characters long.")
    return alias


def _refuse_taken_alias(session: Session, alias: str, *, strategy_id: int, owner_id: int) -> None:
    """An alias names one line of the board, and nobody else: not another line's alias, nor another member's name
    (whatever the case), so nobody passes for someone else."""
    if not alias:
        return
    wanted = alias.casefold()
    aliases = session.scalars(select(col(BoardEntry.alias)).where(col(BoardEntry.strategy_id) != strategy_id))
    if any(a.casefold() == wanted for a in aliases):
        raise BoardError(f"Another strategy on the board is already called {alias!r}; pick another alias.")
    names = session.scalars(
        select(col(User.name)).where(col(User.id) != owner_id, func.lower(User.name) == alias.lower())
    )
    if any(n.casefold() == wanted for n in names):
        raise BoardError("That is another member's name; pick another alias.")


def _own_active_strategy(session: Session, actor: Actor, strategy_id: int) -> Strategy:
    strategy = strategies.own_strategy(session, actor, strategy_id)  # anyone else's: "No such strategy."
    if strategy.archived_at is not None:
        raise BoardError(f"{strategy.name!r} is archived: restore it to put it on the board.")
    return strategy


def join(session: Session, actor: Actor, strategy_id: int, *, alias: str = "") -> BoardEntry:
    """Put the actor's own strategy on the board, shown as `alias` ("" for the owner's name)."""
    strategy = _own_active_strategy(session, actor, strategy_id)
    if session.get(BoardEntry, strategy_id) is not None:
        raise BoardError(f"{strategy.name!r} is already on the board.")
    if (session.scalar(select(func.count()).select_from(BoardEntry)) or 0) >= MAX_ENTRIES:
        raise BoardError(f"The board is full ({MAX_ENTRIES} strategies); try again when one leaves it.")
    alias = clean_alias(alias)
    _refuse_taken_alias(session, alias, strategy_id=strategy_id, owner_id=actor.user_id)
    entry = BoardEntry(strategy_id=id_of(strategy), alias=alias, joined_at=utcnow())
    session.add(entry)
    try:
        session.flush()
    except IntegrityError:  # the same strategy put on by another request meanwhile
        raise BoardError(f"{strategy.name!r} is already on the board.") from None
    return entry


def set_alias(session: Session, actor: Actor, strategy_id: int, *, alias: str) -> BoardEntry:
    """Change what the actor's strategy on the board is shown as ("" for the owner's name)."""
    _own_active_strategy(session, actor, strategy_id)
    entry = session.get(BoardEntry, strategy_id)
    if entry is None:
        raise BoardError("That strategy is not on the board: put it on first.")
    alias = clean_alias(alias)
    _refuse_taken_alias(session, alias, strategy_id=strategy_id, owner_id=actor.user_id)
    entry.alias = alias
    session.add(entry)
    session.flush()
    return entry


def leave(session: Session, actor: Actor, strategy_id: int) -> bool:
    """Take the actor's own strategy off the board (archived ones too); whether it was on it."""
    strategies.own_strategy(session, actor, strategy_id)
    return remove_entry(session, strategy_id)


def remove_entry(session: Session, strategy_id: int) -> bool:
    """Delete a strategy's board entry, if any (no rights checked: for callers that checked them)."""
    entry = session.get(BoardEntry, strategy_id)
    if entry is None:
        return False
    session.delete(entry)
    session.flush()
    return True


def take_off(session: Session, actor: Actor | None, strategy_id: int, *, reason: str = "") -> None:
    """A moderator or admin takes a strategy off the board (an offensive alias, say): audited, with the reason."""
    if actor is None or not actor.is_moderator:
        raise NotAllowedError("Only moderators and admins may take a strategy off the board.")
    if len(reason) > admin.REASON_MAX_LENGTH:
        raise BoardError(f"The reason must be at most {admin.REASON_MAX_LENGTH} characters long.")
    entry = session.get(BoardEntry, strategy_id)
    strategy = session.get(Strategy, strategy_id)
    if entry is None or strategy is None:
        raise NotFoundError("No such strategy on the board.")
    shown = entry.alias or "the owner's name"
    session.delete(entry)
    session.add(
        AuditEntry(
            at=utcnow(),
            actor_id=actor.user_id,
            action=TAKE_OFF_ACTION,
            target_user_id=strategy.owner_id,
            target=f"strategy {strategy_id} ({shown})"[: admin.TARGET_MAX_LENGTH],
            reason=reason.strip(),
            outcome="done",
        )
    )
    session.flush()


@dataclass(frozen=True)
class OwnEntry:
    """One of the member's own strategies, as the board's "Your strategies" section lists it."""

    strategy_id: int
    name: str
    on_board: bool
    alias: str


def own_entries(session: Session, actor: Actor) -> list[OwnEntry]:
    """The actor's strategies that are not archived, and whether and how each is on the board."""
    own = [s for s in strategies.list_strategies(session, actor) if not s.archived]
    entries = {
        e.strategy_id: e
        for e in session.scalars(select(BoardEntry).where(col(BoardEntry.strategy_id).in_([s.id for s in own])))
    }
    return [OwnEntry(s.id, s.name, s.id in entries, entries[s.id].alias if s.id in entries else "") for s in own]


def may_see_board(session: Session, login_session_id: int, *, idle: timedelta) -> bool:
    """Whether that sign-in may see the board now: it lasts, its user is enabled and a member."""
    user = members.live_session_user(session, login_session_id, idle=idle)
    return user is not None and memberships.status(session, user).active


@dataclass(frozen=True)
class Entrant:
    """A strategy the board shows, under the name it is shown as."""

    strategy_id: int
    shown_as: str


def entrants(session: Session, now: datetime | None = None) -> list[Entrant]:
    """The strategies the board shows now: on it, not archived, of an enabled member (an active membership, or
    exempt); in the order they joined, MAX_ENTRIES at most. Shown under their alias, or their owner's name: an
    owner's lines without an alias are numbered after the first ("Ann", "Ann (2)"), so each reads apart."""
    now = now or utcnow()
    rows = session.execute(
        select(BoardEntry, User)
        .join(Strategy, col(Strategy.id) == BoardEntry.strategy_id)
        .join(User, col(User.id) == Strategy.owner_id)
        .where(col(Strategy.archived_at).is_(None), col(User.disabled_at).is_(None))
        .order_by(col(BoardEntry.joined_at), col(BoardEntry.strategy_id))
        .limit(MAX_ENTRIES)
    ).all()
    owners = {id_of(user) for _, user in rows}
    ends: dict[int, datetime] = dict(
        session.execute(  # (user id, its latest end) pairs
            select(col(Membership.user_id), func.max(Membership.ends_at))
            .where(col(Membership.user_id).in_(owners))
            .group_by(col(Membership.user_id))
        ).all()
    )
    shown: list[Entrant] = []
    unaliased: dict[int, int] = {}  # owner id -> their lines shown under their name so far
    for entry, user in rows:
        status = memberships.MembershipStatus(memberships.is_exempt(user), ends.get(id_of(user)))
        if not (status.exempt or (status.ends_at is not None and status.ends_at > now)):
            continue
        name = entry.alias
        if not name:
            count = unaliased[id_of(user)] = unaliased.get(id_of(user), 0) + 1
            name = user.name if count == 1 else f"{user.name} ({count})"
        shown.append(Entrant(entry.strategy_id, name))
    return shown


@dataclass(frozen=True)
class BoardLine:
    """One line of the board: ratios and a time, nothing in money."""

    strategy_id: int
    shown_as: str
    status: str  # liveness.STATUSES
    last_snapshot_ms: int  # 0: never
    compared: dashboard.Comparison  # the return per range and the deepest drawdown, as ratios


def ranked(lines: Iterable[BoardLine], range_key: str) -> list[BoardLine]:
    """Best return over the range first; lines without a return over it last (by name, as ties)."""
    key = charts.range_key(range_key)

    def order(line: BoardLine) -> tuple[bool, float, str]:
        ratio = line.compared.returns.get(key)
        return ratio is None, -float(ratio or 0), line.shown_as.casefold()

    return sorted(lines, key=order)


def ranks(lines: Iterable[BoardLine], range_key: str) -> dict[int, int]:
    """Each line's place by return over the range (1 is the best); 0 for a line without a return over it."""
    key = charts.range_key(range_key)
    places = [line for line in ranked(lines, key) if line.compared.returns.get(key) is not None]
    return {line.strategy_id: n for n, line in enumerate(places, start=1)}


@dataclass(frozen=True)
class _Held:
    read_at_ms: int
    compared: dashboard.Comparison
    last_ms: int | None


class BoardFigures:
    """Each board strategy's figures (its comparison and newest snapshot time), read again once older than
    `max_age_ms`: every open board reads the board each minute, and they all show the same figures. Per worker;
    only the board's present strategies are kept. Safe to use from several threads (a race reads twice)."""

    def __init__(self, max_age_ms: int = FIGURES_MAX_AGE_MS) -> None:
        self._max_age_ms = max_age_ms
        self._held: dict[int, _Held] = {}
        self._lock = threading.Lock()

    def stale(self, strategy_ids: Iterable[int], now_ms: int) -> list[int]:
        """Those strategies whose figures must be read (their corrections are needed for it)."""
        with self._lock:
            return [
                sid
                for sid in strategy_ids
                if (held := self._held.get(sid)) is None or now_ms - held.read_at_ms >= self._max_age_ms
            ]

    def lines(
        self,
        store: SnapshotStore,
        shown: list[Entrant],
        rules: dashboard.FlowRules,
        now_ms: int,
        settings: Settings,
    ) -> list[BoardLine]:
        """The board's lines: the figures held, read again for the strategies whose corrections `rules` holds
        (those `stale` named), or never read."""
        with self._lock:
            held = {e.strategy_id: self._held.get(e.strategy_id) for e in shown}
        fresh = {
            sid: _Held(
                now_ms,
                dashboard.comparison(store, sid, now_ms, rules),
                dashboard.latest_ms(store, [sid]).get(sid),
            )
            for sid, found in held.items()
            if found is None or sid in rules.corrections
        }
        held.update(fresh)
        with self._lock:
            self._held = {sid: h for sid, h in (self._held | fresh).items() if sid in held}
        return [
            BoardLine(
                e.strategy_id,
                e.shown_as,
                liveness.status(h.last_ms, now_ms, settings),
                h.last_ms or 0,
                h.compared,
            )
            for e in shown
            if (h := held[e.strategy_id]) is not None
        ]
