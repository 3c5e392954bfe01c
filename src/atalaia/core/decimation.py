"""M4 decimation of a series for a chart (Jugel et al., "M4: A
Visualization-Oriented Time Series Data Aggregation", VLDB 2014).

A chart `buckets` pixels wide draws, in each pixel column, a vertical stroke
from the lowest to the highest reading there, joined to its neighbours by
the column's first and last readings. Keeping those four readings of every
column (in time order) draws the same line as every reading does, whatever
their number: a window of 2,000,000 readings becomes at most 4 × `buckets`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from atalaia.core.series import FloatArray

IntArray = npt.NDArray[np.intp]
PER_BUCKET = 4  # first, lowest, highest, last


def m4_indices(
    timestamps: FloatArray,
    values: FloatArray,
    *,
    start: float,
    end: float,
    buckets: int,
) -> IntArray:
    """Sorted indices of the readings to draw: of each of `buckets` equal spans
    of [start, end), its first, lowest, highest and last reading, each once
    (the first of equal extremes). Every index when there are no more
    readings than M4 could keep (PER_BUCKET × `buckets`).

    `timestamps` ascending, `values` finite; a reading before `start` counts in
    the first span, one at or after `end` in the last.

    >>> ts = np.arange(10.0)
    >>> vs = np.array([0, 5, 1, 9, 2, 3, 4, -1, 6, 7.0])
    >>> m4_indices(ts, vs, start=0.0, end=10.0, buckets=2).tolist()
    [0, 3, 4, 5, 7, 9]
    """
    n = values.size
    if n <= PER_BUCKET * buckets:
        return np.arange(n)
    edges = start + (end - start) * np.arange(buckets + 1) / buckets
    edges[0], edges[-1] = -np.inf, np.inf
    bounds = np.searchsorted(timestamps, edges)
    filled = bounds[1:] > bounds[:-1]
    firsts, stops = bounds[:-1][filled], bounds[1:][filled]
    bucket = np.repeat(np.arange(firsts.size), stops - firsts)
    lowest = _first_where(values == np.minimum.reduceat(values, firsts)[bucket], bucket)
    highest = _first_where(
        values == np.maximum.reduceat(values, firsts)[bucket], bucket
    )
    return np.unique(np.concatenate([firsts, lowest, highest, stops - 1]))


def _first_where(hit: npt.NDArray[np.bool_], bucket: IntArray) -> IntArray:
    """The first index of each bucket where `hit` holds (each has one)."""
    found = np.flatnonzero(hit)
    owner = bucket[found]
    return found[np.concatenate(([True], owner[1:] != owner[:-1]))]
