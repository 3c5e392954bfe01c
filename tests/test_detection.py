"""The detectors as a library (`atalaia.detection`), as a data scientist uses them."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia import detection
from atalaia.core.detectors.bands import BAND_ALGORITHMS
from atalaia.errors import InvalidHyperparameters, InvalidSeries, UnknownAlgorithm

DAY = 86400.0
RNG = np.random.default_rng(11)
T = 1.7e9 + np.arange(0.0, 10 * DAY, 300.0)
V = 0.3 + 0.1 * np.sin(2 * np.pi * T / DAY) + RNG.normal(0, 0.01, T.size)


@cache
def fitted(algorithm: str) -> detection.Model:
    """The model of T, V (fitted once per algorithm)."""
    return detection.fit(algorithm, T, V)


@pytest.mark.parametrize("algorithm", detection.ALGORITHMS)
def test_every_family_fits_and_explains(algorithm: str) -> None:
    model = detection.fit(algorithm, T, V)
    # The last training readings lead the probes in: a windowed family judges
    # a reading with its recent past.
    times = np.concatenate([T[-12:], [T[-1] + 300.0, T[-1] + 600.0]])
    result = model.score(times, np.concatenate([V[-12:], [50.0, -50.0]]))
    assert not result.anomaly[:-2].any()
    probes = slice(-2, None)
    assert result.anomaly[probes].tolist() == [True, True]
    assert result.direction[probes].tolist() == ["above", "below"]
    assert (result.reason[probes] != "").all()
    assert (result.lower < result.expected).all()
    assert (result.expected < result.upper).all()
    assert (result.anomaly_score[probes] > 1).all()


def test_seasonal_sees_the_hour() -> None:
    midnight = T[-1] - T[-1] % DAY + DAY
    times = np.array([midnight, midnight + DAY / 4])
    result = detection.fit("seasonal", T, V).score(times, np.array([0.5, 0.4]))
    flat = detection.fit("robust", T, V).score(times, np.array([0.5, 0.4]))
    assert result.anomaly.tolist() == [True, False]
    assert result.reason.tolist() == ["outside_seasonal_band", ""]
    assert result.expected == pytest.approx([0.3, 0.4], abs=0.01)
    assert not flat.anomaly[0]  # one flat band over the cycle misses it


@pytest.mark.parametrize("algorithm", ["seasonal", "isolation_forest"])
def test_fits_from_a_few_hundred_readings(algorithm: str) -> None:
    model = detection.fit(algorithm, T[:300], V[:300])
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


def test_auto_guards_against_a_stuck_sensor() -> None:
    """A value repeated beyond twice the longest run in training is `stuck`,
    inside the band or not; a noisy series and a quantised one each by its own
    limit."""
    later = T[-1] + 300.0 * np.arange(1, 13)
    noisy = fitted("auto")
    quantised = detection.fit("auto", T, np.round(V, 2))
    assert isinstance(noisy, detection.AutoModel)
    assert isinstance(quantised, detection.AutoModel)
    assert noisy.stuck_after == 2 < quantised.stuck_after

    flat = noisy.score(later, np.full(later.size, V[-1]))
    held = quantised.score(later, np.full(later.size, np.round(V[-1], 2)))

    assert flat.anomaly.tolist() == [False] * 2 + [True] * 10
    assert set(flat.reason[2:]) == {"stuck"}
    assert (flat.lower[2:] < V[-1]).all()
    assert (flat.upper[2:] > V[-1]).all()
    assert flat.anomaly_score[-1] == 12 / 2  # the run over its limit
    assert held.anomaly.tolist() == [i >= quantised.stuck_after for i in range(12)]
    # Scored in any order, runs count in time order.
    assert noisy.score(later[::-1], flat.expected * 0 + V[-1]).anomaly.sum() == 10


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(BAND_ALGORITHMS), st.data())
def test_band_scoring_is_reading_by_reading(
    algorithm: str, data: st.DataObject
) -> None:
    """A band's answer to a reading depends on the model and that reading
    alone: scoring any subset, in any order, gives each reading the same answer."""
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


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(detection.ALGORITHMS), st.data())
def test_scoring_is_causal(algorithm: str, data: st.DataObject) -> None:
    """Appending readings never changes the answers to the earlier ones."""
    model = fitted(algorithm)
    start = data.draw(st.integers(0, T.size - 60))
    size, cut = data.draw(st.integers(2, 60)), data.draw(st.integers(1, 59))
    times = T[start : start + size]
    values = V[start : start + size] + np.array(
        data.draw(st.lists(st.floats(-1, 1), min_size=times.size, max_size=times.size))
    )
    whole, head = model.score(times, values), model.score(times[:cut], values[:cut])
    assert (whole.anomaly_score >= 0).all()
    assert (whole.anomaly == (whole.anomaly_score > 1)).all()
    assert head.anomaly_score.tolist() == whole.anomaly_score[:cut].tolist()
    assert head.upper.tolist() == whole.upper[:cut].tolist()


def test_forest_models_store_without_pickle() -> None:
    model = fitted("isolation_forest")
    assert isinstance(model, detection.ForestModel)
    loaded = detection.ForestModel.from_bytes(model.to_bytes())
    assert loaded.nbytes == model.nbytes > 0
    assert loaded.hyperparameters == model.hyperparameters
    times, values = T[-50:], V[-50:] + 0.05
    again, first = loaded.score(times, values), model.score(times, values)
    assert again.anomaly_score.tolist() == first.anomaly_score.tolist()
    assert again.lower.tolist() == first.lower.tolist()


def test_forest_scoring_refuses_readings_out_of_order() -> None:
    with pytest.raises(InvalidSeries, match="strictly increasing"):
        fitted("isolation_forest").score(T[3::-1], V[:4])
