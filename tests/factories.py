"""Factories that arrange real rows through the app's own context functions."""

from __future__ import annotations

import itertools
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from projectalgo import flows, members, memberships, strategies
from projectalgo.db import session_scope
from projectalgo.members import Actor
from projectalgo.models import BrokerageAccount, Strategy, StrategyToken, User, table_of
from projectalgo.runtime import services
from projectalgo.snapshots import Snapshot, SnapshotStore

PASSWORD = "correct horse battery"
_numbers = itertools.count(1)


def make_admin(engine: Engine, *, name: str = "Ada Admin", email: str | None = None) -> User:
    email = email or f"admin{next(_numbers)}@example.com"
    with session_scope(engine) as session:
        return members.create_admin(session, name=name, email=email, password=PASSWORD, bcrypt_rounds=4, default_uses=5)


def invite_code_of(engine: Engine, user: User) -> str:
    with session_scope(engine) as session:
        return members.own_invitation(session, user.id).code


def make_member(
    engine: Engine, *, inviter: User | None = None, name: str = "Mia Member", email: str | None = None
) -> User:
    inviter = inviter or make_admin(engine)
    email = email or f"member{next(_numbers)}@example.com"
    with session_scope(engine) as session:
        return members.register(
            session,
            code=invite_code_of(engine, inviter),
            name=name,
            email=email,
            password=PASSWORD,
            confirmation=PASSWORD,
            client=f"factory-{next(_numbers)}",  # one client per member: no registration throttle
            bcrypt_rounds=4,
            default_uses=5,
        )


def actor_of(user: User) -> Actor:
    return Actor(user.id, tuple(user.roles))


def make_strategy(engine: Engine, owner: User, *, name: str = "Trend", account: str = "BitMEX main") -> tuple[int, str]:
    """A strategy (and its account, made if missing) with one token: returns (strategy id, token)."""
    actor = actor_of(owner)
    with session_scope(engine) as session:
        existing = [a for a in strategies.list_accounts(session, actor) if a.name == account]
        account_id = existing[0].id if existing else strategies.create_account(session, actor, name=account).id
        strategy = strategies.create_strategy(session, actor, account_id=account_id, name=name)
        return strategy.id, strategies.issue_token(session, actor, strategy.id)


def grant_membership(engine: Engine, user: User, days: int = 365) -> None:
    with session_scope(engine) as session:
        memberships.grant(session, user_id=user.id, days=days, source="admin")


def strategy_tables(engine: Engine) -> list[list[tuple]]:
    """Every row of the accounts, strategies and tokens tables: to check that a refusal changed nothing."""
    with session_scope(engine) as session:
        return [
            [tuple(row) for row in session.execute(select(table_of(model))).all()]
            for model in (BrokerageAccount, Strategy, StrategyToken)
        ]


def strategy_world(engine: Engine) -> dict:
    """An admin, members Alice and Bob, and Alice's strategy with one token."""
    admin = make_admin(engine)
    alice = make_member(engine, inviter=admin, name="Alice")
    bob = make_member(engine, inviter=admin, name="Bob")
    strategy_id, token = make_strategy(engine, alice)
    with session_scope(engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
        token_id = session.scalar(select(StrategyToken.id).where(StrategyToken.strategy_id == strategy_id))
    return {
        "engine": engine,
        "admin": admin,
        "alice": alice,
        "bob": bob,
        "strategy_id": strategy_id,
        "account_id": account_id,
        "token_id": token_id,
        "token": token,
    }


def store_as_ingested(snapshot: Snapshot, cash_flow: Decimal | None = None) -> Snapshot:
    """Store one snapshot in the app's store and keep its interval's flow, as ingestion does."""
    app = services()
    stored = store_one(app.snapshot_store, snapshot)
    with session_scope(app.engine) as session:
        flows.record_flow_points(session, app.snapshot_store, [(stored, cash_flow)], flows.tolerance(app.settings))
    return stored


def store_one(store: SnapshotStore, snapshot: Snapshot) -> Snapshot:
    """Store one snapshot and return it as stored, or raise why not."""
    (result,) = store.put_many([snapshot])
    if isinstance(result, Exception):
        raise result
    return result


def resolve(session: Session, token: str) -> strategies.TokenOwner | None:
    """What one bot token resolves to (the ingestion path resolves a batch's tokens at once)."""
    return strategies.resolve_tokens(session, [token]).get(token)
