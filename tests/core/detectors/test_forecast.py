"""`forecast`: the anomaly likelihood of its one-step residuals."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia import detection
from atalaia.core.detectors import forecast
from fixtures.streams import (
    DAY,
    LAST,
    STEP,
    continued,
    departures,
    fleet,
    history,
    onsets,
    run_fleet,
)

T, V = history(3, days=4.0)
MODEL = detection.fit("forecast", T, V)
LATER = T[-1] + STEP * np.arange(1, 301)


def later_values(seed: int = 5) -> np.ndarray:
    return continued(LATER, seed)


def test_a_level_shift_fires_once_and_is_absorbed() -> None:
    values = later_values()
    values[100:] += 2.5  # 5 sigmas, to the end

    result = MODEL.score(LATER, values)

    assert onsets(result.anomaly).tolist() == [onsets(result.anomaly)[0]]
    assert 100 <= onsets(result.anomaly)[0] <= 105
    assert not result.anomaly[200:].any()  # the level follows it
    assert set(result.reason[result.anomaly]) == {"forecast_deviation"}
    assert set(result.direction[result.anomaly]) == {"above"}


def test_one_noisy_reading_does_not_fire() -> None:
    values = later_values()
    values[50] += 2.0  # 4 sigmas
    values[150] -= 2.0

    assert not MODEL.score(LATER, values).anomaly.any()


def test_a_far_reading_fires_alone() -> None:
    values = later_values()
    values[50] += 10.0  # 20 sigmas

    result = MODEL.score(LATER, values)

    assert np.flatnonzero(result.anomaly).tolist() == [50]
    assert (
        result.lower[50] < result.expected[50] < values[50] - 5 < result.upper[50] + 5
    )


def test_the_forecast_follows_the_cycle() -> None:
    result = MODEL.score(LATER, later_values())
    cycle = 10.0 + 2.0 * np.sin(2 * np.pi * LATER / DAY)
    assert np.abs(result.expected - cycle).max() < 0.5


@settings(max_examples=40, deadline=None)
@given(departures)
def test_the_vectorized_step_is_the_plain_one_and_the_library(
    table: list[list[float | None]],
) -> None:
    models = fleet("forecast", [1, 2, 3])
    vectorized, plain = run_fleet(models, table)
    for j, model in enumerate(models):
        np.testing.assert_array_equal(np.array(vectorized[j]), np.array(plain[j]))
        if not plain[j]:
            continue
        answers = np.array(plain[j])
        times = LAST + STEP * (1 + np.array(
            [i for i, row in enumerate(table) if row[j] is not None]
        ))  # fmt: skip
        values = 10.0 + np.array([row[j] for row in table if row[j] is not None])
        result = model.score(times, values)
        np.testing.assert_array_equal(result.anomaly_score, answers[:, 0])
        np.testing.assert_array_equal(result.expected, answers[:, 1])


def test_params_and_state_store_as_arrays() -> None:
    assert isinstance(MODEL, detection.StreamModel)
    params = forecast.ForecastParams.from_arrays(MODEL.params.to_arrays())
    state = forecast.ForecastState.from_arrays(MODEL.state.to_arrays())
    again = detection.StreamModel(
        MODEL.algorithm,
        MODEL.hyperparameters,
        MODEL.band,
        params,
        state,
        MODEL.reasons,
    )
    values = later_values()
    assert (
        again.score(LATER, values).anomaly_score.tolist()
        == MODEL.score(LATER, values).anomaly_score.tolist()
    )
    assert all(v.dtype != object for v in MODEL.state.to_arrays().values())


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 299), st.integers(0, 99))
def test_appending_readings_never_changes_earlier_answers(cut: int, at: int) -> None:
    values = later_values()
    values[at : at + 50] += 3.0
    whole = MODEL.score(LATER, values)
    head = MODEL.score(LATER[:cut], values[:cut])
    assert head.anomaly_score.tolist() == whole.anomaly_score[:cut].tolist()
    assert head.expected.tolist() == whole.expected[:cut].tolist()
