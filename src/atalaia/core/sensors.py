"""Sensors: several axes (series) read together, and the models of them.

A sensor's series are its axes (`sensor_001_radial`, `sensor_001_axial`…). A
sensor model is trained on the timestamps its axes share and stored with the
names of its axes, so that readings are matched to the model's columns by
name, whatever order they come in.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from atalaia.core.detectors.multivariate import SensorParams
from atalaia.core.series import (
    MAX_TRAINING_POINTS,
    MIN_TRAINING_POINTS,
    FloatArray,
    Readings,
)
from atalaia.errors import InvalidSeries


@dataclass(frozen=True, slots=True)
class SensorData:
    """The readings of a sensor's axes at the timestamps they share."""

    axes: tuple[str, ...]
    timestamps: FloatArray
    values: FloatArray  # readings × axes, in the order of `axes`

    def __len__(self) -> int:
        return int(self.timestamps.size)


def align_axes(sensor_id: str, windows: Mapping[str, Readings]) -> SensorData:
    """The readings of every axis at the timestamps all of them have (axes by
    name, sorted), to train on. Raise InvalidSeries (`sensor_axes`) without
    any axis, and (`min_points`, `max_points`) when the shared timestamps are
    too few or too many to train on."""
    if not windows:
        raise InvalidSeries(
            f"sensor {sensor_id!r} has no stored series (axes named "
            f"{sensor_id}_<axis>)",
            rule="sensor_axes",
        )
    axes = tuple(sorted(windows))
    data = shared_readings(axes, [windows[axis] for axis in axes])
    if not MIN_TRAINING_POINTS <= len(data) <= MAX_TRAINING_POINTS:
        raise InvalidSeries(
            f"training a sensor needs {MIN_TRAINING_POINTS:,} to "
            f"{MAX_TRAINING_POINTS:,} timestamps its axes ({', '.join(axes)}) "
            f"share; {sensor_id!r} has {len(data):,}",
            rule="min_points" if len(data) < MIN_TRAINING_POINTS else "max_points",
        )
    return data


def shared_readings(axes: tuple[str, ...], windows: Sequence[Readings]) -> SensorData:
    """The readings of each axis (`windows`, in the order of `axes`, at least
    one) at the timestamps all of them have."""
    shared = windows[0].timestamps
    for readings in windows[1:]:
        shared = np.intersect1d(shared, readings.timestamps, assume_unique=True)
    columns = [w.values[np.searchsorted(w.timestamps, shared)] for w in windows]
    return SensorData(axes, shared, np.column_stack(columns))


@dataclass(frozen=True, slots=True)
class StoredSensor:
    """A sensor model as the registry keeps it: its axes' names and its params."""

    axes: tuple[str, ...]
    params: SensorParams

    def to_bytes(self) -> bytes:
        """An .npz of the params' arrays and the axes' names (no pickle).

        >>> rows = np.random.default_rng(1).normal(size=(300, 2))
        >>> from atalaia.core.detectors.multivariate import Multivariate
        >>> stored = StoredSensor(("a", "b"), Multivariate().fit(rows, {
        ...     "threshold_sigma": 4.0, "window": 5.0}))
        >>> StoredSensor.from_bytes(stored.to_bytes()).axes
        ('a', 'b')
        """
        buffer = io.BytesIO()
        names = np.frombuffer("\n".join(self.axes).encode(), np.uint8)
        arrays: dict[str, Any] = {"axis_names": names, **self.params.to_arrays()}
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredSensor:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            axes = tuple(arrays["axis_names"].tobytes().decode().split("\n"))
            params = SensorParams.from_arrays(
                {name: arrays[name] for name in arrays.files if name != "axis_names"}
            )
        return cls(axes, params)
