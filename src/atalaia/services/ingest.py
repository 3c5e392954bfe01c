"""Series data use cases: idempotent ingest and queries."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import IngestResult, ReadingStore
from atalaia.core.series import Readings, check_readings, check_series_id
from atalaia.errors import InvalidSeries

MAX_POINTS_PER_REQUEST = 100_000


def append_points(
    *, session: Session, series_id: str, readings: Readings
) -> IngestResult:
    """Store readings of one series (caller commits); stored timestamps are ignored.

    Readings may come in any order; a timestamp twice in one request is refused.
    """
    check_series_id(series_id)
    if len(readings) > MAX_POINTS_PER_REQUEST:
        raise InvalidSeries(
            f"at most {MAX_POINTS_PER_REQUEST} points per request, got {len(readings)}",
            rule="max_points",
        )
    order = np.argsort(readings.timestamps, kind="stable")
    ordered = Readings(readings.timestamps[order], readings.values[order])
    check_readings(ordered)
    return ReadingStore(session).append(series_id, ordered)
