"""Factories that arrange real rows through the app's own context functions."""

from __future__ import annotations

import itertools

from sqlalchemy import Engine

from projectalgo import accounts
from projectalgo.db import session_scope
from projectalgo.models import User

PASSWORD = "correct horse battery"
_numbers = itertools.count(1)


def make_admin(engine: Engine, *, name: str = "Ada Admin", email: str | None = None) -> User:
    email = email or f"admin{next(_numbers)}@example.com"
    with session_scope(engine) as session:
        return accounts.create_admin(
            session, name=name, email=email, password=PASSWORD, bcrypt_rounds=4, default_uses=5
        )


def invite_code_of(engine: Engine, user: User) -> str:
    with session_scope(engine) as session:
        return accounts.own_invitation(session, user.id).code


def make_member(
    engine: Engine, *, inviter: User | None = None, name: str = "Mia Member", email: str | None = None
) -> User:
    inviter = inviter or make_admin(engine)
    email = email or f"member{next(_numbers)}@example.com"
    with session_scope(engine) as session:
        return accounts.register(
            session,
            code=invite_code_of(engine, inviter),
            name=name,
            email=email,
            password=PASSWORD,
            confirmation=PASSWORD,
            bcrypt_rounds=4,
            default_uses=5,
        )
