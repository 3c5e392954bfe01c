"""Feedback labels on readings (true or false anomaly)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import FeedbackRow, ScoredAnomalyRow
from atalaia.core.rollout import Labels


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

    def false_alarms(self, series_id: str, *, since: datetime) -> tuple[int, int]:
        """(labels, labels saying "not an anomaly") given since `since`."""
        row = FeedbackRow
        labels, false_alarms = self.session.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(case((row.is_anomaly.is_(False), 1), else_=0)), 0
                ),
            ).where(row.series_id == series_id, row.created_at >= since)
        ).one()
        return int(labels), int(false_alarms)

    def labels_by_version(
        self, series_id: str, *, since: datetime
    ) -> dict[int, Labels]:
        """Per version the labels name, given since `since`: how many, how many
        saying "an anomaly" (its alarms confirmed)."""
        row = FeedbackRow
        stmt = (
            select(
                row.version,
                func.count(),
                func.coalesce(
                    func.sum(case((row.is_anomaly.is_(True), 1), else_=0)), 0
                ),
            )
            .where(
                row.series_id == series_id,
                row.created_at >= since,
                row.version.is_not(None),
            )
            .group_by(row.version)
        )
        return {
            int(version): Labels(int(labelled), int(confirmed))
            for version, labelled, confirmed in self.session.execute(stmt)
        }

    def verdicts(self, *, since: datetime) -> dict[tuple[bool, bool], int]:
        """Labels given since `since` by (labelled an anomaly, flagged by the
        models): flagged when the anomaly log holds that reading (it keeps
        `anomaly_log_retention_days`). A scan of the labels, a lookup each."""
        label, logged = FeedbackRow, ScoredAnomalyRow
        flagged = exists().where(
            logged.series_id == label.series_id, logged.ts == label.ts
        )
        labels = (
            select(label.is_anomaly, flagged.label("flagged"))
            .where(label.created_at >= since)
            .subquery()
        )
        stmt = select(labels.c.is_anomaly, labels.c.flagged, func.count()).group_by(
            labels.c.is_anomaly, labels.c.flagged
        )
        return {
            (bool(is_anomaly), bool(was_flagged)): int(n)
            for is_anomaly, was_flagged, n in self.session.execute(stmt)
        }

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
