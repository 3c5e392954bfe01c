"""The incidents' signals, out of the hot path: anomalies and recoveries.

Every reading a production model scores here passes by `IncidentSignals`: an
anomaly is queued in memory (a few hundred nanoseconds), and a series with a
recent anomaly counts its normal readings until `resolve_after` in a row make
a `Recovery`. A thread writes what is queued every `flush_s` seconds, in one
transaction (`SignalSink`: the anomaly log and the recoveries), for the
alerter to group into incidents. A killed process loses what it had not
written: at most the last `flush_s` of predictions' anomalies. Readings sent
in are different: scoring on ingest logs their anomalies with the readings,
in the request's transaction (`services.scored_ingest`), so nothing
acknowledged to a client is lost; here they only count towards recoveries.

While the database is down the queue waits in memory, up to `max_pending`
anomalies (the oldest are then dropped, and said so in the log). The series
watched for recovery are also those anomalous in a live incident, read from
the database at start and every `refresh_s`: a replica that takes a series
over goes on counting for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import structlog

from atalaia.core.incidents import Recovery
from atalaia.core.ports import SignalSink
from atalaia.core.serving import ScoredAnomaly
from atalaia.services.inference.data_plane import ScoredReading
from atalaia.services.inference.sensors import SensorVerdict
from atalaia.services.model_table import ALGORITHMS, REASONS, Scores, Tier

log = structlog.get_logger()

_MODEL = int(Tier.MODEL)


class IncidentSignals:
    """The queue of anomalies and recoveries (see the module). The hot path
    calls `one`, `many` and `counted`; a background thread `flush`es."""

    def __init__(
        self,
        resolve_after: int = 10,
        max_pending: int = 1_000_000,
        *,
        enabled: bool = True,
    ) -> None:
        self.resolve_after = resolve_after
        self.enabled = enabled
        self.max_pending = max_pending
        # Series → normal readings in a row since its last anomaly.
        self.watch: dict[str, int] = {}
        self._anomalies: list[ScoredAnomaly] = []
        self._recoveries: list[Recovery] = []
        self._lock = threading.Lock()
        self.dropped = 0

    def one(
        self, series_id: str, timestamp: float, value: float, scored: ScoredReading
    ) -> None:
        """A single reading scored (by a production model, else ignored)."""
        if scored.anomaly:
            record = scored.record
            if record.tier != _MODEL or not self.enabled:
                return
            expected, width = scored.expected, scored.width
            self._anomaly(
                ScoredAnomaly(
                    series_id, timestamp, value, scored.score, expected,
                    expected - width, expected + width,
                    "above" if value > expected else "below", REASONS[scored.reason],
                    record.version, ALGORITHMS[record.algorithm], scored.stale,
                )
            )  # fmt: skip
        elif self.watch and series_id in self.watch:
            self._normal(series_id, timestamp)

    def many(
        self,
        series_ids: Sequence[str],
        timestamps: npt.NDArray[np.float64],
        values: npt.NDArray[np.float64],
        scores: Scores,
        *,
        logged: bool = False,
    ) -> None:
        """Readings scored together; `logged`: their anomalies are in the log
        already (scoring on ingest), count them for recovery only."""
        if not self.enabled:
            return
        modelled = scores.tier == _MODEL
        found = modelled & scores.anomaly
        at = np.flatnonzero(found).tolist()
        if not at and not self.watch:
            return
        stale = (
            scores.stale if scores.stale is not None else np.zeros(values.size, bool)
        )
        anomalous: set[str] = set()
        for i in at:
            sid = series_ids[i]
            anomalous.add(sid)
            if logged:
                self.watch[sid] = 0
                continue
            expected, width = float(scores.expected[i]), float(scores.width[i])
            value = float(values[i])
            self._anomaly(
                ScoredAnomaly(
                    sid, float(timestamps[i]), value, float(scores.score[i]),
                    expected, expected - width, expected + width,
                    "above" if value > expected else "below",
                    REASONS[scores.reason[i]], int(scores.version[i]),
                    ALGORITHMS[scores.algorithm[i]], bool(stale[i]),
                )
            )  # fmt: skip
        # Most batches hold no watched series: found in C, not reading by reading.
        watched = self.watch.keys() - anomalous if self.watch else set()
        if watched and not watched.isdisjoint(series_ids):
            normal = modelled & ~scores.anomaly
            for i in np.flatnonzero(normal).tolist():
                sid = series_ids[i]
                if sid in watched:
                    self._normal(sid, float(timestamps[i]))

    def sensor(self, verdict: SensorVerdict, timestamp: float) -> None:
        """A sensor's reading scored by its sensor model: an anomaly is its top
        contributing axis' (the incident gathers the sensor's axes)."""
        if not self.enabled:
            return
        axes = [f"{verdict.sensor_id}_{axis}" for axis in verdict.axes]
        if not verdict.anomaly:
            for sid in axes:
                if sid in self.watch:
                    self._normal(sid, timestamp)
            return
        top = int(np.argmax(verdict.contributions))
        value, expected = float(verdict.values[top]), float(verdict.expected[top])
        known = expected == expected  # NaN: an axis the model leaves out
        self._anomaly(
            ScoredAnomaly(
                axes[top], timestamp, value, verdict.score,
                expected if known else None,
                float(verdict.lower[top]) if known else None,
                float(verdict.upper[top]) if known else None,
                verdict.direction or ("above" if value > expected else "below"),
                verdict.reason or "axis_correlation_break", verdict.version,
                "multivariate", False,
            )
        )  # fmt: skip

    def _anomaly(self, anomaly: ScoredAnomaly) -> None:
        self.watch[anomaly.series_id] = 0
        with self._lock:
            self._anomalies.append(anomaly)
            if len(self._anomalies) > self.max_pending:
                drop = len(self._anomalies) - self.max_pending
                del self._anomalies[:drop]
                self.dropped += drop

    def _normal(self, series_id: str, timestamp: float) -> None:
        # Readings of one series may be scored in two threads at once: a lost
        # count delays a recovery by a reading, a recovery is made once.
        streak = self.watch.get(series_id)
        if streak is None:
            return
        if streak + 1 < self.resolve_after:
            self.watch[series_id] = streak + 1
            return
        if self.watch.pop(series_id, None) is None:
            return
        with self._lock:
            self._recoveries.append(Recovery(series_id, timestamp))

    def follow(self, series_ids: Iterable[str]) -> None:
        """Watch these series too (anomalous in a live incident)."""
        if not self.enabled:
            return
        for sid in series_ids:
            self.watch.setdefault(sid, 0)

    @property
    def pending(self) -> int:
        return len(self._anomalies) + len(self._recoveries)

    def flush(self, sink: SignalSink) -> int:
        """Write what is queued (one transaction); how many signals. On
        failure they stay queued, before any queued since."""
        with self._lock:
            anomalies, self._anomalies = self._anomalies, []
            recoveries, self._recoveries = self._recoveries, []
            dropped, self.dropped = self.dropped, 0
        if dropped:
            log.warning("inference.anomalies_dropped", anomalies=dropped)
        if not anomalies and not recoveries:
            return 0
        try:
            sink.add_signals(anomalies, recoveries)
        except BaseException:
            with self._lock:
                self._anomalies[:0] = anomalies
                self._recoveries[:0] = recoveries
            raise
        return len(anomalies) + len(recoveries)
