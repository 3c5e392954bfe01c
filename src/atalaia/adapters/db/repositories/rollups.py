"""Per-series prediction counts and latency, rolled up by hour."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories._columns import fetch_columns
from atalaia.adapters.db.tables import PredictionRollupRow
from atalaia.adapters.db.translation import driver_errors_translated
from atalaia.core.serving import Rollups


class RollupStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, rollups: Rollups) -> None:
        """Add counts into their (series, hour) rows, creating rows as needed."""
        if not len(rollups):
            return
        if self.session.get_bind().dialect.name == "postgresql":
            self._add_by_copy(rollups)
            return
        # The driver's executemany over plain tuples: no per-row work in
        # SQLAlchemy. The bucket is bound once, as its column type stores it
        # on this dialect (the queries compare it as that text).
        dialect = self.session.get_bind().dialect
        bind = PredictionRollupRow.__table__.c.bucket.type.dialect_impl(
            dialect
        ).bind_processor(dialect)
        stored = bind(rollups.bucket) if bind else rollups.bucket
        self.session.connection().exec_driver_sql(
            _SQLITE_UPSERT,
            [(s, stored, *counts) for s, *counts in _rows(rollups)],
        )

    def _add_by_copy(self, rollups: Rollups) -> None:
        # COPY into a temporary table, then one upsert: no per-row statement
        # parameters in Python (285,000 series' counts take a fraction of a second).
        connection = self.session.connection()
        raw = connection.connection.driver_connection
        with (
            driver_errors_translated(connection),
            raw.cursor() as cursor,  # type: ignore[union-attr]
        ):
            cursor.execute(_PG_STAGING)
            with cursor.copy(_PG_COPY) as copy:
                for values in _rows(rollups):
                    copy.write_row(values)
            cursor.execute(_PG_UPSERT, (rollups.bucket,))

    def summary(self, series_id: str, *, since: datetime) -> dict[str, float | int]:
        """Totals of the hourly rows of a series from the bucket holding `since` on."""
        row = PredictionRollupRow
        hour = since.replace(minute=0, second=0, microsecond=0)
        totals = self.session.execute(
            select(
                func.coalesce(func.sum(row.predictions), 0),
                func.coalesce(func.sum(row.anomalies), 0),
                func.coalesce(func.sum(row.requests), 0),
                func.coalesce(func.sum(row.latency_ms_sum), 0.0),
                func.coalesce(func.max(row.latency_ms_max), 0.0),
            ).where(row.series_id == series_id, row.bucket >= hour)
        ).one()
        # PostgreSQL sums integers as numerics (Decimal): back to int and float.
        predictions, anomalies, requests = map(int, totals[:3])
        latency_sum, latency_max = map(float, totals[3:])
        return {
            "count": predictions,
            "anomalies": anomalies,
            "anomaly_rate": anomalies / predictions if predictions else 0.0,
            "requests": requests,
            "latency_ms_mean": latency_sum / requests if requests else 0.0,
            "latency_ms_max": latency_max,
        }

    def hour(
        self, bucket: datetime
    ) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The predictions and anomalies of every series in hour `bucket`, as
        columns by series id."""
        row = PredictionRollupRow
        stmt = (
            select(row.series_id, row.predictions, row.anomalies)
            .where(row.bucket == bucket)
            .order_by(row.series_id)
        )
        series, predictions, anomalies = fetch_columns(
            self.session, stmt, (str, np.int64, np.int64)
        )
        return series, predictions, anomalies


def _rows(rollups: Rollups) -> Iterator[tuple[Any, ...]]:
    """(series_id, predictions, anomalies, requests, latency sum, latency max) in
    Python numbers: numpy scalars would cost the driver a conversion each."""
    columns = (
        rollups.predictions, rollups.anomalies, rollups.requests,
        rollups.latency_ms_sum, rollups.latency_ms_max,
    )  # fmt: skip
    plain = [c.tolist() if hasattr(c, "tolist") else c for c in columns]
    return zip(rollups.series_ids, *plain, strict=True)


_SQLITE_UPSERT = """
INSERT INTO prediction_rollups (
    series_id, bucket, predictions, anomalies, requests, latency_ms_sum,
    latency_ms_max
) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (series_id, bucket) DO UPDATE SET
    predictions = predictions + excluded.predictions,
    anomalies = anomalies + excluded.anomalies,
    requests = requests + excluded.requests,
    latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,
    latency_ms_max = max(latency_ms_max, excluded.latency_ms_max)
"""
_PG_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS rollups_in (
    series_id text, predictions bigint, anomalies bigint, requests bigint,
    latency_ms_sum float8, latency_ms_max float8
) ON COMMIT DELETE ROWS
"""
_PG_COPY = """
COPY rollups_in (
    series_id, predictions, anomalies, requests, latency_ms_sum, latency_ms_max
) FROM STDIN
"""
_PG_UPSERT = """
INSERT INTO prediction_rollups AS r (
    series_id, bucket, predictions, anomalies, requests, latency_ms_sum,
    latency_ms_max
)
SELECT series_id, %s, predictions, anomalies, requests, latency_ms_sum,
       latency_ms_max
FROM rollups_in
ON CONFLICT (series_id, bucket) DO UPDATE SET
    predictions = r.predictions + excluded.predictions,
    anomalies = r.anomalies + excluded.anomalies,
    requests = r.requests + excluded.requests,
    latency_ms_sum = r.latency_ms_sum + excluded.latency_ms_sum,
    latency_ms_max = greatest(r.latency_ms_max, excluded.latency_ms_max)
"""
