"""Per-series prediction counts and latency, rolled up by hour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import PredictionRollupRow


@dataclass(frozen=True, slots=True)
class Rollups:
    """Counts of one hour, one entry per series (aligned sequences)."""

    bucket: datetime
    series_ids: Sequence[str]
    predictions: Sequence[int]
    anomalies: Sequence[int]
    requests: Sequence[int]
    latency_ms_sum: Sequence[float]
    latency_ms_max: Sequence[float]

    def __len__(self) -> int:
        return len(self.series_ids)


class RollupStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, rollups: Rollups) -> None:
        """Add counts into their (series, hour) rows, creating rows as needed."""
        if not len(rollups):
            return
        postgres = self.session.get_bind().dialect.name == "postgresql"
        stmt = (pg_insert if postgres else sqlite_insert)(PredictionRollupRow)
        row, new = PredictionRollupRow, stmt.excluded
        larger = func.greatest if postgres else func.max
        stmt = stmt.on_conflict_do_update(
            index_elements=[row.series_id, row.bucket],
            set_={
                "predictions": row.predictions + new.predictions,
                "anomalies": row.anomalies + new.anomalies,
                "requests": row.requests + new.requests,
                "latency_ms_sum": row.latency_ms_sum + new.latency_ms_sum,
                "latency_ms_max": larger(row.latency_ms_max, new.latency_ms_max),
            },
        )
        columns = (
            rollups.series_ids, rollups.predictions, rollups.anomalies,
            rollups.requests, rollups.latency_ms_sum, rollups.latency_ms_max,
        )  # fmt: skip
        bucket = rollups.bucket
        self.session.execute(
            stmt,
            [
                {
                    "series_id": s,
                    "bucket": bucket,
                    "predictions": p,
                    "anomalies": a,
                    "requests": r,
                    "latency_ms_sum": total,
                    "latency_ms_max": most,
                }
                for s, p, a, r, total, most in zip(*columns, strict=True)
            ],  # fmt: skip
        )

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
