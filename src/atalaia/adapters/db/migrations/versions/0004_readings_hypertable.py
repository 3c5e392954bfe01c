"""readings as a TimescaleDB hypertable when the extension is available

On PostgreSQL whose server offers TimescaleDB (available and preloaded), the
extension is created if needed and the readings table becomes a hypertable
partitioned by day on to_timestamp(ts), its rows moved into chunks. Anywhere
else (SQLite, PostgreSQL without TimescaleDB, or a role that may not create the
extension) the readings stay a plain table indexed by (series_id, ts), and
nothing changes. The path taken is logged ("readings: plain table (…)");
`atalaia db upgrade` and `atalaia db info` print it.

The downgrade turns a hypertable back into a plain table, drops the partitioning
function and, when this migration created the extension and no hypertable is
left, the extension.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 14:00:00
"""

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from atalaia.adapters.db.timescale import (
    CHUNK_INTERVAL,
    EXTENSION,
    TIME_FUNCTION,
    LayoutChoice,
    ReadingsLayout,
    choose_layout,
    readings_layout,
    timescale_offer,
)
from atalaia.errors import AtalaiaError

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# stdlib logging: silent in a bare CLI (`atalaia db upgrade` prints the layout
# itself), on stderr in a service.
log = logging.getLogger("atalaia.db.migrations")

FUNCTION = f"{TIME_FUNCTION}(double precision)"
CREATED_EXTENSION = "atalaia 0004 created the timescaledb extension"


def upgrade() -> None:
    bind = op.get_bind()
    offer = timescale_offer(bind) if bind.dialect.name == "postgresql" else None
    choice = choose_layout(bind.dialect.name, offer)
    created = False
    if choice.layout is ReadingsLayout.HYPERTABLE and not (offer and offer.installed):
        choice, created = _create_extension(bind)
    log.info("readings: %s (%s)", choice.layout.value, choice.reason)
    if choice.layout is not ReadingsLayout.HYPERTABLE:
        return
    op.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION} RETURNS timestamptz"
        " LANGUAGE SQL IMMUTABLE PARALLEL SAFE STRICT AS 'SELECT to_timestamp($1)'"
    )
    if created:  # so that the downgrade knows the extension is ours to drop
        op.execute(f"COMMENT ON FUNCTION {FUNCTION} IS '{CREATED_EXTENSION}'")
    # The primary key (series_id, ts) serves every query: no default time index.
    op.execute(
        "SELECT create_hypertable('readings', 'ts',"
        f" time_partitioning_func => '{TIME_FUNCTION}',"
        f" chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}',"
        " create_default_indexes => false, migrate_data => true,"
        " if_not_exists => true)"
    )


def _create_extension(bind: Connection) -> tuple[LayoutChoice, bool]:
    """Create the extension in a savepoint: a role that may not stays plain."""
    savepoint = bind.begin_nested()
    try:
        bind.execute(text(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}"))
    except (DBAPIError, AtalaiaError) as exc:  # the engine translates most
        savepoint.rollback()
        reason = f"cannot create the {EXTENSION} extension: {exc.__cause__}".strip()
        return LayoutChoice(ReadingsLayout.PLAIN, reason), False
    savepoint.commit()
    return LayoutChoice(
        ReadingsLayout.HYPERTABLE, f"created the {EXTENSION} extension"
    ), True


def downgrade() -> None:
    bind = op.get_bind()
    if readings_layout(bind) is not ReadingsLayout.HYPERTABLE:
        return
    ours = bind.scalar(
        text("SELECT obj_description(to_regprocedure(:f), 'pg_proc')"),
        {"f": FUNCTION},
    )
    op.execute("CREATE TABLE readings_plain (LIKE readings INCLUDING DEFAULTS)")
    op.execute("INSERT INTO readings_plain SELECT * FROM readings")
    op.execute("DROP TABLE readings")
    op.execute("ALTER TABLE readings_plain RENAME TO readings")
    op.create_primary_key("pk_readings", "readings", ["series_id", "ts"])
    op.execute(f"DROP FUNCTION {FUNCTION}")
    others = bind.scalar(
        text("SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables)")
    )
    if ours == CREATED_EXTENSION and not others:
        op.execute(f"DROP EXTENSION {EXTENSION}")
