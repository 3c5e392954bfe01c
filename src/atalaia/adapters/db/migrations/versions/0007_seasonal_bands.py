"""seasonal bands and sensor models: what a version holds beyond three numbers

A seasonal model keeps an expected value and a band per phase of its period:
stored as one binary value (period, then float32 pairs), NULL for flat models.
A sensor model keeps its axes' names and its matrices (an .npz), NULL for
series models.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.add_column(sa.Column("band", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("sensor", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.drop_column("sensor")
        batch_op.drop_column("band")
