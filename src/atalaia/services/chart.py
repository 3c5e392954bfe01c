"""A series' interactive chart for the console: its readings decimated to the
chart's width (M4, `core.decimation`), the model's band at the same times,
its anomalies, change points and incidents, and the training window.

The readings are read and scored as GET /plot does (`services.plotting`); on
zoom the console asks again for the narrower window, at full detail once it
holds no more than 4 readings a bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import IncidentFilter, IncidentStore
from atalaia.adapters.db.repositories.changes import ChangeLog
from atalaia.core.decimation import IntArray, m4_indices
from atalaia.core.ports import ArtifactStore
from atalaia.core.series import FloatArray, sensor_of
from atalaia.services.plotting import (
    BoolArray,
    PlotData,
    PlotQuery,
    build_plot_data,
    model_json,
)

DEFAULT_BUCKETS = 1_000
MIN_BUCKETS, MAX_BUCKETS = 100, 5_000
MAX_ANOMALIES = 5_000  # the highest scores of the window
MAX_INCIDENTS = 1_000  # the newest of the series' sensor touching the window


@dataclass(frozen=True, slots=True)
class ChartQuery:
    """A chart request; times are epoch seconds, None means the default (as
    `PlotQuery`); `buckets` the chart's width in time buckets (≈ pixels)."""

    series_id: str
    start: float | None = None
    end: float | None = None
    buckets: int = DEFAULT_BUCKETS
    version: int | None = None


def build_chart(
    session: Session, query: ChartQuery, *, artifacts: ArtifactStore | None = None
) -> dict[str, Any]:
    """The chart of a window as JSON-ready data (numpy arrays for numbers;
    times in epoch seconds).

    `points` holds at most 4 × `buckets` readings (`decimated`: fewer than the
    window's); `band` the model's expected value and band at the same times.
    Raises what `build_plot_data` raises.
    """
    plot = PlotQuery(query.series_id, query.start, query.end, query.version)
    data = build_plot_data(session, plot, artifacts=artifacts)
    ts, vs = data.readings.timestamps, data.readings.values
    kept = m4_indices(ts, vs, start=data.start, end=data.end, buckets=query.buckets)
    times = ts[kept]
    training = data.training_window
    return {
        "series_id": data.series_id,
        "window": {"start": data.start, "end": data.end},
        "readings": int(vs.size),
        "decimated": bool(kept.size < vs.size),
        "model": model_json(data.model),
        "training_window": (
            {"start": training[0], "end": training[1]} if training else None
        ),
        "points": {"t": times, "value": vs[kept]},
        "band": _band(data, times),
        **_anomalies(data),
        "changepoints": _change_points(session, data),
        "incidents": _incidents(session, data),
    }


def _band(data: PlotData, times: FloatArray) -> dict[str, FloatArray] | None:
    if data.model is None:
        return None
    expected, width = data.band_at(times)
    return {
        "t": times,
        "expected": expected,
        "lower": expected - width,
        "upper": expected + width,
    }


def _anomalies(data: PlotData) -> dict[str, Any]:
    """Every anomaly of the window, or the MAX_ANOMALIES highest scored, in
    time order; and how many there are."""
    flagged = np.flatnonzero(data.anomaly)
    total = flagged.size
    if total > MAX_ANOMALIES:
        assert data.scores is not None  # flagged by a model
        top = np.argpartition(-data.scores[flagged], MAX_ANOMALIES - 1)
        flagged = np.sort(flagged[top[:MAX_ANOMALIES]])
    scores = data.scores[flagged] if data.scores is not None else np.zeros(0)
    return {
        "anomalies": {
            "t": data.readings.timestamps[flagged],
            "value": data.readings.values[flagged],
            "score": scores,
            "reason": data.reasons_at(flagged) if total else [],
        },
        "anomalies_total": int(total),
    }


def _change_points(session: Session, data: PlotData) -> FloatArray:
    """Where a change logged on ingest begins inside the window: the first
    reading of each run of readings logged as a level shift or a variance
    change (none when the run began before the window)."""
    marks = ChangeLog(session).flagged(data.series_id, start=data.start, end=data.end)
    at = np.searchsorted(data.readings.timestamps, marks)
    at[marks < data.start] = -1  # the reading just before the window
    return marks[_run_starts(at) & (marks >= data.start)]


def _run_starts(positions: IntArray) -> BoolArray:
    """Which of these ascending reading positions follow no position just
    before them."""
    before = np.concatenate(([-2], positions[:-1]))
    starts: BoolArray = positions != before + 1
    return starts


def _incidents(session: Session, data: PlotData) -> list[dict[str, Any]]:
    """The incidents of the series' sensor touching the window that involve
    the series, oldest first: from the first anomaly to the latest."""
    sensor, _ = sensor_of(data.series_id)
    where = IncidentFilter(sensor_id=sensor, start=data.start, end=data.end)
    found, _ = IncidentStore(session).page(where, None, MAX_INCIDENTS)
    return [
        {
            "id": i.id,
            "start": i.started_at,
            "end": i.last_at,
            "severity": i.severity,
            "status": i.state,
            "kind": i.kind,
        }
        for i in sorted(found, key=lambda i: (i.started_at, i.id or 0))
        if data.series_id in i.series
    ]
