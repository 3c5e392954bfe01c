"""audit_log: the client's address, the request id and a once-only key per
entry, indexes for the list's filters; UPDATE and DELETE refused by triggers

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSED = "audit_log is append-only: {} refused"

POSTGRESQL_UP = (
    f"""
    CREATE FUNCTION audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSED.format("%")}', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
    """,
)
POSTGRESQL_DOWN = (
    "DROP TRIGGER audit_log_append_only ON audit_log",
    "DROP FUNCTION audit_log_append_only()",
)
SQLITE_UP = tuple(
    f"""
    CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log
    BEGIN SELECT RAISE(ABORT, '{REFUSED.format(verb)}'); END
    """
    for verb in ("UPDATE", "DELETE")
)
SQLITE_DOWN = (
    "DROP TRIGGER audit_log_no_update",
    "DROP TRIGGER audit_log_no_delete",
)


def _run(postgresql: Sequence[str], sqlite: Sequence[str]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in postgresql if postgres else sqlite:
        op.execute(statement)


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("once_key", sa.String(length=128), nullable=True))
        batch.create_unique_constraint(op.f("uq_audit_log_once_key"), ["once_key"])
        batch.create_index(op.f("ix_audit_log_request_id"), ["request_id"])
        batch.create_index("ix_audit_log_actor_id", ["actor", "id"])
        batch.create_index("ix_audit_log_action_id", ["action", "id"])
        batch.create_index("ix_audit_log_target_id", ["target", "id"])
    _run(POSTGRESQL_UP, SQLITE_UP)


def downgrade() -> None:
    _run(POSTGRESQL_DOWN, SQLITE_DOWN)
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_target_id")
        batch.drop_index("ix_audit_log_action_id")
        batch.drop_index("ix_audit_log_actor_id")
        batch.drop_index(op.f("ix_audit_log_request_id"))
        batch.drop_constraint(op.f("uq_audit_log_once_key"), type_="unique")
        batch.drop_column("once_key")
        batch.drop_column("request_id")
        batch.drop_column("address")
