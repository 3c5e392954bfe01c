"""Per-series prediction counts and latency, rolled up by hour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import PredictionRollupRow


@dataclass(frozen=True, slots=True)
class Rollup:
    series_id: str
    bucket: datetime
    predictions: int
    anomalies: int
    requests: int
    latency_ms_sum: float
    latency_ms_max: float


class RollupStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, rollups: Sequence[Rollup]) -> None:
        """Add counts into their (series, hour) rows, creating rows as needed."""
        if not rollups:
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
        self.session.execute(stmt, [asdict(r) for r in rollups])

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
        predictions, anomalies, requests, latency_sum, latency_max = totals
        return {
            "count": int(predictions),
            "anomalies": int(anomalies),
            "anomaly_rate": anomalies / predictions if predictions else 0.0,
            "requests": int(requests),
            "latency_ms_mean": latency_sum / requests if requests else 0.0,
            "latency_ms_max": float(latency_max),
        }
