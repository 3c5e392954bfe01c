"""rollouts: canaries and shadows, their figures, and the ledger's evidence

A rollout runs a Staging version beside its series' Production one: a canary
answers a growing share of the readings, a shadow scores them all and answers
none. `rollouts` holds each one (one running per series: `live_key`),
`rollout_figures` the counters every inference replica adds its flushes to,
and the ledger (`registry_events`) the figures each step was decided on.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)
# `core.rollout.COUNTERS` as of this revision.
COUNTERS = (
    "candidate_predictions", "candidate_errors", "candidate_anomalies",
    "candidate_slow", "production_predictions", "production_errors",
    "production_anomalies", "paired", "paired_agreements",
    "paired_production_anomalies", "sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy",
)  # fmt: skip


def upgrade() -> None:
    op.add_column("registry_events", sa.Column("evidence", JSON, nullable=True))
    op.create_table(
        "rollouts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("series_id", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("production_version", sa.Integer(), nullable=False),
        sa.Column("percentage", sa.Double(), nullable=False),
        sa.Column("initial_percentage", sa.Double(), nullable=False),
        sa.Column("increment_percentage", sa.Double(), nullable=False),
        sa.Column("interval_s", sa.Double(), nullable=False),
        sa.Column("gates", JSON, nullable=False),
        sa.Column("then", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("live_key", sa.String(128), nullable=True),
        sa.Column("started_at", AT, nullable=False),
        sa.Column("next_step_at", AT, nullable=False),
        sa.Column("ended_at", AT, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("outcome", sa.String(1024), nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
        sa.UniqueConstraint("live_key", name=op.f("uq_rollouts_live_key")),
    )
    op.create_index(
        "ix_rollouts_state_next_step_at", "rollouts", ["state", "next_step_at"]
    )
    op.create_index("ix_rollouts_series_id", "rollouts", ["series_id", "id"])
    op.create_table(
        "rollout_figures",
        sa.Column("rollout_id", ID, nullable=False),
        *(
            sa.Column(name, sa.Double(), nullable=False, server_default="0")
            for name in COUNTERS
        ),
        sa.Column("updated_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], ondelete="CASCADE",
            name=op.f("fk_rollout_figures_rollout_id_rollouts"),
        ),
        sa.PrimaryKeyConstraint("rollout_id", name=op.f("pk_rollout_figures")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("rollout_figures")
    op.drop_index("ix_rollouts_series_id", table_name="rollouts")
    op.drop_index("ix_rollouts_state_next_step_at", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_column("registry_events", "evidence")
