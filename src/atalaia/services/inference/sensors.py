"""Sensor models in memory: each sensor's production model, and the last
readings its window needs, so that a sensor read one timestamp at a time is
scored as the library scores its readings in a row.

A reading of a sensor is the value of each of its axes at one timestamp; it is
scored against the readings of the previous requests (up to `window` − 1 of
them, in time order: a reading older than the last one kept is scored but not
kept). A new version starts with no readings kept (and a restart with none).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from atalaia.core.detectors.multivariate import SensorScores
from atalaia.core.series import FloatArray
from atalaia.core.serving import ServedSensor
from atalaia.errors import InvalidInput, SensorNotServed


@dataclass(slots=True)
class _Kept:
    """A served sensor model and the readings it keeps."""

    served: ServedSensor
    recent: deque[FloatArray]
    last: float = -np.inf  # the newest timestamp kept

    @classmethod
    def of(cls, served: ServedSensor) -> _Kept:
        return cls(served, deque(maxlen=served.model.params.window - 1))

    def keep(self, timestamp: float, row: FloatArray) -> None:
        """Keep a reading newer than the last kept (an older one is not)."""
        if timestamp > self.last:
            self.recent.append(row)
            self.last = timestamp


@dataclass(frozen=True, slots=True)
class SensorVerdict:
    """One reading of a sensor scored: the verdict, and per axis (in `axes`'
    order) its value, expected value, band and share of the score."""

    sensor_id: str
    version: int
    axes: tuple[str, ...]
    anomaly: bool
    score: float
    values: FloatArray
    expected: FloatArray
    lower: FloatArray
    upper: FloatArray
    contributions: FloatArray
    direction: str | None
    reason: str | None


@dataclass
class SensorModels:
    """Production sensor models by sensor id (one lock: scoring keeps readings)."""

    _kept: dict[str, _Kept] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        return len(self._kept)

    def served(self) -> list[ServedSensor]:
        """Every sensor model served (for the snapshot)."""
        with self._lock:
            return [kept.served for kept in self._kept.values()]

    def replace_all(self, sensors: Iterable[ServedSensor]) -> None:
        """Serve exactly these sensors (a full load)."""
        self.update(None, sensors)

    def update(
        self, ids: Iterable[str] | None, sensors: Iterable[ServedSensor]
    ) -> None:
        """Serve these sensors, and of `ids` (None: every sensor served) drop
        those not among them. A sensor keeps its readings while its version
        stays the same."""
        found = {s.sensor_id: s for s in sensors}
        with self._lock:
            gone = set(self._kept if ids is None else ids) - set(found)
            for sensor_id in gone:
                self._kept.pop(sensor_id, None)
            for sensor_id, served in found.items():
                kept = self._kept.get(sensor_id)
                if kept is None or kept.served.version != served.version:
                    self._kept[sensor_id] = _Kept.of(served)

    def check(self, sensor_id: str, values: Mapping[str, float]) -> None:
        """SensorNotServed unless the sensor has a model; InvalidInput
        (`sensor_axes`) unless `values` names exactly its axes."""
        with self._lock:
            kept = self._kept.get(sensor_id)
        if kept is None:
            raise SensorNotServed(sensor_id)
        _row(sensor_id, kept.served.model.axes, values)

    def score(
        self, sensor_id: str, timestamp: float, values: Mapping[str, float]
    ) -> SensorVerdict:
        """Score one reading of every axis of a sensor (see `score_many`)."""
        return self.score_many(sensor_id, [timestamp], [values])[0]

    def score_many(
        self,
        sensor_id: str,
        timestamps: Sequence[float],
        values: Sequence[Mapping[str, float]],
    ) -> list[SensorVerdict]:
        """Score readings of one sensor (each the value of every axis at one
        time) in time order, each against the readings kept before it, as one
        request at a time would; the verdicts in the given order.
        SensorNotServed without a model; InvalidInput (`sensor_axes`) unless
        each reading names exactly the model's axes."""
        order = sorted(range(len(timestamps)), key=timestamps.__getitem__)
        with self._lock:
            kept = self._kept.get(sensor_id)
            if kept is None:
                raise SensorNotServed(sensor_id)
            served = kept.served
            rows = [_row(sensor_id, served.model.axes, v) for v in values]
            times = [kept.last, *(timestamps[i] for i in order)]
            if all(a < b for a, b in pairwise(times)):  # all newer: one pass
                newer = [rows[i] for i in order]
                passes = [(order, np.vstack([*kept.recent, *newer]))]
                for i in order:
                    kept.keep(timestamps[i], rows[i])
            else:  # each on its own, after the readings kept before it
                passes = []
                for i in order:
                    passes.append(([i], np.vstack([*kept.recent, rows[i]])))
                    kept.keep(timestamps[i], rows[i])
        verdicts: dict[int, SensorVerdict] = {}
        for positions, window in passes:
            scored = served.model.params.score(window)
            first = window.shape[0] - len(positions)
            for k, i in enumerate(positions):
                verdicts[i] = _verdict(served, rows[i], scored, first + k)
        return [verdicts[i] for i in range(len(timestamps))]


def _row(
    sensor_id: str, axes: tuple[str, ...], values: Mapping[str, float]
) -> FloatArray:
    """One reading's values in the model's axis order; InvalidInput
    (`sensor_axes`) unless they name exactly its axes."""
    if set(values) != set(axes):
        raise InvalidInput(
            f"sensor {sensor_id!r} is modelled on axes {', '.join(axes)}; "
            f"got {', '.join(sorted(values)) or 'none'}",
            rule="sensor_axes",
        )
    return np.array([values[axis] for axis in axes], np.float64)


def _verdict(
    served: ServedSensor, values: FloatArray, scored: SensorScores, at: int
) -> SensorVerdict:
    direction, reason = str(scored.direction[at]), str(scored.reason[at])
    return SensorVerdict(
        sensor_id=served.sensor_id,
        version=served.version,
        axes=served.model.axes,
        anomaly=bool(scored.anomaly[at]),
        score=float(scored.score[at]),
        values=values,
        expected=scored.expected[at],
        lower=scored.lower[at],
        upper=scored.upper[at],
        contributions=scored.contributions[at],
        direction=direction or None,
        reason=reason or None,
    )
