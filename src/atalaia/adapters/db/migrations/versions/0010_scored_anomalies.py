"""scored anomalies: the log of the anomalies scored on ingest

Written in the transaction that stores the readings, read by consumers in
order of id, which is the order rows commit in (`AnomalyLog`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scored_anomalies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("series_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("expected", sa.Double()),
        sa.Column("lower", sa.Double()),
        sa.Column("upper", sa.Double()),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scored_anomalies")),
        sa.UniqueConstraint(
            "series_id", "ts", name=op.f("uq_scored_anomalies_series_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("scored_anomalies")
