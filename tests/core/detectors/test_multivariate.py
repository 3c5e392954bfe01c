"""The multivariate detector: a sensor's axes modelled and scored together."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia.core.detectors.multivariate import (
    Multivariate,
    SensorParams,
    SensorReadings,
)
from atalaia.core.detectors.robust import Robust
from atalaia.errors import InvalidHyperparameters, InvalidSeries

RNG = np.random.default_rng(5)
N = 600
T = 1.7e9 + np.arange(N + 200, dtype=np.float64)
DEFAULTS = Multivariate.defaults


def _sensor(n: int, rng: np.random.Generator = RNG) -> np.ndarray:
    """Three axes following one load (an AR(1) wander), each with its noise."""
    load = np.zeros(n)
    shocks = rng.normal(0, 0.3, n)
    for i in range(1, n):
        load[i] = 0.95 * load[i - 1] + shocks[i]
    noise = rng.normal(0, 0.1, (n, 3))
    return np.column_stack([load, 2 * load + 5, -load + 1]) + noise


ROWS = _sensor(N + 200)
TRAIN, TEST = ROWS[:N], ROWS[N:]
PARAMS = Multivariate().fit(TRAIN, DEFAULTS)


def _fit(rows: np.ndarray, **given: float) -> SensorParams:
    detector = Multivariate()
    return detector.fit(rows, detector.check(given))


class TestScores:
    def test_have_one_row_per_reading_and_one_column_per_axis(self) -> None:
        s = PARAMS.score(TEST)

        assert s.score.shape == s.anomaly.shape == s.direction.shape == (200,)
        for per_axis in (s.expected, s.lower, s.upper, s.contributions):
            assert per_axis.shape == (200, 3)

    def test_rarely_flag_normal_readings(self) -> None:
        fresh = _sensor(20_000, np.random.default_rng(9))

        assert PARAMS.score(fresh).anomaly.mean() < 1e-3

    def test_flag_a_correlation_break_that_per_axis_bands_miss(self) -> None:
        broken = TEST.copy()
        broken[100:130, 1] = 2 * -TEST[100:130, 0] + 5  # against the load
        inside = (broken >= TRAIN.min(axis=0)) & (broken <= TRAIN.max(axis=0))
        assert inside[100:130].all()  # each axis alone stays in its range
        bands = [Robust().fit(TRAIN[:, a], Robust.defaults) for a in range(3)]

        s = PARAMS.score(broken)

        assert s.anomaly[100:130].mean() > 0.9  # not where the load is near 0
        assert not s.anomaly[:100].any()
        assert not s.anomaly[134:].any()
        assert set(s.reason[s.anomaly]) == {"axis_correlation_break"}
        for axis, band in enumerate(bands):
            low, high = band.band()
            assert ((broken[:, axis] >= low) & (broken[:, axis] <= high)).all()

    def test_name_the_axis_that_breaks_and_its_direction(self) -> None:
        pushed = TEST.copy()
        pushed[50, 2] += 3.0

        s = PARAMS.score(pushed)

        assert s.anomaly[50]
        assert np.argmax(s.contributions[50]) == 2
        assert s.contributions[50, 2] > 0.5
        assert s.direction[50] == "above"
        assert s.expected[50, 2] == pytest.approx(TEST[50, 2], abs=0.5)
        assert s.upper[50, 2] < pushed[50, 2]

    def test_a_lasting_shift_within_the_noise_shows_in_the_window(self) -> None:
        shifted = TEST.copy()
        shifted[100:150, 2] += 0.4  # 4 noise sigmas: few readings flag alone
        per_reading = _fit(TRAIN, window=1).score(shifted)

        windowed = PARAMS.score(shifted)

        assert per_reading.anomaly[100:150].mean() < 0.2
        assert windowed.anomaly[104:150].all()  # once the window is in it
        assert not windowed.anomaly[154:].any()  # and until it is out

    def test_bands_hold_the_expected_value_and_contributions_sum_to_one(self) -> None:
        s = PARAMS.score(TEST)

        assert (s.lower < s.expected).all()
        assert (s.expected < s.upper).all()
        assert s.contributions.sum(axis=1) == pytest.approx(np.ones(200))
        assert (s.contributions >= 0).all()

    def test_explain_only_anomalies(self) -> None:
        s = PARAMS.score(TEST)

        assert ((s.direction == "") == ~s.anomaly).all()
        assert ((s.reason == "") == ~s.anomaly).all()
        assert (s.anomaly == (s.score > 1)).all()


class TestAxes:
    def test_a_wandering_axis_is_left_out(self) -> None:
        rows = np.column_stack([TRAIN, np.linspace(20.0, 30.0, N)])  # warming up
        later = np.column_stack([TEST, np.full(200, 45.0)])

        params = _fit(rows)
        s = params.score(later)

        assert params.modelled.tolist() == [0, 1, 2]
        assert not s.anomaly.any()
        assert (s.contributions[:, 3] == 0).all()
        assert np.isnan(s.expected[:, 3]).all()
        assert np.isnan(s.upper[:, 3]).all()

    def test_a_shared_load_is_not_wander(self) -> None:
        slow = _sensor(N, np.random.default_rng(2)) * [1, 1, 1]
        slow[:, :] += np.linspace(0, 10, N)[:, None] * [1, 2, -1]

        assert _fit(slow).modelled.tolist() == [0, 1, 2]

    def test_a_constant_axis_is_left_out(self) -> None:
        rows = np.column_stack([TRAIN, np.full(N, 7.0)])

        assert _fit(rows).modelled.tolist() == [0, 1, 2]

    def test_one_axis_is_a_robust_band(self) -> None:
        params = _fit(TRAIN[:, :1])
        s = params.score(np.array([[0.0], [50.0]]))

        assert s.anomaly.tolist() == [False, True]
        assert s.reason.tolist() == ["", "outside_band"]
        assert s.contributions.tolist() == [[1.0], [1.0]]

    def test_a_few_outliers_in_training_do_not_widen_the_model(self) -> None:
        spiked = TRAIN.copy()
        spiked[RNG.choice(N, 15, replace=False)] += 40.0

        clean, dirty = PARAMS.score(TEST), _fit(spiked).score(TEST)

        assert dirty.upper - dirty.lower == pytest.approx(
            clean.upper - clean.lower, rel=0.2
        )


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 199), st.floats(-3.0, 3.0), st.integers(0, 2))
def test_scoring_is_causal(prefix: int, push: float, axis: int) -> None:
    """A reading's answer depends on the readings up to it alone."""
    rows = TEST.copy()
    rows[prefix // 2, axis] += push

    whole, head = PARAMS.score(rows), PARAMS.score(rows[:prefix])

    assert (head.score == whole.score[:prefix]).all()
    assert np.array_equal(head.expected, whole.expected[:prefix])
    assert np.array_equal(head.contributions, whole.contributions[:prefix])
    assert (head.direction == whole.direction[:prefix]).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 8))
