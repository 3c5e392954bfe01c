"""prediction rollups per series and hour

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_rollups",
        sa.Column("series_id", sa.String(length=128), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("anomalies", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_sum", sa.Double(), nullable=False),
        sa.Column("latency_ms_max", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint(
            "series_id", "bucket", name=op.f("pk_prediction_rollups")
        ),
    )


def downgrade() -> None:
    op.drop_table("prediction_rollups")
