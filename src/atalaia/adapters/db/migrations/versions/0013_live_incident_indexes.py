"""live incident indexes: the fleet's status read from indexes alone

`GET /fleet/status` counts the live incidents (by kind and severity, by sensor
group and sensor, by the time of their last anomaly) and takes those of
highest peak score: partial indexes over the live rows (`live_key` not NULL)
answer each without reading the table. The sensor groups' anomaly rates read
the last two hours of prediction rollups: an index by hour.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "live_key IS NOT NULL"
INDEXES = {
    "ix_incidents_live_kind_severity": ["kind", "severity"],
    "ix_incidents_live_last_at": ["last_at", "sensor_id"],
    "ix_incidents_live_group_sensor": ["sensor_group", "sensor_id"],
    "ix_incidents_live_peak_score": ["peak_score", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(
            name,
            "incidents",
            columns,
            postgresql_where=sa.text(LIVE),
            sqlite_where=sa.text(LIVE),
        )
    op.create_index(
        "ix_prediction_rollups_bucket", "prediction_rollups", ["bucket", "series_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_rollups_bucket", table_name="prediction_rollups")
    for name in INDEXES:
        op.drop_index(name, table_name="incidents")
