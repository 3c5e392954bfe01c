"""The stuck guard: readings that repeat one value for longer than the series'
training ever did (a flatlined sensor, a frozen transmitter, a gateway holding
the last value).

A band cannot see it: the stuck value usually lies inside the band. The guard
counts, for each reading, how many readings in a row up to it have exactly its
value (its `run`), and flags the runs longer than `stuck_after`: twice the
longest run in the training readings, and at least MIN_STUCK_AFTER. A noisy
float series never repeats (a run of 1), so three equal readings flag it; a
quantised one repeats by chance, and its limit grows with what it did. Twice
the longest: a run that long by chance is about as rare per reading as the
longest run was per training window squared.

Runs are counted per series in time order over its fresh readings: a reading
whose timestamp is not after the newest one seen (a retry, a late reading) is
`stale`; it advances nothing, and its run is the current one when it repeats
the current value (a retried reading answers as it did), 1 otherwise. The
state a series carries from one call to the next is its newest timestamp, its
value and its run (`RunState`), so readings scored one at a time, in batches or
all at once get the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.base import FloatArray

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MIN_STUCK_AFTER = 2  # readings of one value in a row always allowed


def longest_run(values: FloatArray) -> int:
    """The most readings in a row with one value (0 for no readings).

    >>> longest_run(np.array([1.0, 2.0, 2.0, 2.0, 3.0, 3.0]))
    3
    """
    if values.size == 0:
        return 0
    breaks = np.flatnonzero(values[1:] != values[:-1]) + 1
    edges = np.concatenate([[0], breaks, [values.size]])
    return int(np.diff(edges).max())


def stuck_after(values: FloatArray) -> int:
    """The longest run of one value a series fitted on `values` (in time order)
    is allowed.

    >>> stuck_after(np.array([0.1, 0.2, 0.3])), stuck_after(np.array([1.0, 1.0, 2.0]))
    (2, 4)
    """
    return max(MIN_STUCK_AFTER, 2 * longest_run(values))


def stuck_score(run: npt.ArrayLike, limit: int) -> FloatArray:
    """A run's anomaly score: its length over the limit (above 1: stuck).

    >>> stuck_score(np.array([1, 2, 3]), 2).tolist()
    [0.5, 1.0, 1.5]
    """
    return np.asarray(run, np.float64) / limit


def guard(
    timestamps: FloatArray, values: FloatArray, scores: FloatArray, limit: int
) -> tuple[FloatArray, BoolArray]:
    """A series' readings (any order; runs count in time order among them)
    scored with the guard of `limit` over their band's `scores`: the scores,
    and where the guard gave them (stuck)."""
    runs = advance(
        RunState.empty(1), np.zeros(values.size, np.int64), timestamps, values
    )
    stuck = runs.run > limit
    guarded = np.where(stuck, np.maximum(scores, stuck_score(runs.run, limit)), scores)
    return guarded, stuck


@dataclass(slots=True)
class RunState:
    """Per series (an index into each column): its newest timestamp seen, that
    reading's value and its run. A series never seen has -inf, NaN and 0."""

    timestamp: FloatArray
    value: FloatArray
    run: IntArray

    @classmethod
    def empty(cls, size: int) -> RunState:
        return cls(
            np.full(size, -np.inf), np.full(size, np.nan), np.zeros(size, np.int64)
        )


@dataclass(frozen=True, slots=True)
class Runs:
    """Per reading, aligned with the readings given: its run and whether it was
    stale."""

    run: IntArray
    stale: BoolArray


def advance(
    state: RunState,
    series: IntArray,
    timestamps: FloatArray,
    values: FloatArray,
) -> Runs:
    """The runs of readings of several series (`series`: each one's index into
    `state`, readings in any order), advancing `state` in place by the fresh
    ones, each series' in time order."""
    n = series.size
    if _distinct(series, state.run.size):
        return _advance_distinct(state, series, timestamps, values)
    order = np.lexsort((timestamps, series))  # by series, then time; stable
    g, t, v = series[order], timestamps[order], values[order]
    index = np.arange(n)
    first = _firsts(g)
    start = np.maximum.accumulate(np.where(first, index, 0))  # its series' first
    before = np.where(first, -np.inf, np.roll(t, 1))
    fresh = (t > state.timestamp[g]) & (t > before)
    # The runs of the fresh readings, carried on from the state's.
    f = np.flatnonzero(fresh)
    fg, fv = g[f], v[f]
    ffirst = _firsts(fg)
    same = fv == np.where(ffirst, state.value[fg], np.roll(fv, 1))
    fi = np.arange(f.size)
    begins = np.maximum.accumulate(np.where(ffirst | ~same, fi, 0))
    carried = np.where(ffirst[begins] & same[begins], state.run[fg[begins]], 0)
    fresh_run = np.append(fi - begins + 1 + carried, 0)  # [-1]: none yet
    # Each reading's current one: the newest fresh reading of its series at or
    # before it, else the state's.
    latest = np.maximum.accumulate(np.where(fresh, index, -1))
    own = latest >= start
    current_value = np.where(own, v[latest], state.value[g])
    current_run = np.where(own, fresh_run[np.cumsum(fresh) - 1], state.run[g])
    run = np.where(fresh | (v == current_value), current_run, 1)
    # Each series' last fresh reading is its state now.
    last = np.append(ffirst[1:], True)[: f.size]
    state.timestamp[fg[last]] = t[f[last]]
    state.value[fg[last]] = fv[last]
    state.run[fg[last]] = fresh_run[:-1][last]
    back = np.empty(n, np.int64)
    back[order] = index
    return Runs(run[back], ~fresh[back])


def _distinct(series: IntArray, size: int) -> bool:
    """Is each of `series` (indexes below `size`) given once?"""
    index = np.arange(series.size)
    seen = np.empty(size, np.int64)
    seen[series] = index
    return bool((seen[series] == index).all())


def _advance_distinct(
    state: RunState, series: IntArray, timestamps: FloatArray, values: FloatArray
) -> Runs:
    """`advance` for one reading per series (the usual batch): no sort."""
    run = state.run[series]
    fresh = timestamps > state.timestamp[series]
    same = values == state.value[series]
    run = np.where(same, run + fresh, 1)
    f = series[fresh]
    state.timestamp[f], state.value[f], state.run[f] = (
        timestamps[fresh], values[fresh], run[fresh]
    )  # fmt: skip
    return Runs(run, ~fresh)


def _firsts(group: IntArray) -> BoolArray:
    """Where each group of a sorted array begins."""
    first = np.ones(group.size, bool)
    first[1:] = group[1:] != group[:-1]
    return first


def advance_one(
    state: RunState, at: int, timestamp: float, value: float
) -> tuple[int, bool]:
    """`advance` for one reading of the series `at`, in plain floats: its run
    and whether it was stale."""
    last_value, run = state.value.item(at), state.run.item(at)
    if timestamp > state.timestamp.item(at):
        run = run + 1 if value == last_value else 1
        state.timestamp[at], state.value[at], state.run[at] = timestamp, value, run
        return run, False
    return (run if value == last_value else 1), True
