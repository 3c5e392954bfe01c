"""Per-series prediction counts, kept in memory and flushed to hourly rollups.

Prometheus gets fleet-wide counters only; these per-series figures go to the
database, where `/models/{series_id}/metrics` reads them.

Counts of the current hour are numpy columns indexed by the model table's rows,
so a batch is counted in a few vectorized updates whatever the number of series
it touches; series unknown to the table are counted by name. Rows added to a
table keep the rows counted so far, so the hour only grows; a new table (its
`generation` changes) numbers its rows afresh and closes the hour. A flush
writes the series touched since the last one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import structlog

from atalaia.core.ports import RollupSink
from atalaia.core.serving import Rollups
from atalaia.errors import ConcurrentChange, DependencyUnavailable
from atalaia.services.model_table import ModelTable

log = structlog.get_logger()

# Beyond this many pending (series, hour) counts while the database is down, the
# oldest are dropped rather than let memory grow without bound.
MAX_PENDING = 1_000_000

Rows = npt.NDArray[np.int64]


def _hour_of(seconds: float) -> datetime:
    """The UTC hour a Unix time falls in."""
    return datetime.fromtimestamp(seconds // 3600 * 3600, UTC)


@dataclass
class _Hour:
    """Counts of one hour against the rows of one table (of `generation`, its
    series `ids`), and by name."""

    start: float
    generation: int
    ids: list[str]
    predictions: npt.NDArray[np.int64]
    anomalies: npt.NDArray[np.int64]
    requests: npt.NDArray[np.int64]
    latency_sum: npt.NDArray[np.float64]
    latency_max: npt.NDArray[np.float64]
    named: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def open(cls, start: float, table: ModelTable) -> _Hour:
        size = len(table.ids)
        return cls(
            start, table.generation, table.ids,
            np.zeros(size, np.int64), np.zeros(size, np.int64),
            np.zeros(size, np.int64), np.zeros(size), np.zeros(size),
        )  # fmt: skip

    def fit(self, size: int) -> None:
        """Grow the columns to hold `size` rows (the table grew)."""
        if size > self.predictions.size:
            grow = max(size, 2 * self.predictions.size) - self.predictions.size
            for name in ("predictions", "anomalies", "requests"):
                setattr(self, name, np.pad(getattr(self, name), (0, grow)))
            self.latency_sum = np.pad(self.latency_sum, (0, grow))
            self.latency_max = np.pad(self.latency_max, (0, grow))

    def rollups(self) -> Rollups:
        touched = np.flatnonzero(self.requests)
        named = self.named
        return Rollups(
            bucket=_hour_of(self.start),
            series_ids=[self.ids[r] for r in touched.tolist()] + list(named),
            predictions=[*self.predictions[touched].tolist(),
                         *(int(c[0]) for c in named.values())],
            anomalies=[*self.anomalies[touched].tolist(),
                       *(int(c[1]) for c in named.values())],
            requests=[*self.requests[touched].tolist(),
                      *(int(c[2]) for c in named.values())],
            latency_ms_sum=[*self.latency_sum[touched].tolist(),
                            *(c[3] for c in named.values())],
            latency_ms_max=[*self.latency_max[touched].tolist(),
                            *(c[4] for c in named.values())],
        )  # fmt: skip


class PredictionTally:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hour: _Hour | None = None
        self._pending: list[Rollups] = []  # closed hours, and failed flushes

    def _current(self, table: ModelTable) -> _Hour:
        """The open hour for this table, closing the previous one if it is of
        another table or of a past hour."""
        now = time.time()
        hour = self._hour
        if (
            hour is None
            or hour.generation != table.generation
            or now - hour.start >= 3600
        ):
            if hour is not None:
                self._pending.append(hour.rollups())
            hour = self._hour = _Hour.open(now // 3600 * 3600, table)
        hour.fit(len(table.ids))
        return hour

    def add_one(
        self, table: ModelTable, row: int, anomaly: bool, latency_ms: float
    ) -> None:
        """Count one reading of the table's row `row`."""
        with self._lock:
            hour = self._current(table)
            hour.predictions[row] += 1
            hour.anomalies[row] += anomaly
            hour.requests[row] += 1
            hour.latency_sum[row] += latency_ms
            if latency_ms > hour.latency_max[row]:
                hour.latency_max[row] = latency_ms

    def add_rows(
        self,
        table: ModelTable,
        rows: Rows,
        anomaly: npt.NDArray[np.bool_],
        latency_ms: float,
    ) -> None:
        """Count one request's readings: one per entry of `rows` (the table's
        rows, repeated as often as the request holds readings of them),
        `anomaly` their verdicts."""
        with self._lock:
            hour = self._current(table)
            np.add.at(hour.predictions, rows, 1)
            np.add.at(hour.anomalies, rows[anomaly], 1)
            # A fancy-indexed update writes each distinct row once: one request.
            hour.requests[rows] += 1
            hour.latency_sum[rows] += latency_ms
            hour.latency_max[rows] = np.maximum(hour.latency_max[rows], latency_ms)

    def add_named(
        self,
        table: ModelTable,
        counts: dict[str, tuple[int, int]],
        latency_ms: float,
    ) -> None:
        """Count readings of series the table does not hold.

        `counts` maps each series to its (readings, anomalies)."""
        with self._lock:
            hour = self._current(table)
            for series_id, (readings, anomalies) in counts.items():
                cell = hour.named.setdefault(series_id, [0, 0, 0, 0.0, 0.0])
                cell[0] += readings
                cell[1] += anomalies
                cell[2] += 1
                cell[3] += latency_ms
                cell[4] = max(cell[4], latency_ms)

    def drain(self) -> list[Rollups]:
        """Everything counted so far, as rollups; the counts start again from zero."""
        with self._lock:
            if self._hour is not None:
                self._pending.append(self._hour.rollups())
                self._hour = None
            pending, self._pending = self._pending, []
        return [r for r in pending if len(r)]

    def flush(self, sink: RollupSink) -> int:
        """Write pending counts; when the database is unavailable or a concurrent
        write conflicts, keep them for the next flush (and raise)."""
        pending = self.drain()
        written = 0
        try:
            for rollups in pending:
                sink.add_rollups(rollups)
                written += 1
        except (DependencyUnavailable, ConcurrentChange) as exc:
            self._put_back(pending[written:])
            log.warning(
                "inference.rollup_flush_failed",
                error=type(exc).__name__,
                origin=exc.origin,
            )
            raise
        return sum(len(r) for r in pending)

    def _put_back(self, failed: list[Rollups]) -> None:
        with self._lock:
            kept = sum(len(r) for r in self._pending)
            for rollups in failed:
                if kept + len(rollups) > MAX_PENDING:
                    log.warning("inference.rollups_dropped", series=len(rollups))
                    continue
                self._pending.append(rollups)
                kept += len(rollups)
