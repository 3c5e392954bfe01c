"""uploads: an uploaded file's ingest progress and lease, and its series

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=256), nullable=False),
        sa.Column("file_format", sa.String(length=16), nullable=False),
        sa.Column("spool_path", sa.String(length=1024), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("detected", JSON, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("readings_valid", sa.BigInteger(), nullable=False),
        sa.Column("readings_stored", sa.BigInteger(), nullable=False),
        sa.Column("invalid", sa.BigInteger(), nullable=False),
        sa.Column("invalid_by_reason", JSON, nullable=False),
        sa.Column("invalid_shown", JSON, nullable=False),
        sa.Column("error", sa.String(length=1024), nullable=True),
        sa.Column("runner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index("ix_uploads_status", "uploads", ["status"])
    op.create_table(
        "upload_series",
        sa.Column("upload_id", sa.String(length=36), nullable=False),
        sa.Column("series_id", sa.String(length=128), nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("stored", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", sa.Double(), nullable=False),
        sa.Column("last_ts", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_upload_series_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "upload_id", "series_id", name=op.f("pk_upload_series")
        ),
    )


def downgrade() -> None:
    op.drop_table("upload_series")
    op.drop_index("ix_uploads_status", table_name="uploads")
    op.drop_table("uploads")