def test_any_sensor_scores_within_the_contract(
    seed: int, axes: int, window: int
) -> None:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(axes, axes))
    rows = rng.normal(size=(300, axes)) @ mixing + rng.uniform(-5, 5, axes)
    params = _fit(rows, window=window)

    s = params.score(rng.normal(size=(50, axes)) @ mixing * 3)

    assert (s.score >= 0).all()
    assert np.isfinite(s.score).all()
    assert s.contributions.sum(axis=1) == pytest.approx(np.ones(50))
    assert (s.anomaly == (s.score > 1)).all()


class TestStorage:
    def test_round_trips_through_arrays_and_an_npz(self) -> None:
        buffer = io.BytesIO()
        arrays: dict[str, Any] = PARAMS.to_arrays()  # savez types its keywords
        np.savez(buffer, **arrays)
        buffer.seek(0)
        with np.load(buffer) as stored:
            again = SensorParams.from_arrays(dict(stored))

        first, second = PARAMS.score(TEST), again.score(TEST)
        assert np.array_equal(first.score, second.score)
        assert np.array_equal(first.upper, second.upper)
        assert again.modelled.tolist() == PARAMS.modelled.tolist()

    def test_is_a_few_small_arrays(self) -> None:
        arrays = PARAMS.to_arrays()

        assert sum(a.size for a in arrays.values()) < 40


class TestValidation:
    def test_readings_pair_up_row_by_row(self) -> None:
        with pytest.raises(InvalidSeries, match="pair up") as caught:
            SensorReadings.of(T[:10], ROWS[:9])
        assert caught.value.rule == "equal_lengths"

    def test_values_are_rows_of_axes(self) -> None:
        with pytest.raises(InvalidSeries, match="readings × axes"):
            SensorReadings.of(T[:4], np.zeros((4, 2, 2)))
        with pytest.raises(InvalidSeries, match="readings × axes"):
            SensorReadings.of(T[:4], np.zeros((4, 0)))

    def test_each_axis_is_checked_and_named(self) -> None:
        rows = ROWS[:10].copy()
        rows[3, 2] = np.nan

        with pytest.raises(InvalidSeries, match="axis 2: values must be finite"):
            SensorReadings.of(T[:10], rows)
        with pytest.raises(InvalidSeries, match="strictly increasing"):
            SensorReadings.of(T[:10][::-1], ROWS[:10])

    def test_one_dimensional_values_are_one_axis(self) -> None:
        assert SensorReadings.of(T[:5], ROWS[:5, 0]).values.shape == (5, 1)

    def test_scoring_takes_the_model_s_axes(self) -> None:
        with pytest.raises(InvalidSeries, match="the model has 3 axes") as caught:
            PARAMS.score(TEST[:, :2])
        assert caught.value.rule == "axes"

    def test_training_needs_enough_readings(self) -> None:
        with pytest.raises(InvalidSeries, match="at least 104 readings") as caught:
            _fit(TRAIN[:103])
        assert caught.value.rule == "min_points"

    def test_training_needs_a_varying_axis(self) -> None:
        with pytest.raises(InvalidSeries, match="constant") as caught:
            _fit(np.ones((N, 2)))
        assert caught.value.rule == "non_constant"

    @pytest.mark.parametrize(
        ("given", "rule"),
        [
            ({"window": 2.5}, "hyperparameters_integer"),
            ({"window": 0.0}, "hyperparameters_positive"),
            ({"threshold_sigma": -1.0}, "hyperparameters_positive"),
            ({"alpha": 1.0}, "hyperparameters_known"),
        ],
    )
    def test_hyperparameters_are_checked(
        self, given: dict[str, float], rule: str
    ) -> None:
        with pytest.raises(InvalidHyperparameters) as caught:
            Multivariate().check(given)
        assert caught.value.rule == rule
