"""Series data use cases: idempotent ingest and queries."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import IngestResult, ReadingStore
from atalaia.core.series import (
    Readings,
    TimeRange,
    check_readings,
    check_series_id,
)
from atalaia.errors import InvalidSeries

MAX_POINTS_PER_REQUEST = 100_000


def append_many_points(
    *, session: Session, batch: Mapping[str, Readings], span: TimeRange
) -> dict[str, IngestResult]:
    """Store readings of many series in one bulk write (caller commits);
    stored timestamps are ignored.

    Each series' readings may come in any order, their times within `span`; a
    timestamp twice in one series' readings is refused.
    """
    ordered = {sid: _checked(sid, readings, span) for sid, readings in batch.items()}
    return ReadingStore(session).append_many(ordered)


def _checked(series_id: str, readings: Readings, span: TimeRange) -> Readings:
    check_series_id(series_id)
    if len(readings) > MAX_POINTS_PER_REQUEST:
        raise InvalidSeries(
            f"at most {MAX_POINTS_PER_REQUEST} points per request, got {len(readings)}",
            rule="max_points",
        )
    ts = readings.timestamps
    span.check(ts)  # before sorting: its index is the request's
    if not (ts[1:] >= ts[:-1]).all():
        order = np.argsort(ts, kind="stable")
        readings = Readings(ts[order], readings.values[order])
    check_readings(readings)
    return readings
