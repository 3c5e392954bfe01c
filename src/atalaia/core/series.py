"""Series identity and the validation rules for training data.

Timestamps are seconds since the Unix epoch (float64), values are float64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from atalaia.errors import InvalidInput, InvalidSeries, InvalidSeriesId

FloatArray = npt.NDArray[np.float64]

MAX_SERIES_ID_LENGTH = 128
SERIES_ID_PATTERN = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_SERIES_ID_LENGTH}}}")
MIN_TRAINING_POINTS = 10_000
MAX_TRAINING_POINTS = 100_000
MIN_STD = 1e-6
# Readings' values lie in ±MAX_ABS_VALUE (rule `value_range`). A square is then
# at most 4e200 (a deviation spans 2e100), so a series' sum of squared
# deviations stays finite below float64's 1.8e308 over any history (up to 4e107
# readings), and a score |value − centre| / width stays finite for any width a
# model holds. Real sensors stay dozens of orders of magnitude inside it.
MAX_ABS_VALUE = 1e100
# Plausible reading times (bounds included). Far from any millisecond, microsecond
# or nanosecond encoding of a date after 1970-02, so units are told apart.
DEFAULT_TIMESTAMP_MIN = 946_684_800.0  # 2000-01-01T00:00:00Z
DEFAULT_TIMESTAMP_MAX = 4_102_444_800.0  # 2100-01-01T00:00:00Z
_FINER_UNITS = (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9))


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


def number(x: float) -> str:
    """`x` as a plain number for messages: numpy scalars print no `np.float64(…)`.

    >>> number(np.float64(1733011200.0))
    '1733011200.0'
    """
    return repr(float(x))


def describe_time(ts: float) -> str:
    """ISO 8601 (UTC) of epoch seconds, or the number beyond datetime's years."""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return f"{number(ts)} s"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The epoch seconds a reading may carry, bounds included (settings
    `timestamp_min`, `timestamp_max`)."""

    low: float = DEFAULT_TIMESTAMP_MIN
    high: float = DEFAULT_TIMESTAMP_MAX

    def check(self, timestamps: FloatArray) -> None:
        """Raise InvalidSeries (rule `timestamp_range`) unless every one is in range.

        One min and one max when all are (the prediction batch's path).
        """
        if not timestamps.size:
            return
        if self.low <= timestamps.min() and timestamps.max() <= self.high:
            return
        inside = (timestamps >= self.low) & (timestamps <= self.high)
        at = int(np.argmin(inside))
        raise InvalidSeries(
            self._explain(float(timestamps[at]), f"timestamp at index {at}"),
            rule="timestamp_range",
        )

    def check_one(self, timestamp: float, *, name: str = "timestamp") -> None:
        """Raise InvalidInput (rule `timestamp_range`) unless it is in range."""
        if not self.low <= timestamp <= self.high:
            raise InvalidInput(self._explain(timestamp, name), rule="timestamp_range")

    def seconds_of(self, timestamp: float, *, name: str = "timestamp") -> float:
        """`timestamp` in seconds, read as seconds, milliseconds, microseconds or
        nanoseconds since the epoch, whichever lands in range (they never
        overlap: see DEFAULT_TIMESTAMP_MIN); InvalidInput (`timestamp_range`)
        when none does.

        >>> TimeRange().seconds_of(1733587200123)
        1733587200.123
        """
        if self.low <= timestamp <= self.high:
            return timestamp
        for _unit, per_second in _FINER_UNITS:
            if self.low <= timestamp / per_second <= self.high:
                return timestamp / per_second
        raise InvalidInput(self._explain(timestamp, name), rule="timestamp_range")

    def _explain(self, ts: float, what: str) -> str:
        detail = (
            f"{what} is {number(ts)}, outside {describe_time(self.low)} … "
            f"{describe_time(self.high)} ({number(self.low)} … {number(self.high)} "
            "seconds since the Unix epoch)"
        )
        for unit, per_second in _FINER_UNITS:
            if self.low <= ts / per_second <= self.high:
                return f"{detail}; timestamps look like {unit}; send seconds"
        return detail


def check_values(values: FloatArray) -> None:
    """Raise InvalidSeries (rule `value_range`) unless every |value| ≤ MAX_ABS_VALUE.

    One min and one max when all are (the prediction batch's path); NaN fails.
    """
    if not values.size:
        return
    if -MAX_ABS_VALUE <= values.min() and values.max() <= MAX_ABS_VALUE:
        return
    at = int(np.argmin(np.abs(values) <= MAX_ABS_VALUE))
    raise InvalidSeries(
        f"value at index {at} is {number(values[at])}; {_VALUE_RANGE}",
        rule="value_range",
    )


def check_value(value: float) -> None:
    """Raise InvalidInput (rule `value_range`) unless |value| ≤ MAX_ABS_VALUE."""
    if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
        raise InvalidInput(
            f"value is {number(value)}; {_VALUE_RANGE}", rule="value_range"
        )


_VALUE_RANGE = f"values lie within ±{MAX_ABS_VALUE:g}"


def check_readings(readings: Readings) -> None:
    """Raise InvalidSeries unless the readings are finite, strictly increasing,
    and their values in ±MAX_ABS_VALUE."""
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
                f"duplicate timestamp {number(ts[at])} at index {at}",
                rule="no_duplicates",
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
            f"values must be finite (no NaN or Inf); index {at} is {number(vs[at])}",
            rule="finite_values",
        )
    check_values(vs)


def validate_training_data(readings: Readings) -> None:
    """Apply every training rule; raise InvalidSeries naming the first one broken.

    Rules: MIN_TRAINING_POINTS ≤ n ≤ MAX_TRAINING_POINTS, timestamps strictly
    increasing without duplicates, finite values in ±MAX_ABS_VALUE, standard
    deviation > MIN_STD.
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
    std = float(np.std(readings.values))  # finite: values are in ±MAX_ABS_VALUE
    if not std > MIN_STD:
        raise InvalidSeries(
            f"values are constant (std {std:.3g} ≤ {MIN_STD:g}); nothing to learn",
            rule="non_constant",
        )
