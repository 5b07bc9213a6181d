"""case-insensitive names: a member's accounts, and their strategies, are unique by lower(name)

"BitMEX main" and "bitmex MAIN" of one owner were two accounts. A unique index on (owner_id, lower(name)) now
refuses the second one atomically, on SQLite and PostgreSQL alike (the exact-case unique constraints stay).

Rows that already collide: the oldest (lowest id) keeps its name; each later one is renamed to its name with
" (2)", " (3)", ... appended (shortened to fit the 60 characters), choosing the first such name the owner does
not use in any case. Nothing is deleted, and members see and can rename the renamed rows; each rename is logged.
A downgrade drops the indexes and leaves the names as they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00
"""

import logging
from collections.abc import Sequence
from itertools import count

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_LENGTH = 60  # the name columns' length (0004), fixed here as this migration ran
INDEXES = {
    "brokerage_accounts": "uq_brokerage_accounts_owner_lower_name",
    "strategies": "uq_strategies_owner_lower_name",
}
log = logging.getLogger("alembic.runtime.migration")


def _rename_collisions(connection: sa.Connection, table: str) -> None:
    # The database's own lower() decides what collides: it is what the index will compare.
    rows = connection.execute(
        sa.text(f"SELECT id, owner_id, name, lower(name) AS folded FROM {table} ORDER BY owner_id, id")
    ).all()
    taken = {(row.owner_id, row.folded) for row in rows}
    kept: set[tuple[int, str]] = set()
    for row in rows:
        if (row.owner_id, row.folded) not in kept:
            kept.add((row.owner_id, row.folded))
            continue
        for number in count(2):
            suffix = f" ({number})"
            candidate = row.name[: NAME_LENGTH - len(suffix)].rstrip() + suffix
            folded = connection.scalar(sa.text("SELECT lower(:name)"), {"name": candidate})
            if (row.owner_id, folded) not in taken:
                break
        connection.execute(
            sa.text(f"UPDATE {table} SET name = :name WHERE id = :id"), {"name": candidate, "id": row.id}
        )
        taken.add((row.owner_id, folded))
        log.warning(
            "0009: %s %s renamed from %r to %r (its name differed only in case)", table, row.id, row.name, candidate
        )


def upgrade() -> None:
    connection = op.get_bind()
    for table, index in INDEXES.items():
        _rename_collisions(connection, table)
        op.create_index(index, table, ["owner_id", sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    for table, index in INDEXES.items():
        op.drop_index(index, table_name=table)
