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


def test_readings_are_validated() -> None:
    with pytest.raises(InvalidSeries, match="pair up"):
        detection.fit("zscore", T, V[:-1])
    with pytest.raises(InvalidSeries, match="strictly increasing"):
        detection.fit("zscore", T[::-1], V)
    with pytest.raises(InvalidSeries, match="finite"):
        detection.fit("zscore", T, np.where(T == T[3], np.nan, V))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(detection.ALGORITHMS), st.data())
def test_scoring_is_causal_and_reading_by_reading(
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
