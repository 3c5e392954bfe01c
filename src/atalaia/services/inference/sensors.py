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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

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

    def score(
        self, sensor_id: str, timestamp: float, values: Mapping[str, float]
    ) -> SensorVerdict:
        """Score one reading of every axis of a sensor. SensorNotServed without
        a model; InvalidInput (`sensor_axes`) unless `values` names exactly the
        model's axes."""
        with self._lock:
            kept = self._kept.get(sensor_id)
            if kept is None:
                raise SensorNotServed(sensor_id)
            axes = kept.served.model.axes
            if set(values) != set(axes):
                raise InvalidInput(
                    f"sensor {sensor_id!r} is modelled on axes {', '.join(axes)}; "
                    f"got {', '.join(sorted(values)) or 'none'}",
                    rule="sensor_axes",
                )
            row = np.array([values[axis] for axis in axes], np.float64)
            rows = np.vstack([*kept.recent, row])
            if timestamp > kept.last:
                kept.recent.append(row)
                kept.last = timestamp
        scored = kept.served.model.params.score(rows)
        direction, reason = str(scored.direction[-1]), str(scored.reason[-1])
        return SensorVerdict(
            sensor_id=sensor_id,
            version=kept.served.version,
            axes=axes,
            anomaly=bool(scored.anomaly[-1]),
            score=float(scored.score[-1]),
            values=row,
            expected=scored.expected[-1],
            lower=scored.lower[-1],
            upper=scored.upper[-1],
            contributions=scored.contributions[-1],
            direction=direction or None,
            reason=reason or None,
        )
