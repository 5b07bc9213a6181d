"""flow corrections: a member's word on a strategy's cash flows (confirmed, corrected, not a flow, added by hand)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("found", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("amount", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["strategy_id"], ["strategies.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_flow_corrections_strategy_id"), "flow_corrections", ["strategy_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_flow_corrections_strategy_id"), table_name="flow_corrections")
    op.drop_table("flow_corrections")
