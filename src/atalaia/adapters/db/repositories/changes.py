"""Where a series changed, from the anomaly log: the readings scored on ingest
as a level shift or a variance change (the `changepoint` family flags every
reading of a change until it ends or is absorbed)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import ReadingRow, ScoredAnomalyRow, SeriesRow
from atalaia.core.explanations import Reason
from atalaia.core.series import FloatArray

CHANGE_REASONS = (Reason.LEVEL_SHIFT, Reason.VARIANCE_CHANGE)


class ChangeLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def flagged(self, series_id: str, *, start: float, end: float) -> FloatArray:
        """Timestamps of the series' readings logged as a change in
        [start, end), oldest first, and of the reading just before `start` when
        it is one (whether a change runs on from before the window)."""
        key = (
            select(SeriesRow.key)
            .where(SeriesRow.series_id == series_id)
            .scalar_subquery()
        )
        before = (
            select(func.max(ReadingRow.ts))
            .where(ReadingRow.series_key == key, ReadingRow.ts < start)
            .scalar_subquery()
        )
        stmt = (
            select(ScoredAnomalyRow.ts)
            .where(
                ScoredAnomalyRow.series_id == series_id,
                ScoredAnomalyRow.ts >= func.coalesce(before, start),
                ScoredAnomalyRow.ts < end,
                ScoredAnomalyRow.reason.in_([r.value for r in CHANGE_REASONS]),
            )
            .order_by(ScoredAnomalyRow.ts)
        )
        return np.fromiter(self.session.scalars(stmt), np.float64)
