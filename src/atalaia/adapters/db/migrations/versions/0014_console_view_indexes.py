"""console view indexes: batches' progress and the registry overview from indexes

`GET /training/batches` counts each batch's jobs by status with their times:
the batch index holds every column it reads (an index-only scan) and replaces
the index of `batch_id` alone, whose lookups it serves. `GET /models/overview`
counts versions by stage and algorithm, takes the newest Staging versions and
the newest ledger entries of one kind of move (a promotion, a rollback):
an index each, so that none reads the table or walks past older rows.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_training_jobs_batch_status": (
        "training_jobs",
        ["batch_id", "status", "created_at", "started_at", "finished_at"],
    ),
    "ix_model_versions_stage_algorithm": ("model_versions", ["stage", "algorithm"]),
    "ix_model_versions_stage_id": ("model_versions", ["stage", "id"]),
    "ix_registry_events_move": ("registry_events", ["from_stage", "to_stage", "seq"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)
    op.drop_index("ix_training_jobs_batch_id", table_name="training_jobs")


def downgrade() -> None:
    op.create_index("ix_training_jobs_batch_id", "training_jobs", ["batch_id"])
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
