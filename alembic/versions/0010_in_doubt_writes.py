"""in doubt writes: DynamoDB snapshot writes answered "not stored" that may have landed, kept in the database

They were kept in each worker's memory, so a restart forgot them (and another worker never saw them).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "in_doubt_writes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("strategy_id", "at_ms", "snapshot_id", name="uq_in_doubt_writes_write"),
    )


def downgrade() -> None:
    op.drop_table("in_doubt_writes")
