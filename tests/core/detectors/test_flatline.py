"""`stuck`: a flatlined sensor and a dropout are one event each."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from atalaia import detection
from fixtures.streams import LAST, STEP, departures, fleet, history, run_fleet

T, V = history(3, days=4.0)
MODEL = detection.fit("stuck", T, V)
LATER = T[-1] + STEP * np.arange(1, 301)


def later_values() -> np.ndarray:
    noise: np.ndarray = np.random.default_rng(5).normal(0, 0.5, LATER.size)
    return 10.0 + noise


def test_a_flatlined_sensor_is_one_alarm_when_its_run_passes_the_limit() -> None:
    values = later_values()
    values[100:200] = 10.25  # stuck for 100 readings

    result = MODEL.score(LATER, values)

    assert isinstance(MODEL, detection.StreamModel)
    limit = int(MODEL.params.stuck_after[0])  # type: ignore[union-attr]
    assert np.flatnonzero(result.anomaly).tolist() == [100 + limit]
    assert result.reason[100 + limit] == "stuck"
    assert result.anomaly_score[100 + limit + 1 : 200].max() <= 1.0  # held


def test_a_dropout_is_one_alarm_when_the_series_comes_back() -> None:
    times = LATER.copy()
    times[150:] += 20 * STEP  # 20 intervals without a reading

    result = MODEL.score(times, later_values())

    assert np.flatnonzero(result.anomaly).tolist() == [150]
    assert result.reason[150] == "dropout"
    assert result.anomaly_score[150] == (21 * STEP) / (10 * STEP)


def test_normal_readings_and_a_far_one() -> None:
    values = later_values()
    values[50] += 40.0

    result = MODEL.score(LATER, values)

    assert np.flatnonzero(result.anomaly).tolist() == [50]
    assert result.reason[50] == "outside_band"


@settings(max_examples=40, deadline=None)
@given(departures)
def test_the_vectorized_step_is_the_plain_one_and_the_library(
    table: list[list[float | None]],
) -> None:
    models = fleet("stuck", [1, 2, 3])
    vectorized, plain = run_fleet(models, table)
    for j, model in enumerate(models):
        np.testing.assert_array_equal(np.array(vectorized[j]), np.array(plain[j]))
        if not plain[j]:
            continue
        read = [i for i, row in enumerate(table) if row[j] is not None]
        values = 10.0 + np.array([table[i][j] for i in read])
        result = model.score(LAST + STEP * (1 + np.array(read)), values)
        np.testing.assert_array_equal(result.anomaly_score, np.array(plain[j])[:, 0])
