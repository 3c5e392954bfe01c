"""The measurements of a data-quality report, each over time-ordered readings
with distinct timestamps and finite values (see `core.quality`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import median_filter

from atalaia.core.series import FloatArray

BoolArray = npt.NDArray[np.bool_]
MAD_TO_SIGMA = 1.4826  # a normal law's σ over its median absolute deviation
MEAN_AD_TO_SIGMA = 1.2533  # … over its mean absolute deviation
P90_AD_TO_SIGMA = 1 / 1.6449  # … over its absolute deviations' 90th percentile
SCALE_FLOOR = 0.01
SCALE_BLOCK = 1_000
SCALE_STRIDE = 4
# The API documents these records' fields from their docstrings (pydantic reads
# this plain dict; the core imports no framework).
DOCUMENTED = {"use_attribute_docstrings": True}


@dataclass(frozen=True, slots=True)
class Sampling:
    """The detected interval (median spacing) and how regular the spacings are."""

    __pydantic_config__ = DOCUMENTED
    interval_s: float | None
    """The median spacing of the readings, seconds (null under 2 readings)."""
    regular_share: float | None
    """Spacings within ±tolerance of the interval."""
    spacing_cv: float | None
    """Standard deviation of the spacings over their mean."""


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time: a gap between two readings, or a stuck run."""

    __pydantic_config__ = DOCUMENTED
    start: float
    """Epoch seconds: the reading before a gap, or a run's first."""
    end: float
    """Epoch seconds: the reading after a gap, or a run's last."""
    length_s: float
    readings: int
    """The readings inside it (0 for a gap)."""


@dataclass(frozen=True, slots=True)
class Spans:
    """Gaps (spacings over `gap_factor` intervals) or stuck runs."""

    __pydantic_config__ = DOCUMENTED
    count: int
    total_s: float
    """Their lengths added up, seconds."""
    share: float
    """Of the readings' time span (gaps) or of the readings (stuck)."""
    listed: list[Span]
    """The first ones in time."""


@dataclass(frozen=True, slots=True)
class Spike:
    """A reading far from the median of its neighbours."""

    __pydantic_config__ = DOCUMENTED
    timestamp: float
    value: float
    deviation: float
    """|value − rolling median| over the robust scale (robust σ)."""


@dataclass(frozen=True, slots=True)
class UnitJump:
    """A level and spread changing together by about ×1000 or ×0.001."""

    __pydantic_config__ = DOCUMENTED
    timestamp: float
    """Where the new level starts (within a block)."""
    factor: float
    """The level after over the level before."""


@dataclass(frozen=True, slots=True)
class ValueRange:
    __pydantic_config__ = DOCUMENTED
    min: float
    max: float
    p1: float
    p99: float


def sampling(ts: FloatArray, tolerance: float) -> Sampling:
    """
    >>> sampling(np.array([0.0, 1.0, 2.0, 3.0, 4.05, 12.0]), 0.1).regular_share
    0.8
    """
    if ts.size < 2:
        return Sampling(None, None, None)
    steps = np.diff(ts)
    interval = float(np.median(steps))
    regular = float(np.mean(np.abs(steps - interval) <= tolerance * interval))
    return Sampling(interval, regular, float(np.std(steps) / np.mean(steps)))


def gaps(ts: FloatArray, longer_than: float, listed: int) -> Spans:
    """The spacings longer than `longer_than` seconds.

    >>> gaps(np.array([0.0, 1.0, 9.0, 10.0]), 5.0, 10).listed
    [Span(start=1.0, end=9.0, length_s=8.0, readings=0)]
    """
    steps = np.diff(ts)
    at = np.flatnonzero(steps > longer_than)
    span = float(ts[-1] - ts[0]) if ts.size else 0.0
    total = float(steps[at].sum())
    shown = [
        Span(float(ts[i]), float(ts[i + 1]), float(steps[i]), 0) for i in at[:listed]
    ]
    return Spans(int(at.size), total, total / span if span > 0 else 0.0, shown)


