"""The detectors as a library (`atalaia.detection`), as a data scientist uses them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia import detection
from atalaia.errors import InvalidHyperparameters, InvalidSeries, UnknownAlgorithm

DAY = 86400.0
RNG = np.random.default_rng(11)
T = 1.7e9 + np.arange(0.0, 10 * DAY, 300.0)
V = 0.3 + 0.1 * np.sin(2 * np.pi * T / DAY) + RNG.normal(0, 0.01, T.size)


@pytest.mark.parametrize("algorithm", detection.ALGORITHMS)
def test_every_family_fits_and_explains(algorithm: str) -> None:
    model = detection.fit(algorithm, T, V)
    probe_t = np.array([T[-1] + 300.0, T[-1] + 600.0])
    result = model.score(probe_t, np.array([50.0, -50.0]))
    assert result.anomaly.tolist() == [True, True]
    assert result.direction.tolist() == ["above", "below"]
    assert (result.reason != "").all()
    assert (result.lower < result.expected).all()
    assert (result.expected < result.upper).all()
    assert (result.anomaly_score > 1).all()


def test_seasonal_sees_the_hour() -> None:
    midnight = T[-1] - T[-1] % DAY + DAY
    times = np.array([midnight, midnight + DAY / 4])
    result = detection.fit("seasonal", T, V).score(times, np.array([0.5, 0.4]))
    flat = detection.fit("robust", T, V).score(times, np.array([0.5, 0.4]))
    assert result.anomaly.tolist() == [True, False]
    assert result.reason.tolist() == ["outside_seasonal_band", ""]
    assert result.expected == pytest.approx([0.3, 0.4], abs=0.01)
    assert not flat.anomaly[0]  # one flat band over the cycle misses it


def test_fits_from_a_few_hundred_readings() -> None:
    model = detection.fit("seasonal", T[:300], V[:300])
    assert model.score(T[:300], V[:300]).anomaly.mean() < 0.01


def test_hyperparameters_are_validated() -> None:
    with pytest.raises(
        InvalidHyperparameters, match="known: period_s, phases, threshold_sigma"
    ):
        detection.fit("seasonal", T, V, window=3)
    with pytest.raises(InvalidHyperparameters, match="> 0"):
        detection.fit("zscore", T, V, threshold_sigma=-1)
    with pytest.raises(UnknownAlgorithm):
        detection.fit("magic", T, V)
    assert detection.fit("seasonal", T, V, threshold_sigma=6).hyperparameters == {
        "threshold_sigma": 6.0
    }


@pytest.mark.parametrize("algorithm", detection.ALGORITHMS)
def test_readings_are_validated(algorithm: str) -> None:
    with pytest.raises(InvalidSeries, match="pair up"):
        detection.fit(algorithm, T, V[:-1])
    with pytest.raises(InvalidSeries, match="strictly increasing"):
        detection.fit(algorithm, T[::-1], V)
    with pytest.raises(InvalidSeries, match="finite"):
        detection.fit(algorithm, T, np.where(T == T[3], np.nan, V))


def test_a_sensor_model_scores_its_axes_together() -> None:
    load = np.sin(2 * np.pi * T / DAY) + RNG.normal(0, 0.1, T.size)
    axes = np.column_stack([load, -2 * load]) + RNG.normal(0, 0.02, (T.size, 2))
    model = detection.fit("multivariate", T, axes)
    later = np.array([T[-1] + 300.0, T[-1] + 600.0])

    result = model.score(later, np.array([[0.5, -1.0], [0.5, 1.0]]))

    assert result.anomaly.tolist() == [False, True]
    assert result.reason.tolist() == ["", "axis_correlation_break"]
    assert result.contributions is not None
    assert result.contributions.shape == result.expected.shape == (2, 2)
    assert model.hyperparameters == {"threshold_sigma": 4.0, "window": 5.0}
    with pytest.raises(InvalidSeries, match="model has 2 axes"):
        model.score(later, np.zeros((2, 3)))


def test_auto_says_what_it_chose_and_why() -> None:
    load = np.sin(2 * np.pi * T / DAY) + RNG.normal(0, 0.1, T.size)
    axes = np.column_stack([load, -2 * load]) + RNG.normal(0, 0.02, (T.size, 2))

    series = detection.fit("auto", T, V)
    sensor = detection.fit("auto", T, axes)

    assert isinstance(series, detection.AutoModel)
    assert isinstance(sensor, detection.AutoModel)
    assert series.choice.algorithm == series.chosen.algorithm == "seasonal"
    assert "injected" in series.choice.reason
    assert set(series.choice.trials) == {"seasonal", "robust", "zscore"}
    assert sensor.chosen.algorithm == "multivariate"
    later = np.array([T[-1] + 300.0])
    assert sensor.score(later, np.array([[0.5, 1.0]])).anomaly.tolist() == [True]
    with pytest.raises(InvalidHyperparameters):
        detection.fit("auto", T, V, threshold_sigma=3.0)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(detection.ALGORITHMS), st.integers(1, 60))
def test_scoring_is_causal(algorithm: str, prefix: int) -> None:
    """A reading's answer depends on the model and the readings up to it: the
    readings after it change nothing."""
    model = detection.fit(algorithm, T, V)
    times = T[-1] + 300.0 * np.arange(1, 61)
    values = 0.3 + np.random.default_rng(prefix).normal(0, 0.05, 60)

    whole = model.score(times, values)
    head = model.score(times[:prefix], values[:prefix])

    assert np.array_equal(head.anomaly_score, whole.anomaly_score[:prefix])
    assert np.array_equal(head.expected, whole.expected[:prefix])


READING_BY_READING = [
    a for a in detection.ALGORITHMS if a not in detection.SENSOR_ALGORITHMS
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(READING_BY_READING), st.data())
def test_series_scoring_is_reading_by_reading(
    algorithm: str, data: st.DataObject
) -> None:
    """A reading's answer depends on the model and that reading alone: scoring
    any subset, in any order, gives each reading the same answer."""
    model = detection.fit(algorithm, T, V)
    size = data.draw(st.integers(1, 40))
    picks = np.array(
        data.draw(st.lists(st.integers(0, T.size - 1), min_size=size, max_size=size))
    )
    values = V[picks] + np.array(
        data.draw(st.lists(st.floats(-1, 1), min_size=size, max_size=size))
    )
    whole = model.score(T[picks], values)
    assert (whole.anomaly_score >= 0).all()
    assert (whole.anomaly == (whole.anomaly_score > 1)).all()
    for i in range(size):
        alone = model.score(T[picks[i] : picks[i] + 1], values[i : i + 1])
        assert alone.anomaly_score[0] == whole.anomaly_score[i]
        assert alone.expected[0] == whole.expected[i]
