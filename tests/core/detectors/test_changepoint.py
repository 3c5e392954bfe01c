"""`changepoint`: level shifts, drifts and variance changes by CUSUM."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia import detection
from atalaia.core.detectors import changepoint
from fixtures.streams import (
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
MODEL = detection.fit("changepoint", T, V)
LATER = T[-1] + STEP * np.arange(1, 401)


def later_values(seed: int = 5) -> np.ndarray:
    return continued(LATER, seed)


def test_a_level_shift_is_one_alarm_with_its_start_and_size() -> None:
    values = later_values()
    values[100:200] += 2.5  # 5 sigmas for 100 readings (under a day)

    result = MODEL.score(LATER, values)

    assert result.change_start is not None
    assert result.change_size is not None
    assert onsets(result.anomaly).tolist() == [onsets(result.anomaly)[0]]
    first = int(onsets(result.anomaly)[0])
    assert 100 <= first <= 103
    assert result.anomaly[first:200].all()
    assert not result.anomaly[205:].any()  # back to normal
    assert set(result.reason[first:200]) == {"level_shift"}
    assert set(result.direction[first:200]) == {"above"}
    assert LATER[95] <= result.change_start[150] <= LATER[100]
    assert 2.0 < result.change_size[150] < 3.0
    assert np.isnan(result.change_start[300])
    assert result.change_absorbed is not None
    assert not result.change_absorbed.any()


def test_a_change_that_persists_is_absorbed() -> None:
    model = detection.fit("changepoint", T, V, absorb_after_s=50 * STEP)
    values = later_values()
    values[100:] -= 2.5

    result = model.score(LATER, values)

    assert result.change_absorbed is not None
    absorbed = np.flatnonzero(result.change_absorbed)
    assert absorbed.size == 1
    assert 145 <= absorbed[0] <= 155
    assert result.anomaly[105 : absorbed[0]].all()
    assert not result.anomaly[absorbed[0] :].any()
    assert abs(result.expected[300] - (values[300] + 0.0)) < 2.0  # re-centred


def test_one_noisy_reading_does_not_fire() -> None:
    values = later_values()
    values[50] += 2.0  # 4 sigmas
    values[150] -= 2.0

    assert not MODEL.score(LATER, values).anomaly.any()


def test_a_far_reading_is_an_outlier_not_a_change() -> None:
    values = later_values()
    values[50] += 10.0

    result = MODEL.score(LATER, values)

    assert np.flatnonzero(result.anomaly).tolist() == [50]
    assert result.reason[50] == "outside_seasonal_band"
    assert result.change_start is not None
    assert np.isnan(result.change_start).all()


def test_a_variance_change_is_flagged_until_the_spread_is_back() -> None:
    values = later_values()
    rng = np.random.default_rng(9)
    values[100:200] += rng.normal(0, 2.0, 100)  # the noise ×4

    result = MODEL.score(LATER, values)

    assert result.anomaly[100:200].mean() > 0.5
    assert "variance_change" in set(result.reason[100:200])
    assert not result.anomaly[:100].any()
    assert not result.anomaly[207:].any()  # released a few readings after


def test_the_variance_regime_survives_a_quiet_reading() -> None:
    values = later_values()
    rng = np.random.default_rng(11)
    values[100:200] += rng.normal(0, 2.5, 100)  # the noise ×5
    values[160] = values[159]  # a jump of nothing

    result = MODEL.score(LATER, values)

    first = int(np.flatnonzero(result.reason == "variance_change")[0])
    assert first < 130
    assert result.anomaly[first:200].all()


def test_discrete_readings_are_judged_on_their_own_spread() -> None:
    # A flow meter reading whole units: its MAD collapses to nothing.
    t = 1_700_000_000.0 + np.arange(800.0)
    rng = np.random.default_rng(3)
    v = 32.0 + rng.choice([-1.0, 0.0, 1.0], t.size, p=[0.05, 0.85, 0.1])
    v += rng.normal(0, 0.003, t.size)
    model = detection.fit("changepoint", t[:400], v[:400])
    v[600:] -= 6.0  # the flow drops

    result = model.score(t[400:], v[400:])

    assert not result.anomaly[:200].any()
    assert result.anomaly[205:].all()


@settings(max_examples=40, deadline=None)
@given(departures)
def test_the_vectorized_step_is_the_plain_one_and_the_library(
    table: list[list[float | None]],
) -> None:
    models = fleet("changepoint", [1, 2, 3])
    vectorized, plain = run_fleet(models, table)
    for j, model in enumerate(models):
        np.testing.assert_array_equal(np.array(vectorized[j]), np.array(plain[j]))
        if not plain[j]:
            continue
        answers = np.array(plain[j])
        read = [i for i, row in enumerate(table) if row[j] is not None]
        values = 10.0 + np.array([table[i][j] for i in read])
        result = model.score(LAST + STEP * (1 + np.array(read)), values)
        np.testing.assert_array_equal(result.anomaly_score, answers[:, 0])
        np.testing.assert_array_equal(result.expected, answers[:, 1])
        np.testing.assert_array_equal(result.change_start, answers[:, 5])
        np.testing.assert_array_equal(result.change_size, answers[:, 6])


def test_params_and_state_store_as_arrays() -> None:
    assert isinstance(MODEL, detection.StreamModel)
    params = changepoint.ChangeParams.from_arrays(MODEL.params.to_arrays())
    state = changepoint.ChangeState.from_arrays(MODEL.state.to_arrays())
    again = detection.StreamModel(
        MODEL.algorithm,
        MODEL.hyperparameters,
        MODEL.band,
        params,
        state,
        MODEL.reasons,
    )
    values = later_values()
    values[100:] += 3.0
    assert (
        again.score(LATER, values).anomaly_score.tolist()
        == MODEL.score(LATER, values).anomaly_score.tolist()
    )


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 399), st.integers(0, 99))
def test_appending_readings_never_changes_earlier_answers(cut: int, at: int) -> None:
    values = later_values()
    values[at : at + 50] += 3.0
    whole = MODEL.score(LATER, values)
    head = MODEL.score(LATER[:cut], values[:cut])
    assert head.anomaly_score.tolist() == whole.anomaly_score[:cut].tolist()
    assert head.expected.tolist() == whole.expected[:cut].tolist()