def missing_rate(ts: FloatArray, interval_s: float | None) -> float:
    """The share of the readings expected at the interval over the span that
    are absent.

    >>> round(missing_rate(np.array([0.0, 1.0, 2.0, 4.0]), 1.0), 9)
    0.2
    """
    if interval_s is None or interval_s <= 0:
        return 0.0
    expected = round(float(ts[-1] - ts[0]) / interval_s) + 1
    return max(0.0, 1.0 - ts.size / expected)


def stuck_runs(
    ts: FloatArray, vs: FloatArray, *, min_readings: int, min_seconds: float,
    listed: int,
) -> Spans:  # fmt: skip
    """Runs of one exact value holding at least `min_readings` readings over at
    least `min_seconds`.

    >>> stuck_runs(np.arange(6.0), np.array([1.0, 2, 2, 2, 2, 3]),
    ...            min_readings=3, min_seconds=2.0, listed=5).listed
    [Span(start=1.0, end=4.0, length_s=3.0, readings=4)]
    """
    if vs.size == 0:
        return Spans(0, 0.0, 0.0, [])
    starts = np.concatenate([[0], np.flatnonzero(vs[1:] != vs[:-1]) + 1])
    ends = np.append(starts[1:], vs.size) - 1  # each run's last reading
    sizes, lengths = ends - starts + 1, ts[ends] - ts[starts]
    stuck = np.flatnonzero((sizes >= min_readings) & (lengths >= min_seconds))
    shown = [
        Span(float(ts[starts[i]]), float(ts[ends[i]]), float(lengths[i]), int(sizes[i]))
        for i in stuck[:listed]
    ]
    held = int(sizes[stuck].sum())
    return Spans(int(stuck.size), float(lengths[stuck].sum()), held / vs.size, shown)


def spikes(
    ts: FloatArray, vs: FloatArray, *, window: int, k: float, listed: int
) -> tuple[int, list[Spike]]:
    """Readings farther than `k` robust σ from the median of the `window`
    readings around them. σ is the residuals' per SCALE_BLOCK readings (noise
    follows the level), and at least SCALE_FLOOR of the values' own there: a
    smooth signal's residuals are near 0, its curvature no spike.

    >>> vs = np.sin(np.arange(200.0) / 10); vs[50] = 9.0
    >>> spikes(np.arange(200.0), vs, window=11, k=8.0, listed=3)[0]
    1
    """
    if vs.size < window:
        return 0, []
    residual = vs - median_filter(vs, size=window, mode="nearest")
    deviation = np.abs(residual - np.median(residual))
    scale = np.maximum(_blockwise_sigma(residual), SCALE_FLOOR * _blockwise_sigma(vs))
    with np.errstate(divide="ignore", invalid="ignore"):
        sigmas = np.where(scale > 0, deviation / scale, 0.0)  # 0: constant values
    at = np.flatnonzero(sigmas > k)
    shown = [Spike(float(ts[i]), float(vs[i]), float(sigmas[i])) for i in at[:listed]]
    return int(at.size), shown


def _blockwise_sigma(xs: FloatArray) -> FloatArray:
    """Each reading's block's robust σ (blocks of SCALE_BLOCK; the readings
    after the last whole block take its figure), from every SCALE_STRIDE-th
    reading of it (within about 8 %, at a quarter of the cost). The larger of
    the σ its median absolute deviation and its 90th percentile give (equal on
    Gaussian noise): values on a few levels (quantised, a flow meter's steps)
    have a MAD near 0 however often they step. Where both are 0, from the mean
    absolute deviation.

    >>> sigma = _blockwise_sigma(np.r_[np.arange(1_000.0), np.repeat([0.0, 1], 750)])
    >>> sigma[[0, -1]].round(1).tolist()
    [370.6, 0.6]
    """
    n = xs.size // SCALE_BLOCK
    size = SCALE_BLOCK if n else xs.size  # fewer readings: one block of them
    n = max(n, 1)
    blocks = xs[: n * size].reshape(n, size)[:, ::SCALE_STRIDE]
    deviations = np.abs(blocks - np.median(blocks, axis=1, keepdims=True))
    mads, p90s = np.quantile(deviations, [0.5, 0.9], axis=1)
    sigmas = np.maximum(MAD_TO_SIGMA * mads, P90_AD_TO_SIGMA * p90s)
    means = MEAN_AD_TO_SIGMA * np.mean(deviations, axis=1)
    sigmas = np.where(sigmas > 0, sigmas, means)
    tail = np.full(xs.size - n * size, sigmas[-1])
    return np.concatenate([np.repeat(sigmas, size), tail])


