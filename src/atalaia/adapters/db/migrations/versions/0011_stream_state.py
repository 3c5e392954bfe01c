"""stream state: a streaming model's packed params and state

A streaming version (`forecast`, `changepoint`) keeps its params and the state
its training readings leave (`core.detectors.stream_families`, a few hundred
bytes) beside its band. NULL: not a streaming model.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.add_column(sa.Column("stream", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.drop_column("stream")
