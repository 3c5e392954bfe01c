"""reading segments: the cold history's Parquet files, a period each

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reading_segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("period_start", sa.Double(), nullable=False),
        sa.Column("period_end", sa.Double(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    op.create_index(
        "ix_reading_segments_period",
        "reading_segments",
        ["period_end", "period_start"],
    )


def downgrade() -> None:
    op.drop_index("ix_reading_segments_period", table_name="reading_segments")
    op.drop_table("reading_segments")
