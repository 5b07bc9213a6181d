"""flow points: each raw interval's cash flow, found at ingestion or stated by the bot (coarse ranges read them)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_points",
        sa.Column("strategy_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("amount", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("stated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["strategy_id"], ["strategies.id"]),
        sa.PrimaryKeyConstraint("strategy_id", "at_ms"),
    )


def downgrade() -> None:
    op.drop_table("flow_points")
