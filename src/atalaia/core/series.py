"""Series identity and the validation rules for training data.

Timestamps are seconds since the Unix epoch (float64), values are float64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from atalaia.errors import InvalidSeries, InvalidSeriesId

FloatArray = npt.NDArray[np.float64]

MAX_SERIES_ID_LENGTH = 128
SERIES_ID_PATTERN = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_SERIES_ID_LENGTH}}}")
MIN_TRAINING_POINTS = 10_000
MAX_TRAINING_POINTS = 100_000
MIN_STD = 1e-6


def check_series_id(series_id: str) -> str:
    """Return `series_id` unchanged, or raise InvalidSeriesId."""
    if not SERIES_ID_PATTERN.fullmatch(series_id):
        raise InvalidSeriesId(series_id)
    return series_id


def sensor_of(series_id: str) -> tuple[str, str | None]:
    """Split `sensor_001_radial` into (`sensor_001`, `radial`); no axis → None.

    >>> sensor_of("sensor_001_radial")
    ('sensor_001', 'radial')
    >>> sensor_of("pump7")
    ('pump7', None)
    """
    head, sep, tail = series_id.rpartition("_")
    if not sep or not head or not tail.isalpha():
        return series_id, None
    return head, tail


@dataclass(frozen=True, slots=True)
class Readings:
    """A series' readings as two aligned columns."""

    timestamps: FloatArray
    values: FloatArray

    @classmethod
    def of(cls, timestamps: object, values: object) -> Readings:
        ts = np.asarray(timestamps, dtype=np.float64)
        vs = np.asarray(values, dtype=np.float64)
        if ts.ndim != 1 or vs.ndim != 1:
            raise InvalidSeries(
                "timestamps and values must be flat lists", rule="shape"
            )
        if ts.shape != vs.shape:
            raise InvalidSeries(
                f"got {ts.size} timestamps but {vs.size} values; they must pair up",
                rule="equal_lengths",
            )
        return cls(ts, vs)

    def __len__(self) -> int:
        return int(self.values.size)


def check_readings(readings: Readings) -> None:
    """Raise InvalidSeries unless the readings are finite and strictly increasing."""
    ts, vs = readings.timestamps, readings.values
    if not np.isfinite(ts).all():
        raise InvalidSeries(
            "timestamps must be finite numbers", rule="finite_timestamps"
        )
    if ts.size > 1:
        steps = np.diff(ts)
        if (steps == 0).any():
            at = int(np.argmax(steps == 0)) + 1
            raise InvalidSeries(
                f"duplicate timestamp {ts[at]!r} at index {at}", rule="no_duplicates"
            )
        if (steps < 0).any():
            at = int(np.argmax(steps < 0)) + 1
            raise InvalidSeries(
                f"timestamps must be strictly increasing; index {at} goes back in time",
                rule="strictly_increasing",
            )
    finite = np.isfinite(vs)
    if not finite.all():
        at = int(np.argmin(finite))
        raise InvalidSeries(
            f"values must be finite (no NaN or Inf); index {at} is {vs[at]!r}",
            rule="finite_values",
        )


def validate_training_data(readings: Readings) -> None:
    """Apply every training rule; raise InvalidSeries naming the first one broken.

    Rules: MIN_TRAINING_POINTS ≤ n ≤ MAX_TRAINING_POINTS, timestamps strictly
    increasing without duplicates, finite values whose spread is finite too,
    standard deviation > MIN_STD.
    """
    n = len(readings)
    if n < MIN_TRAINING_POINTS:
        raise InvalidSeries(
            f"training needs at least {MIN_TRAINING_POINTS} points, got {n}",
            rule="min_points",
        )
    if n > MAX_TRAINING_POINTS:
        raise InvalidSeries(
            f"training takes at most {MAX_TRAINING_POINTS} points, got {n}",
            rule="max_points",
        )
    check_readings(readings)
    with np.errstate(over="ignore", invalid="ignore"):
        std = float(np.std(readings.values))
    if not np.isfinite(std):
        raise InvalidSeries(
            "values are too large to fit a model (their spread overflows float64)",
            rule="value_range",
        )
    if not std > MIN_STD:
        raise InvalidSeries(
            f"values are constant (std {std:.3g} ≤ {MIN_STD:g}); nothing to learn",
            rule="non_constant",
        )