def unit_jumps(
    ts: FloatArray, vs: FloatArray, *, block: int, factor: float, tolerance: float
) -> list[UnitJump]:
    """Where the level and the spread of the values change together by about
    `factor` or 1/`factor` (within ×`tolerance`) from one block of readings to
    the next or the one after (a switch inside a block): a unit switch (V to
    mV, kPa to Pa). A sensor starting from an idle near-zero level changes its
    level, not its spread in step, and is not one.

    >>> vs = np.r_[np.sin(np.arange(300.0)) + 2, 1000 * (np.sin(np.arange(300.0)) + 2)]
    >>> [jump] = unit_jumps(np.arange(600.0), vs, block=70, factor=1e3, tolerance=3.0)
    >>> jump.timestamp, round(jump.factor, -2)
    (300.0, 1000.0)
    """
    n = vs.size // block
    if n < 2:
        return []
    blocks = vs[: n * block].reshape(n, block)
    centre = np.median(blocks, axis=1)
    level = np.median(np.abs(blocks), axis=1)
    spread = np.median(np.abs(blocks - centre[:, None]), axis=1)
    flagged = np.zeros(n, dtype=np.bool_)  # by the block where the new level starts
    flagged[1:] = _switches(level, spread, 1, factor, tolerance)
    # A switch inside block j + 1 only: its neighbours differ by the factor.
    inside = _switches(level, spread, 2, factor, tolerance)
    flagged[1:-1] |= inside & ~flagged[1:-1] & ~flagged[2:]
    at = np.flatnonzero(flagged)
    at = at[np.diff(at, prepend=-3) > 2]  # a slow switch flags adjacent blocks
    return [_located(ts, vs, level, int(b), block) for b in at]


def _located(
    ts: FloatArray, vs: FloatArray, level: FloatArray, at: int, block: int
) -> UnitJump:
    """The switch flagged at block `at`, at its first reading from the block
    before on whose size is nearer the new level than the old one (their
    geometric mean between), and the factor of the levels two blocks away."""
    before, after = level[max(at - 2, 0)], level[min(at + 2, level.size - 1)]
    start = max(at - 1, 0) * block
    sizes = np.abs(vs[start : (at + 2) * block])
    middle = np.sqrt(before * after)
    moved = sizes > middle if after > before else sizes < middle
    first = start + int(np.argmax(moved)) if moved.any() else at * block
    return UnitJump(float(ts[first]), float(after / before))


def _switches(
    level: FloatArray, spread: FloatArray, lag: int, factor: float, tolerance: float
) -> BoolArray:
    """Whether block j + lag's level is block j's times about the factor, with
    the spread in step."""
    ratio = _ratio(level[lag:], level[:-lag])
    after, before = spread[lag:], spread[:-lag]
    flat = (after == 0) & (before == 0)  # a quantised or constant value
    in_step = _ratio(after, before) / ratio
    spread_follows = flat | ((in_step >= 1 / 3) & (in_step <= 3) & (after > 0))
    switched: BoolArray = _near(ratio, factor, tolerance) & spread_follows
    return switched


def _ratio(after: FloatArray, before: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((after > 0) & (before > 0), after / before, 1.0)


def _near(ratio: FloatArray, factor: float, tolerance: float) -> BoolArray:
    up = (ratio >= factor / tolerance) & (ratio <= factor * tolerance)
    down = (ratio <= tolerance / factor) & (ratio >= 1 / (factor * tolerance))
    return up | down


def value_range(vs: FloatArray) -> ValueRange | None:
    """
    >>> value_range(np.arange(101.0))
    ValueRange(min=0.0, max=100.0, p1=1.0, p99=99.0)
    """
    if vs.size == 0:
        return None
    p1, p99 = np.quantile(vs, [0.01, 0.99])
    return ValueRange(float(vs.min()), float(vs.max()), float(p1), float(p99))
