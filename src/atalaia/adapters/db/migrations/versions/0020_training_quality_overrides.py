"""training jobs: the data-quality rules a request overrode

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("training_jobs", sa.Column("quality_ignored", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("training_jobs", "quality_ignored")
