"""The contract every detector of the catalog honours (river `test_estimators`)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from atalaia.core.detectors import (
    DETECTORS,
    MAX_HYPERPARAMETER,
    Detector,
    ModelParams,
    fit,
    fit_rows,
    get_detector,
    resolve_hyperparameters,
    score_columns,
    stack_by_length,
)
from atalaia.errors import InvalidHyperparameters, UnknownAlgorithm
from fixtures.readings import sensor_series

ALGORITHMS = sorted(DETECTORS)
# The API documents one threshold hyperparameter name for every detector.
THRESHOLD = "threshold_sigma"

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@pytest.fixture(params=ALGORITHMS)
def algorithm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def detector(algorithm: str) -> Detector:
    return get_detector(algorithm)


def score_one(params: ModelParams, values: FloatArray) -> tuple[FloatArray, BoolArray]:
    n = values.size
    return score_columns(
        np.full(n, params.center),
        np.full(n, params.scale),
        np.full(n, params.threshold),
        values,
    )


class TestCatalog:
    def test_lists_the_documented_detectors(self) -> None:
        assert {"zscore", "robust"} <= set(DETECTORS)

    def test_names_each_detector_by_its_own_name(self) -> None:
        for name, detector in DETECTORS.items():
            assert detector.name == name

    def test_rejects_an_unknown_algorithm(self) -> None:
        with pytest.raises(UnknownAlgorithm) as caught:
            get_detector("nope")
        assert caught.value.rule == "algorithm_known"
        assert "zscore" in caught.value.detail

    def test_rejects_an_unknown_algorithm_when_fitting(self) -> None:
        with pytest.raises(UnknownAlgorithm):
            fit("nope", np.arange(10.0), {})


class TestDetectorContract:
    def test_has_positive_default_hyperparameters(self, detector: Detector) -> None:
        assert THRESHOLD in detector.defaults
        assert all(math.isfinite(v) and v > 0 for v in detector.defaults.values())

    def test_fits_finite_params_with_positive_scale(self, algorithm: str) -> None:
        values = np.random.default_rng(7).normal(5.0, 2.0, 10_000)
        params = fit(algorithm, values, {})
        assert all(math.isfinite(x) for x in params.as_dict().values())
        assert params.scale > 0
        assert params.threshold > 0
        assert params.center == pytest.approx(5.0, abs=0.1)
        assert params.scale == pytest.approx(2.0, rel=0.05)

    def test_fits_deterministically(self, algorithm: str) -> None:
        _, values = sensor_series(seed=3)
        assert fit(algorithm, values, {}) == fit(algorithm, values.copy(), {})

    def test_does_not_modify_the_values(self, algorithm: str) -> None:
        _, values = sensor_series(seed=3)
        before = values.copy()
        fit(algorithm, values, {})
        np.testing.assert_array_equal(values, before)

    def test_uses_the_default_threshold(
        self, detector: Detector, algorithm: str
    ) -> None:
        _, values = sensor_series()
        assert fit(algorithm, values, {}).threshold == detector.defaults[THRESHOLD]

    def test_respects_the_threshold_hyperparameter(self, algorithm: str) -> None:
        _, values = sensor_series()
        loose = fit(algorithm, values, {THRESHOLD: 6})
        assert loose.threshold == 6.0
        strict = fit(algorithm, values, {THRESHOLD: 1.5})
        assert (strict.center, strict.scale) == (loose.center, loose.scale)
        lo, hi = strict.band()
        assert hi - lo == pytest.approx(2 * 1.5 * strict.scale)

    def test_flags_a_ten_sigma_spike_and_few_normal_points(
        self, algorithm: str
    ) -> None:
        train_ts, train = sensor_series(seed=1)
        params = fit(algorithm, train, {})
        _, recent = sensor_series(seed=2, spikes=[100], spike_sigma=10.0)
        score, anomaly = score_one(params, recent)
        assert anomaly[100]
        assert score[100] > 1.0
        normal = np.delete(anomaly, 100)
        assert normal.mean() < 0.01
        assert train_ts.size == recent.size

    def test_flags_a_new_spike_when_trained_on_spiky_data(self, algorithm: str) -> None:
        _, train = sensor_series(seed=4, spikes=range(0, 10_000, 500))
        params = fit(algorithm, train, {})
        _, recent = sensor_series(seed=5, spikes=[7], spike_sigma=10.0)
        _, anomaly = score_one(params, recent)
        assert anomaly[7]


# Series of unequal lengths; rounding some makes ties and plateaus, where the
# robust detector's MAD is zero and it falls back on the standard deviation.
SERIES = st.lists(
    st.tuples(
        hnp.arrays(
            np.float64,
            st.integers(1, 60),
            elements=st.floats(-1e6, 1e6, allow_subnormal=False),
        ),
        st.sampled_from([None, 0, 2]),
    ).map(lambda pair: pair[0] if pair[1] is None else np.round(pair[0], pair[1])),
    min_size=1,
    max_size=12,
)


class TestFitRows:
    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    @settings(max_examples=200, deadline=None)
    @given(series=SERIES, threshold=st.floats(0.5, 10.0))
    def test_fits_each_series_exactly_as_fitting_it_alone(
        self, algorithm: str, series: list[FloatArray], threshold: float
    ) -> None:
        hyperparameters = {THRESHOLD: threshold}
        fitted: dict[int, ModelParams] = {}
        for stack in stack_by_length(series):
            columns = fit_rows(algorithm, stack.rows, hyperparameters)
            fitted |= {i: columns.params(k) for k, i in enumerate(stack.members)}
        assert [fitted[i] for i in range(len(series))] == [
            fit(algorithm, values, hyperparameters) for values in series
        ]

    def test_does_not_modify_the_rows(self, algorithm: str) -> None:
        rows = np.random.default_rng(5).normal(0.0, 1.0, (4, 101))
        before = rows.copy()
        fit_rows(algorithm, rows, {})
        np.testing.assert_array_equal(rows, before)


class TestStackByLength:
    def test_stacks_series_of_one_length_and_keeps_their_indexes(self) -> None:
        series = [np.arange(3.0), np.arange(2.0), np.arange(3.0) + 10]
        stacks = stack_by_length(series)
        assert [s.members for s in stacks] == [[0, 2], [1]]
        np.testing.assert_array_equal(stacks[0].rows[1], series[2])


class TestHyperparameters:
    def test_fills_in_the_defaults(self, detector: Detector, algorithm: str) -> None:
        assert resolve_hyperparameters(algorithm, {}) == detector.defaults

    def test_converts_integers_to_floats(self, algorithm: str) -> None:
        resolved = resolve_hyperparameters(algorithm, {THRESHOLD: 4})
        assert resolved == {THRESHOLD: 4.0}
        assert isinstance(resolved[THRESHOLD], float)

    def test_rejects_an_unknown_hyperparameter(self, algorithm: str) -> None:
        with pytest.raises(InvalidHyperparameters, match="window") as caught:
            resolve_hyperparameters(algorithm, {"window": 3})
        assert caught.value.rule == "hyperparameters_known"

    @pytest.mark.parametrize(
        "value",
        [0, -1, -0.5, math.nan, math.inf],
        ids=["zero", "-1", "-0.5", "nan", "inf"],
    )
    def test_rejects_a_non_positive_or_non_finite_value(
        self, algorithm: str, value: float
    ) -> None:
        with pytest.raises(InvalidHyperparameters) as caught:
            resolve_hyperparameters(algorithm, {THRESHOLD: value})
        assert caught.value.rule == "hyperparameters_positive"

    @pytest.mark.parametrize("value", [MAX_HYPERPARAMETER * 1.001, 1e308])
    def test_rejects_a_value_above_the_bound(
        self, algorithm: str, value: float
    ) -> None:
        with pytest.raises(InvalidHyperparameters) as caught:
            resolve_hyperparameters(algorithm, {THRESHOLD: value})
        assert caught.value.rule == "hyperparameters_range"

    def test_takes_the_bound_itself(self, algorithm: str) -> None:
        resolved = resolve_hyperparameters(algorithm, {THRESHOLD: MAX_HYPERPARAMETER})
        assert resolved[THRESHOLD] == MAX_HYPERPARAMETER

    @pytest.mark.parametrize("value", ["3", None, True, [3.0], {"v": 3}])
    def test_rejects_a_non_numeric_value(self, algorithm: str, value: object) -> None:
        with pytest.raises(InvalidHyperparameters) as caught:
            resolve_hyperparameters(algorithm, {THRESHOLD: value})
        assert caught.value.rule == "hyperparameters_numeric"

    def test_rejects_an_integer_too_large_for_a_float(self, algorithm: str) -> None:
        with pytest.raises(InvalidHyperparameters):
            resolve_hyperparameters(algorithm, {THRESHOLD: 10**400})


class TestScoreColumns:
    def test_scores_distance_in_units_of_the_threshold(self) -> None:
        score, anomaly = score_columns(
            np.array([0.0, 0.0, 10.0]),
            np.array([1.0, 2.0, 1.0]),
            np.array([3.0, 3.0, 2.0]),
            np.array([3.0, -9.0, 11.0]),
        )
        np.testing.assert_allclose(score, [1.0, 1.5, 0.5])
        assert anomaly.tolist() == [False, True, False]

    @settings(max_examples=50, deadline=None)
    @given(
        series=st.lists(
            st.tuples(
                st.floats(-1e3, 1e3),
                st.floats(1e-3, 1e3),
                st.floats(0.5, 10.0),
                hnp.arrays(
                    np.float64,
                    st.integers(1, 20),
                    elements=st.floats(-1e4, 1e4),
                ),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def test_scores_many_series_in_one_call_as_each_alone(
        self, series: list[tuple[float, float, float, FloatArray]]
    ) -> None:
        sizes = [values.size for *_, values in series]
        columns = [
            np.repeat(np.array([s[i] for s in series], dtype=np.float64), sizes)
            for i in range(3)
        ]
        values = np.concatenate([v for *_, v in series])
        score, anomaly = score_columns(columns[0], columns[1], columns[2], values)
        start = 0
        for center, scale, threshold, part in series:
            alone_score, alone_anomaly = score_one(
                ModelParams(center, scale, threshold), part
            )
            stop = start + part.size
            np.testing.assert_array_equal(score[start:stop], alone_score)
            np.testing.assert_array_equal(anomaly[start:stop], alone_anomaly)
            start = stop
