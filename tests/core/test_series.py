from __future__ import annotations

import numpy as np
import pytest

from atalaia.core.series import (
    MAX_ABS_VALUE,
    MAX_TRAINING_POINTS,
    MIN_TRAINING_POINTS,
    Readings,
    TimeRange,
    check_series_id,
    check_value,
    check_values,
    sensor_of,
    validate_training_data,
)
from atalaia.errors import InvalidInput, InvalidSeries, InvalidSeriesId
from fixtures.readings import sensor_readings, sensor_series


def broken(
    index: int, *, timestamp: float | None = None, value: float | None = None
) -> Readings:
    """A valid training series with one timestamp or value replaced."""
    readings = sensor_readings(MIN_TRAINING_POINTS)
    ts, vs = readings.timestamps.copy(), readings.values.copy()
    if timestamp is not None:
        ts[index] = timestamp
    if value is not None:
        vs[index] = value
    return Readings(ts, vs)


def rule_broken_by(readings: Readings) -> str:
    with pytest.raises(InvalidSeries) as caught:
        validate_training_data(readings)
    return caught.value.rule


class TestValidateTrainingData:
    def test_accepts_a_week_of_minute_readings(self) -> None:
        validate_training_data(sensor_readings())

    def test_accepts_the_exact_point_limits(self) -> None:
        validate_training_data(sensor_readings(MIN_TRAINING_POINTS))
        validate_training_data(sensor_readings(MAX_TRAINING_POINTS))

    def test_rejects_too_few_points(self) -> None:
        assert rule_broken_by(sensor_readings(MIN_TRAINING_POINTS - 1)) == "min_points"

    def test_rejects_too_many_points(self) -> None:
        assert rule_broken_by(sensor_readings(MAX_TRAINING_POINTS + 1)) == "max_points"

    def test_rejects_a_timestamp_going_back_in_time(self) -> None:
        readings = broken(500, timestamp=float(sensor_readings().timestamps[10]))
        assert rule_broken_by(readings) == "strictly_increasing"

    def test_rejects_a_duplicate_timestamp(self) -> None:
        readings = sensor_readings(MIN_TRAINING_POINTS)
        readings = broken(500, timestamp=float(readings.timestamps[499]))
        assert rule_broken_by(readings) == "no_duplicates"

    @pytest.mark.parametrize(
        "bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"]
    )
    def test_rejects_a_non_finite_value(self, bad: float) -> None:
        assert rule_broken_by(broken(1234, value=bad)) == "finite_values"

    @pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
    def test_rejects_a_non_finite_timestamp(self, bad: float) -> None:
        assert rule_broken_by(broken(MIN_TRAINING_POINTS - 1, timestamp=bad)) == (
            "finite_timestamps"
        )

    def test_rejects_a_constant_series(self) -> None:
        ts, _ = sensor_series(MIN_TRAINING_POINTS)
        assert rule_broken_by(Readings(ts, np.full(ts.size, 0.42))) == "non_constant"

    def test_rejects_a_nearly_constant_series(self) -> None:
        ts, _ = sensor_series(MIN_TRAINING_POINTS)
        values = 0.42 + np.where(np.arange(ts.size) % 2 == 0, 1e-7, -1e-7)
        assert rule_broken_by(Readings(ts, values)) == "non_constant"

    def test_prints_a_duplicate_as_a_plain_number(self) -> None:
        readings = sensor_readings(MIN_TRAINING_POINTS)
        readings = broken(500, timestamp=float(readings.timestamps[499]))

        with pytest.raises(InvalidSeries) as caught:
            validate_training_data(readings)

        assert "np." not in caught.value.detail
        assert f"timestamp {float(readings.timestamps[500])!r} at" in (
            caught.value.detail
        )

    def test_names_the_offending_index(self) -> None:
        with pytest.raises(InvalidSeries, match="index 1234"):
            validate_training_data(broken(1234, value=np.nan))

    def test_is_an_invalid_input(self) -> None:
        with pytest.raises(InvalidInput):
            validate_training_data(sensor_readings(10))


class TestReadingsOf:
    def test_pairs_lists_into_float_columns(self) -> None:
        readings = Readings.of([1, 2, 3], [0.5, 0.25, 1])
        assert readings.timestamps.dtype == np.float64
        assert readings.values.tolist() == [0.5, 0.25, 1.0]
        assert len(readings) == 3

    def test_rejects_columns_of_unequal_length(self) -> None:
        with pytest.raises(InvalidSeries) as caught:
            Readings.of([1.0, 2.0, 3.0], [0.5, 0.25])
        assert caught.value.rule == "equal_lengths"

    def test_rejects_nested_lists(self) -> None:
        with pytest.raises(InvalidSeries) as caught:
            Readings.of([[1.0, 2.0]], [[0.5, 0.25]])
        assert caught.value.rule == "shape"


