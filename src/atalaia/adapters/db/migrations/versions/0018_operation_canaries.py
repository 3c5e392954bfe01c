"""operations that start canaries, and the weekly wave's operation of a batch

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("canary", JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("wave_of", sa.String(length=36), nullable=True))
        batch.create_unique_constraint(op.f("uq_operations_wave_of"), ["wave_of"])


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_constraint(op.f("uq_operations_wave_of"), type_="unique")
        batch.drop_column("wave_of")
        batch.drop_column("canary")
