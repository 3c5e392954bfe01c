"""model parameters as typed columns: center, scale and threshold replace params

Warm loading reads every production version; typed columns spare it decoding
one JSON document per row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARAMS = ("center", "scale", "threshold")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer()),
    sa.column("params", JSON),
    *(sa.column(name, sa.Double()) for name in PARAMS),
)


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch_op:
        for name in PARAMS:
            batch_op.add_column(sa.Column(name, sa.Double(), nullable=True))
    op.execute(
        versions.update().values(
            {name: versions.c.params[name].as_float() for name in PARAMS}
        )
    )
    with op.batch_alter_table("model_versions") as batch_op:
        for name in PARAMS:
            batch_op.alter_column(name, existing_type=sa.Double(), nullable=False)
        batch_op.drop_column("params")


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.add_column(sa.Column("params", JSON, nullable=True))
    # Written from Python: SQLite's JSON functions print 15 digits, and lose some.
    bind = op.get_bind()
    rows = bind.execute(sa.select(versions.c.id, *(versions.c[n] for n in PARAMS)))
    documents = [
        {"row_id": row_id, "document": dict(zip(PARAMS, values, strict=True))}
        for row_id, *values in rows
    ]
    if documents:
        bind.execute(
            versions.update()
            .where(versions.c.id == sa.bindparam("row_id"))
            .values(params=sa.bindparam("document")),
            documents,
        )
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.alter_column("params", existing_type=JSON, nullable=False)
        for name in PARAMS:
            batch_op.drop_column(name)