class TestCheckSeriesId:
    @pytest.mark.parametrize(
        "series_id",
        ["sensor_001_radial", "a.b:c-d", "X", "9", "a" * 128],
    )
    def test_accepts_a_valid_id(self, series_id: str) -> None:
        assert check_series_id(series_id) == series_id

    @pytest.mark.parametrize(
        "series_id",
        [
            "",
            "a" * 129,
            "sensor 001",
            "sensor/001",
            "sensör_001",
            "sensor_001\n",
            "a*b",
        ],
        ids=["empty", "129-chars", "space", "slash", "unicode", "newline", "star"],
    )
    def test_rejects_an_invalid_id(self, series_id: str) -> None:
        with pytest.raises(InvalidSeriesId) as caught:
            check_series_id(series_id)
        assert caught.value.rule == "series_id_format"


class TestSensorOf:
    @pytest.mark.parametrize(
        ("series_id", "expected"),
        [
            ("sensor_001_radial", ("sensor_001", "radial")),
            ("sensor_001_axial", ("sensor_001", "axial")),
            ("pump7", ("pump7", None)),
            ("sensor_001", ("sensor_001", None)),
            ("_radial", ("_radial", None)),
            ("sensor_", ("sensor_", None)),
        ],
    )
    def test_splits_sensor_and_axis(
        self, series_id: str, expected: tuple[str, str | None]
    ) -> None:
        assert sensor_of(series_id) == expected


class TestValueRange:
    def test_values_whose_spread_would_overflow_are_refused(self) -> None:
        values = np.where(np.arange(10_000) % 2 == 0, 1e308, -1e308)
        readings = Readings.of(np.arange(10_000, dtype=np.float64), values)

        with pytest.raises(InvalidSeries) as caught:
            validate_training_data(readings)

        assert caught.value.rule == "value_range"

    def test_accepts_both_bounds_and_an_empty_column(self) -> None:
        check_values(np.array([MAX_ABS_VALUE, -MAX_ABS_VALUE, 0.0]))
        check_values(np.array([], dtype=np.float64))
        check_value(-MAX_ABS_VALUE)

    @pytest.mark.parametrize("bad", [MAX_ABS_VALUE * 1.01, -np.inf, np.nan])
    def test_names_the_first_value_outside(self, bad: float) -> None:
        with pytest.raises(InvalidSeries) as caught:
            check_values(np.array([1.0, bad, bad]))

        assert caught.value.rule == "value_range"
        assert caught.value.detail.startswith("value at index 1 is")

    @pytest.mark.parametrize("bad", [1.79e308, np.nan])
    def test_refuses_one_value_outside(self, bad: float) -> None:
        with pytest.raises(InvalidInput) as caught:
            check_value(bad)

        assert caught.value.rule == "value_range"


class TestTimeRange:
    span = TimeRange()

    def test_accepts_both_bounds_and_an_empty_column(self) -> None:
        self.span.check(np.array([self.span.low, 1_733_011_200.0, self.span.high]))
        self.span.check(np.array([], np.float64))
        self.span.check_one(self.span.high)

    @pytest.mark.parametrize(
        ("bad", "unit"),
        [
            (1_733_011_200_000.0, "milliseconds"),
            (1_733_011_200_000_000.0, "microseconds"),
            (1.7330112e18, "nanoseconds"),
        ],
    )
    def test_names_the_unit_that_finer_timestamps_look_like(
        self, bad: float, unit: str
    ) -> None:
        with pytest.raises(InvalidSeries) as caught:
            self.span.check(np.array([1_733_011_200.0, bad]))

        assert caught.value.rule == "timestamp_range"
        assert "timestamp at index 1" in caught.value.detail
        assert f"timestamps look like {unit}; send seconds" in caught.value.detail

    @pytest.mark.parametrize("bad", [1e300, -1e12, 1e18 * 1e9, np.nan, -np.inf, 0.0])
    def test_refuses_implausible_times_without_a_unit_hint(self, bad: float) -> None:
        with pytest.raises(InvalidInput) as caught:
            self.span.check_one(bad, name="start")

        detail = caught.value.detail
        assert caught.value.rule == "timestamp_range"
        assert detail.startswith(f"start is {bad!r}, outside 2000-01-01T00:00:00")
        assert "look like" not in detail

    def test_bounds_come_from_the_caller(self) -> None:
        TimeRange(0.0, 10.0).check(np.arange(11, dtype=np.float64))

        with pytest.raises(InvalidSeries):
            TimeRange(0.0, 10.0).check(np.arange(12, dtype=np.float64))
