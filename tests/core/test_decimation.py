"""M4 decimation: each time bucket's first, lowest, highest and last reading,
held equal to a plain per-bucket reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.decimation import PER_BUCKET, m4_indices
from atalaia.core.series import FloatArray


def reference(
    ts: FloatArray, vs: FloatArray, *, start: float, end: float, buckets: int
) -> list[int]:
    """M4 one bucket at a time (edges computed as the core does)."""
    if vs.size <= PER_BUCKET * buckets:
        return list(range(vs.size))
    edges = start + (end - start) * np.arange(buckets + 1) / buckets
    bucket_of = [int(np.sum(edges[1:-1] <= t)) for t in ts.tolist()]
    kept: set[int] = set()
    for b in set(bucket_of):
        members = [i for i, owner in enumerate(bucket_of) if owner == b]
        values = vs[members]
        kept |= {
            members[0],
            members[int(np.argmin(values))],
            members[int(np.argmax(values))],
            members[-1],
        }
    return sorted(kept)


def column_extents(
    ts: FloatArray, vs: FloatArray, edges: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per pixel column [edges[i], edges[i + 1]), the lowest and highest the
    line through the points reaches there (its points, and where it crosses
    the column's sides)."""
    sides = np.interp(edges, ts, vs)
    lows, highs = [], []
    for i in range(edges.size - 1):
        inside = (ts >= edges[i]) & (ts < edges[i + 1])
        ys = np.concatenate([vs[inside], sides[i : i + 2]])
        lows.append(ys.min())
        highs.append(ys.max())
    return np.array(lows), np.array(highs)


@st.composite
def windows(draw: st.DrawFn) -> tuple[FloatArray, FloatArray, float, float, int]:
    """Ascending timestamps (gaps, bursts, a few outside the window) and values
    with ties, over a window [start, end) of `buckets` buckets."""
    n = draw(st.integers(1, 300))
    gaps = draw(
        st.lists(st.sampled_from([0.001, 0.5, 1.0, 7.0, 60.0]), min_size=n, max_size=n)
    )
    ts = 1_733_011_200.0 + np.cumsum(gaps)
    values = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    span = float(ts[-1] - ts[0]) or 1.0
    start = float(ts[0]) + draw(st.sampled_from([-span, 0.0, span / 10]))
    end = float(ts[-1]) + draw(st.sampled_from([1e-3, span / 3, -span / 10]))
    if end <= start:
        end = start + 1.0
    return ts, np.array(values, float), start, end, draw(st.integers(1, 40))


@given(windows())
def test_equals_the_per_bucket_reference(
    window: tuple[FloatArray, FloatArray, float, float, int],
) -> None:
    ts, vs, start, end, buckets = window

    kept = m4_indices(ts, vs, start=start, end=end, buckets=buckets)

    assert kept.tolist() == reference(ts, vs, start=start, end=end, buckets=buckets)


class TestM4:
    def test_keeps_each_buckets_first_extremes_and_last_in_time_order(self) -> None:
        rng = np.random.default_rng(3)
        ts = np.sort(rng.uniform(0, 1_000, 100_000))
        vs = rng.normal(0, 1, ts.size)
        vs[51_234] = 40.0  # a spike amid a bucket

        kept = m4_indices(ts, vs, start=0.0, end=1_000.0, buckets=100)

        assert (np.diff(kept) > 0).all()
        assert kept.size <= 4 * 100
        assert 51_234 in kept
        owner = (ts // 10).astype(int)
        for b in range(100):
            inside = np.flatnonzero(owner == b)
            drawn = kept[owner[kept] == b]
            assert drawn[0] == inside[0]
            assert drawn[-1] == inside[-1]
            assert vs[drawn].min() == vs[inside].min()
            assert vs[drawn].max() == vs[inside].max()

    def test_draws_the_same_line_as_every_reading(self) -> None:
        rng = np.random.default_rng(5)
        ts = np.cumsum(rng.exponential(1.0, 20_000))
        vs = np.sin(ts / 300.0) + rng.normal(0, 0.2, ts.size)
        vs[rng.integers(0, ts.size, 20)] += 3.0  # spikes
        edges = np.linspace(ts[0], ts[-1], 301)

        kept = m4_indices(ts, vs, start=edges[0], end=edges[-1], buckets=300)

        assert kept.size < ts.size
        drawn = column_extents(ts[kept], vs[kept], edges)
        for got, want in zip(drawn, column_extents(ts, vs, edges), strict=True):
            np.testing.assert_array_equal(got, want)

    @pytest.mark.parametrize("n", [0, 1, 400])
    def test_leaves_a_small_window_untouched(self, n: int) -> None:
        ts = np.arange(float(n))
        vs = np.random.default_rng(0).normal(0, 1, n)

        kept = m4_indices(ts, vs, start=0.0, end=float(n) + 1, buckets=100)

        assert kept.tolist() == list(range(n))

    def test_readings_all_in_one_bucket_keep_four(self) -> None:
        ts = 100.0 + np.arange(1_000.0) * 1e-3
        vs = np.cos(np.arange(1_000.0))
        vs[10] = -5.0
        vs[700] = 5.0

        kept = m4_indices(ts, vs, start=0.0, end=1_000.0, buckets=100)

        assert kept.tolist() == [0, 10, 700, 999]

    def test_equal_extremes_keep_the_first(self) -> None:
        vs = np.zeros(1_000)

        kept = m4_indices(np.arange(1_000.0), vs, start=0.0, end=1_000.0, buckets=100)

        assert kept.tolist() == sorted(
            {10 * b for b in range(100)} | {10 * b + 9 for b in range(100)}
        )

    def test_readings_outside_the_window_count_in_its_edge_buckets(self) -> None:
        ts = np.arange(-500.0, 1_500.0)
        vs = np.zeros(ts.size)
        vs[0], vs[-1] = -1.0, 1.0  # far before and far after

        kept = m4_indices(ts, vs, start=0.0, end=1_000.0, buckets=100)

        assert {0, ts.size - 1} <= set(kept.tolist())
        assert kept.size <= 4 * 100
