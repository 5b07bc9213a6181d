"""Brokerage accounts, strategies and their access tokens.

Every function takes the acting user and refuses what is not theirs: another member's account or
strategy answers exactly like one that does not exist, so ids reveal nothing. Admins may read
everything (for support) but change only their own. Plain Python on a SQL session; no Reflex here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Select, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo.clock import utcnow
from projectalgo.errors import InvalidInputError, NotFoundError
from projectalgo.members import Actor
from projectalgo.models import BoardEntry, BrokerageAccount, Strategy, StrategyToken, User, id_of
from projectalgo.snapshots import SYMBOL_MAX_LENGTH
from projectalgo.tokens import new_token, token_hash

TOKEN_PREFIX = "pa_live_"  # recognisable, so secret scanners can spot a leaked token
TOKEN_DISPLAY_LENGTH = len(TOKEN_PREFIX) + 6
NAME_MAX_LENGTH = 60
EXCHANGE_MAX_LENGTH = 60
NOTES_MAX_LENGTH = 500
DESCRIPTION_MAX_LENGTH = 1000


class StrategyError(InvalidInputError):
    """A request the member can correct; the message is safe to show."""


@dataclass(frozen=True)
class AccountView:
    id: int
    name: str
    exchange: str
    notes: str
    strategy_count: int
    created_at: datetime
    archived: bool


@dataclass(frozen=True)
class TokenView:
    id: int
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class StrategyView:
    id: int
    name: str
    description: str
    symbol: str
    account_id: int
    account_name: str
    owner_id: int
    created_at: datetime
    last_snapshot_at: datetime | None
    archived: bool
    tokens: tuple[TokenView, ...]


def _clean_name(name: str, what: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise StrategyError(f"Please give the {what} a name.")
    if len(name) > NAME_MAX_LENGTH:
        raise StrategyError(f"The {what} name must be at most {NAME_MAX_LENGTH} characters long.")
    return name


def _clean_text(value: str, field: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise StrategyError(f"The {field} must be at most {limit} characters long.")
    return value


def _refuse_taken_name(
    session: Session, model: type[BrokerageAccount] | type[Strategy], actor: Actor, name: str, *, other_than: int = 0
) -> None:
    """Refuse a name the actor already gives another account (or strategy), whatever its case.

    Run it before changing the session: a query flushes pending changes. The database's unique index on
    (owner_id, lower(name)) is the atomic guard (migration 0009); this check names the existing one and also
    folds the non-ASCII letters that SQLite's lower() leaves as they are.
    """
    wanted = name.casefold()
    names = session.scalars(
        select(col(model.name)).where(col(model.owner_id) == actor.user_id, col(model.id) != other_than)
    )
    if (taken := next((n for n in names if n.casefold() == wanted), None)) is not None:
        aside = "" if taken == name else " (names that differ only in case are the same name)"
        raise StrategyError(_taken_message(model, taken, aside))


def _taken_message(model: type[BrokerageAccount] | type[Strategy], taken: str, aside: str = "") -> str:
    what = "an account" if model is BrokerageAccount else "a strategy"
    return f"You already have {what} named {taken!r}{aside}."


def _flush_unique(session: Session, model: type[BrokerageAccount] | type[Strategy], name: str) -> None:
    """Flush, refusing a name that another request took meanwhile (the unique index's answer)."""
    try:
        session.flush()
    except IntegrityError:
        # Which row took it is not known here (the transaction has failed): say what the index compares.
        raise StrategyError(_taken_message(model, name, " (or the same name in another case)")) from None


# Brokerage accounts


def _own_account(session: Session, actor: Actor, account_id: int) -> BrokerageAccount:
    account = session.get(BrokerageAccount, account_id)
    if account is None or account.owner_id != actor.user_id:
        raise NotFoundError("No such brokerage account.")
    return account


def create_account(
    session: Session, actor: Actor, *, name: str, exchange: str = "", notes: str = ""
) -> BrokerageAccount:
    name = _clean_name(name, "account")
    _refuse_taken_name(session, BrokerageAccount, actor, name)
    account = BrokerageAccount(
        owner_id=actor.user_id,
        name=name,
        exchange=_clean_text(exchange, "exchange", EXCHANGE_MAX_LENGTH),
        notes=_clean_text(notes, "notes", NOTES_MAX_LENGTH),
        created_at=utcnow(),
    )
    session.add(account)
    _flush_unique(session, BrokerageAccount, account.name)
    return account


def rename_account(session: Session, actor: Actor, account_id: int, *, name: str) -> BrokerageAccount:
    account = _own_account(session, actor, account_id)
    name = _clean_name(name, "account")
    _refuse_taken_name(session, BrokerageAccount, actor, name, other_than=id_of(account))
    account.name = name  # a change of case alone is a rename too
    session.add(account)
    _flush_unique(session, BrokerageAccount, account.name)
    return account


def set_account_archived(session: Session, actor: Actor, account_id: int, *, archived: bool) -> BrokerageAccount:
    """Archived accounts keep their strategies and history but take no new strategies."""
    account = _own_account(session, actor, account_id)
    account.archived_at = utcnow() if archived else None
    session.add(account)
    session.flush()
    return account


def delete_account(session: Session, actor: Actor, account_id: int) -> None:
    account = _own_account(session, actor, account_id)
    count = session.scalars(
        select(func.count()).select_from(Strategy).where(col(Strategy.account_id) == account.id)
    ).one()
    if count:
        # Strategies are never deleted (their history stays; they can only be archived): say what can be done.
        them = "it" if count == 1 else "them"
        raise StrategyError(
            f"{account.name!r} still has {count} strateg{'y' if count == 1 else 'ies'} (archived ones count too). "
            f"Strategies can be archived but not deleted: archive the account instead, or first move {them} "
            "to another account (Edit, on the Strategies page)."
        )
    session.delete(account)
    session.flush()


def list_accounts(session: Session, actor: Actor) -> list[AccountView]:
    counts = select(col(Strategy.account_id), func.count().label("n")).group_by(col(Strategy.account_id)).subquery()
    rows = session.execute(
        select(BrokerageAccount, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.account_id == BrokerageAccount.id)
        .where(col(BrokerageAccount.owner_id) == actor.user_id)
        .order_by(col(BrokerageAccount.archived_at).is_not(None), func.lower(BrokerageAccount.name))
    ).all()
    return [
        AccountView(id_of(a), a.name, a.exchange, a.notes, n, a.created_at, a.archived_at is not None) for a, n in rows
    ]


# Strategies


def may_view(strategy: Strategy, actor: Actor) -> bool:
    """Who may see a strategy: its owner and admins (only the owner may change it)."""
    return strategy.owner_id == actor.user_id or actor.is_admin


def _visible_strategy(session: Session, actor: Actor, strategy_id: int, *, to_change: bool) -> Strategy:
    strategy = session.get(Strategy, strategy_id)
    if strategy is None or not (strategy.owner_id == actor.user_id if to_change else may_view(strategy, actor)):
        raise NotFoundError("No such strategy.")
    return strategy


def own_strategy(session: Session, actor: Actor, strategy_id: int) -> Strategy:
    """The actor's own strategy, to change it or what belongs to it; anyone else's is not found."""
    return _visible_strategy(session, actor, strategy_id, to_change=True)


def _usable_account(session: Session, actor: Actor, account_id: int) -> BrokerageAccount:
    account = _own_account(session, actor, account_id)
    if account.archived_at is not None:
        raise StrategyError(f"The account {account.name!r} is archived; pick another one.")
    return account


def create_strategy(
    session: Session, actor: Actor, *, account_id: int, name: str, description: str = "", symbol: str = ""
) -> Strategy:
    account = _usable_account(session, actor, account_id)
    name = _clean_name(name, "strategy")
    _refuse_taken_name(session, Strategy, actor, name)
    strategy = Strategy(
        owner_id=actor.user_id,
        account_id=id_of(account),
        name=name,
        description=_clean_text(description, "description", DESCRIPTION_MAX_LENGTH),
        symbol=_clean_text(symbol, "symbol", SYMBOL_MAX_LENGTH),
        created_at=utcnow(),
    )
    session.add(strategy)
    _flush_unique(session, Strategy, strategy.name)
    return strategy


def update_strategy(
    session: Session, actor: Actor, strategy_id: int, *, account_id: int, name: str, description: str, symbol: str
) -> Strategy:
    strategy = _visible_strategy(session, actor, strategy_id, to_change=True)
    name = _clean_name(name, "strategy")
    _refuse_taken_name(session, Strategy, actor, name, other_than=id_of(strategy))
    if account_id != strategy.account_id:
        strategy.account_id = id_of(_usable_account(session, actor, account_id))
    strategy.name = name
    strategy.description = _clean_text(description, "description", DESCRIPTION_MAX_LENGTH)
    strategy.symbol = _clean_text(symbol, "symbol", SYMBOL_MAX_LENGTH)
    session.add(strategy)
    _flush_unique(session, Strategy, strategy.name)
    return strategy


def set_strategy_archived(session: Session, actor: Actor, strategy_id: int, *, archived: bool) -> Strategy:
    """An archived strategy keeps its history; its tokens stop being accepted until it is restored. It leaves the
    group board (group.py): restoring it does not show it to the group again unasked."""
    strategy = _visible_strategy(session, actor, strategy_id, to_change=True)
    strategy.archived_at = utcnow() if archived else None
    if archived:
        session.execute(delete(BoardEntry).where(col(BoardEntry.strategy_id) == strategy.id))
    session.add(strategy)
    session.flush()
    return strategy


def _token_views(session: Session, strategy_ids: list[int]) -> dict[int, list[TokenView]]:
    tokens: dict[int, list[TokenView]] = {sid: [] for sid in strategy_ids}
    if strategy_ids:
        rows = session.scalars(
            select(StrategyToken)
            .where(col(StrategyToken.strategy_id).in_(strategy_ids), col(StrategyToken.revoked_at).is_(None))
            .order_by(col(StrategyToken.id))
        )
        for t in rows:
            tokens[t.strategy_id].append(TokenView(id_of(t), t.prefix, t.created_at, t.last_used_at))
    return tokens


def _strategy_views(session: Session, query: Select[Strategy, str]) -> list[StrategyView]:
    rows = session.execute(query).all()
    tokens = _token_views(session, [id_of(s) for s, _ in rows])
    return [
        StrategyView(
            id_of(s),
            s.name,
            s.description,
            s.symbol,
            s.account_id,
            account_name,
            s.owner_id,
            s.created_at,
            s.last_snapshot_at,
            s.archived_at is not None,
            tuple(tokens[id_of(s)]),
        )
        for s, account_name in rows
    ]


def list_strategies(session: Session, actor: Actor) -> list[StrategyView]:
    """The actor's own strategies, active first."""
    return _strategy_views(
        session,
        select(Strategy, col(BrokerageAccount.name))
        .join(BrokerageAccount, col(BrokerageAccount.id) == Strategy.account_id)
        .where(col(Strategy.owner_id) == actor.user_id)
        .order_by(col(Strategy.archived_at).is_not(None), func.lower(Strategy.name)),
    )


def get_strategy(session: Session, actor: Actor, strategy_id: int) -> StrategyView:
    """One strategy the actor owns, or any strategy for an admin."""
    strategy = _visible_strategy(session, actor, strategy_id, to_change=False)
    return _strategy_views(
        session,
        select(Strategy, col(BrokerageAccount.name))
        .join(BrokerageAccount, col(BrokerageAccount.id) == Strategy.account_id)
        .where(col(Strategy.id) == strategy.id),
    )[0]


# Tokens


def issue_token(session: Session, actor: Actor, strategy_id: int) -> str:
    """A new token for the strategy; the others stay valid, so a bot can be switched without downtime."""
    strategy = _visible_strategy(session, actor, strategy_id, to_change=True)
    token = new_token(TOKEN_PREFIX)
    row = StrategyToken(
        strategy_id=id_of(strategy),
        token_hash=token_hash(token),
        prefix=token[:TOKEN_DISPLAY_LENGTH],
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return token  # shown to the member once, never stored


def revoke_token(session: Session, actor: Actor, token_id: int) -> None:
    token = session.get(StrategyToken, token_id)
    if token is None or token.revoked_at is not None:
        raise NotFoundError("No such token.")
    _visible_strategy(session, actor, token.strategy_id, to_change=True)
    token.revoked_at = utcnow()
    session.add(token)
    session.flush()


@dataclass(frozen=True)
class TokenOwner:
    """What a bot token that has not been revoked resolves to."""

    token_id: int
    strategy_id: int
    account_id: int
    owner_id: int
    strategy_archived: bool  # refused while archived, with its own answer
    owner_disabled: bool  # refused while the owner is disabled, with its own answer


def resolve_tokens(connection: Connection | Session, tokens: Iterable[str]) -> dict[str, TokenOwner]:
    """The strategy each token that is not revoked belongs to, by one lookup on the token hash's unique index.

    Revoked tokens are left out; an archived strategy or a disabled owner is said, so the bot is told why.
    Takes a plain connection too: on the ingestion path, an ORM session costs several times the query itself.
    """
    by_hash = {token_hash(token): token for token in tokens if token.startswith(TOKEN_PREFIX) and len(token) <= 100}
    if not by_hash:
        return {}
    rows = connection.execute(_RESOLVE, {"token_hashes": list(by_hash)})
    return {
        by_hash[hashed]: TokenOwner(token_id, strategy_id, account_id, owner_id, archived, disabled)
        for hashed, token_id, strategy_id, account_id, owner_id, archived, disabled in rows
        if token_id is not None and strategy_id is not None  # primary keys: never NULL in a row read
    }


# Built once: on the ingestion path, building the statement cost about as much as running it.
_RESOLVE = (
    select(
        col(StrategyToken.token_hash),
        col(StrategyToken.id),
        col(Strategy.id),
        col(Strategy.account_id),
        col(Strategy.owner_id),
        col(Strategy.archived_at).is_not(None),
        col(User.disabled_at).is_not(None),
    )
    .join(Strategy, col(Strategy.id) == StrategyToken.strategy_id)
    .join(User, col(User.id) == Strategy.owner_id)
    .where(
        col(StrategyToken.token_hash).in_(bindparam("token_hashes", expanding=True)),
        col(StrategyToken.revoked_at).is_(None),
    )
)


def record_uses(session: Session, uses: Iterable[tuple[TokenOwner, datetime]]) -> None:
    """After stored snapshots: each token's last use and each strategy's last snapshot time. Rows are updated in
    one order, tokens then strategies, each by id: two workers writing overlapping sets at once then wait for
    each other instead of deadlocking (PostgreSQL aborted one of them when each went in its own order)."""
    tokens: dict[int, datetime] = {}
    strategy_times: dict[int, datetime] = {}
    for owner, when in uses:
        tokens[owner.token_id] = max(when, tokens.get(owner.token_id, when))
        strategy_times[owner.strategy_id] = max(when, strategy_times.get(owner.strategy_id, when))
    for token_id, when in sorted(tokens.items()):
        session.execute(
            update(StrategyToken)
            .where(col(StrategyToken.id) == token_id)
            .where((col(StrategyToken.last_used_at).is_(None)) | (col(StrategyToken.last_used_at) < when))
            .values(last_used_at=when)
        )
    for strategy_id, when in sorted(strategy_times.items()):
        session.execute(
            update(Strategy)
            .where(col(Strategy.id) == strategy_id)
            .where((col(Strategy.last_snapshot_at).is_(None)) | (col(Strategy.last_snapshot_at) < when))
            .values(last_snapshot_at=when)
        )


def all_strategy_ids(session: Session) -> list[int]:
    """Every strategy, archived ones too (operator commands only: no owner check)."""
    ids = session.scalars(select(col(Strategy.id)).order_by(col(Strategy.id)))
    return [strategy_id for strategy_id in ids if strategy_id is not None]  # a primary key: never NULL
