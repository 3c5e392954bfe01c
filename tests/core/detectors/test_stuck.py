"""The stuck guard's runs: the same however the readings are split into calls."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia.core.detectors.stuck import (
    RunState,
    advance,
    advance_one,
    longest_run,
    stuck_after,
)

# Few series, times and values: repeats, ties and late readings are common.
readings = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 6), st.integers(0, 1)), max_size=40
)


def one_by_one(
    state: RunState, batch: list[tuple[int, int, int]]
) -> list[tuple[int, bool]]:
    """Each reading through `advance_one`, in (series, time) order; answers in
    the batch's order."""
    answers: list[tuple[int, bool]] = [(0, False)] * len(batch)
    for i in sorted(range(len(batch)), key=lambda i: batch[i][:2]):
        series, t, v = batch[i]
        answers[i] = advance_one(state, series, float(t), float(v))
    return answers


def columns(batch: list[tuple[int, int, int]]) -> tuple[np.ndarray, ...]:
    array = np.array(batch, dtype=np.float64).reshape(-1, 3)
    return array[:, 0].astype(np.int64), array[:, 1], array[:, 2]


@settings(max_examples=300, deadline=None)
@given(st.lists(readings, min_size=1, max_size=4))
def test_a_batch_advances_as_its_readings_one_at_a_time(
    batches: list[list[tuple[int, int, int]]],
) -> None:
    vectorized, reference = RunState.empty(4), RunState.empty(4)
    for batch in batches:
        runs = advance(vectorized, *columns(batch))
        expected = one_by_one(reference, batch)
        assert (
            list(zip(runs.run.tolist(), runs.stale.tolist(), strict=True)) == expected
        )
    assert vectorized.run.tolist() == reference.run.tolist()
    assert vectorized.timestamp.tolist() == reference.timestamp.tolist()


def test_runs_carry_over_calls_and_a_retry_answers_as_before() -> None:
    state = RunState.empty(1)
    series = np.zeros(3, np.int64)

    first = advance(state, series, np.array([1.0, 2.0, 3.0]), np.array([5.0, 7.0, 7.0]))
    second = advance_one(state, 0, 4.0, 7.0)
    retried = advance_one(state, 0, 4.0, 7.0)
    late = advance_one(state, 0, 0.5, 9.0)

    assert first.run.tolist() == [1, 1, 2]
    assert not first.stale.any()
    assert second == (3, False)
    assert retried == (3, True)  # the same run, advancing nothing
    assert late == (1, True)
    assert state.run.tolist() == [3]


def test_the_limit_is_twice_the_longest_run_in_training() -> None:
    noisy = np.random.default_rng(0).normal(size=1000)
    quantised = np.round(noisy)

    assert longest_run(noisy) == 1
    assert stuck_after(noisy) == 2
    assert stuck_after(quantised) == 2 * longest_run(quantised) > 2
    assert longest_run(np.array([])) == 0
