"""training claims: each series' last accepted training submission

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "training_claims",
        sa.Column("series_id", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("series_id", name=op.f("pk_training_claims")),
    )
    # Each series' newest job that was not cancelled (job ids sort by submission),
    # so that the interval holds across the upgrade.
    op.execute(
        "INSERT INTO training_claims (series_id, job_id, submitted_at) "
        "SELECT series_id, job_id, created_at FROM training_jobs WHERE job_id IN ("
        "SELECT max(job_id) FROM training_jobs WHERE status <> 'cancelled' "
        "GROUP BY series_id)"
    )


def downgrade() -> None:
    op.drop_table("training_claims")
