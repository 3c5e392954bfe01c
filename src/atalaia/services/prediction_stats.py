"""Per-series prediction counts, kept in memory and flushed to hourly rollups.

Prometheus gets fleet-wide counters only; these per-series figures go to the
database, where `/models/{series_id}/metrics` reads them.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import Rollup, RollupStore

log = structlog.get_logger()

# Beyond this many pending (series, hour) cells while the database is down, the
# oldest counts are dropped rather than let memory grow without bound.
MAX_PENDING = 1_000_000

_Key = tuple[str, datetime]


class PredictionTally:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cells: dict[_Key, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0.0])

    def add(
        self,
        series_ids: Sequence[str],
        anomalies: Sequence[bool],
        latency_ms: float,
        now: datetime | None = None,
    ) -> None:
        """Count one request's readings: per series, readings, anomalies, latency."""
        hour = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        per_series: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for series_id, anomaly in zip(series_ids, anomalies, strict=True):
            counts = per_series[series_id]
            counts[0] += 1
            counts[1] += anomaly
        with self._lock:
            for series_id, (n, flagged) in per_series.items():
                cell = self._cells[(series_id, hour)]
                cell[0] += n
                cell[1] += flagged
                cell[2] += 1
                cell[3] += latency_ms
                cell[4] = max(cell[4], latency_ms)

    def drain(self) -> list[Rollup]:
        with self._lock:
            cells, self._cells = self._cells, defaultdict(lambda: [0, 0, 0, 0.0, 0.0])
        return [
            Rollup(sid, hour, int(c[0]), int(c[1]), int(c[2]), c[3], c[4])
            for (sid, hour), c in cells.items()
        ]

    def flush(self, sessions: Callable[[], Session]) -> int:
        """Write pending counts; on failure keep them for the next flush."""
        rollups = self.drain()
        if not rollups:
            return 0
        try:
            with sessions() as session:
                RollupStore(session).add(rollups)
                session.commit()
        except Exception as exc:
            self._put_back(rollups)
            log.warning("inference.rollup_flush_failed", error=type(exc).__name__)
            raise
        return len(rollups)

    def _put_back(self, rollups: list[Rollup]) -> None:
        with self._lock:
            for r in rollups[: max(0, MAX_PENDING - len(self._cells))]:
                cell = self._cells[(r.series_id, r.bucket)]
                cell[0] += r.predictions
                cell[1] += r.anomalies
                cell[2] += r.requests
                cell[3] += r.latency_ms_sum
                cell[4] = max(cell[4], r.latency_ms_max)
