"""Feedback labels on readings (true or false anomaly)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import FeedbackRow


class FeedbackStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        series_id: str,
        ts: float,
        is_anomaly: bool,
        version: int | None,
        note: str,
        actor: str,
    ) -> int:
        row = FeedbackRow(
            series_id=series_id, ts=ts, is_anomaly=is_anomaly, version=version,
            note=note, actor=actor,
        )  # fmt: skip
        self.session.add(row)
        self.session.flush()
        return row.id

    def for_series(self, series_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        stmt = (
            select(FeedbackRow)
            .where(FeedbackRow.series_id == series_id)
            .order_by(FeedbackRow.ts.desc())
            .limit(limit)
        )
        return [
            {
                "id": r.id, "timestamp": r.ts, "is_anomaly": r.is_anomaly,
                "version": r.version, "note": r.note, "actor": r.actor,
                "created_at": r.created_at.isoformat(),
            }
            for r in self.session.scalars(stmt)
        ]  # fmt: skip
