"""`changepoint`: level shifts, drifts and variance changes, by CUSUM on the
residuals of the seasonal baseline (Page 1954; Montgomery, "Introduction to
Statistical Quality Control", ch. 9).

A reading's residual is d = (x − e(t)) / (s(t) σ) − μ: from the seasonal
baseline (`streaming.fit_baseline`: the value expected at its phase and the
robust scale there), the residuals' own sigma σ in that scale (1, or more
when the readings are discrete: a MAD that collapses on a few repeated
values leaves the baseline far too narrow, `_unit`) and the series' current
level μ (0 after training). Residuals that follow one another are rarely
independent: the sums below are divided by f = √((1 + ρ) / (1 − ρ)), ρ the
training residuals' lag-1 autocorrelation (within [0, 0.99]), so that a sum
of n of them keeps the spread of n independent ones.

Two one-sided CUSUMs look for a shift of at least `shift_sigma` residual
sigmas: S⁺ ← max(0, S⁺ + u − k), S⁻ ← max(0, S⁻ − u − k), with u = d / f
clipped to ±(k + h/2), k = `shift_sigma` / 2 and h = `threshold`: one reading,
however far, moves a sum by at most half the threshold. Gaussian white noise
crosses h = 6 once in ~400,000 readings (Siegmund's approximation, both
sides). When a sum crosses h, a change is detected: it began where the sum
last left 0, its size is the mean residual since then, and the level μ
re-centres by that size (the sums restart from 0). While μ stands more than
2 k f away from the series' normal level, each reading is an anomaly
(`level_shift`, score |μ − normal| / (2 k f)): a shift is one alarm from its
detection to its end, a drift a few re-centrings in a row. A change that
persists `absorb_after_s` seconds is absorbed: its level becomes the normal
one, and the result says so (`change_absorbed`).

A variance change is a third CUSUM, on the jumps j between successive
residuals (in their training scale, clipped at the cap): V ← max(0, V + j −
1.2), the mean j of Gaussian noise being 0.8, 1.6 when its sigma doubles. When
V crosses its threshold a variance regime begins, its mean jump w the mean j
since V left 0; it flags (`variance_change`, score w / 1.2) until a release
CUSUM, R ← max(0, R + max((0.8 + w) / 2, 1.2) − j), crosses h / 2: the
spread is back, judged against the regime's own rather than by V drifting
down from its threshold, so the regime ends a few readings after the noise
calms down and does not flicker while it lasts (V then starts again from 0).
A reading more than
`outlier_sigma` from its expected value e(t) + s(t) σ μ is an anomaly by
itself (score |d| / `outlier_sigma`, the baseline's reason); `expected` is
that value, lower/upper ± `outlier_sigma` s(t) σ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.phases import BandPools, PhaseBand
from atalaia.core.detectors.robust import median_and_sigma
from atalaia.core.detectors.streaming import (
    MIN_SPREAD,
    Baseline,
    Baselines,
    Column,
    Columns,
    IntArray,
    Step,
    baselines,
    fit_baseline,
)
from atalaia.core.series import Readings

NAME = "changepoint"
DEFAULTS = {
    "threshold": 6.0,
    "shift_sigma": 2.0,
    "outlier_sigma": 6.0,
    "absorb_after_s": 86_400.0,
}
SETTLE = 20  # readings after a change whose mean is its new level
GAUSSIAN_MEAN_ABS = float(np.sqrt(2 / np.pi))  # E|z| of a standard normal
OUTLIER_JUMPS = 6.0
VARIANCE_REFERENCE = 1.2  # mean |d| between sigma ×1 (0.8) and ×2 (1.6)
# The variance CUSUM's threshold, in h: successive differences share a reading,
# which doubles the variance of their sums.
VARIANCE_H = 2.0
MARGIN = 1.25  # over the highest CUSUM of training
MAX_RAISE = 4.0  # the most training raises a threshold by
RELEASE = 0.5  # the release CUSUM's threshold, in h
MAX_RHO = 0.99
OUTLIER, LEVEL, VARIANCE = 0, 1, 2  # a score's cause
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ChangeParams(Columns):
    """Fitted models of series, a column entry each (see the module); their
    baseline bands are apart."""

    unit: FloatArray  # the residuals' sigma, in baseline scales (`_unit`)
    inflation: FloatArray  # f
    threshold: FloatArray  # h
    allowance: FloatArray  # k
    outlier: FloatArray
    absorb_after: FloatArray  # seconds
    jitter: FloatArray  # the scale of successive z's differences (`_jitter`)
    variance_threshold: FloatArray


@dataclass(frozen=True, slots=True)
class ChangeState(Columns):
    """Each series' state: its level and normal level (in baseline sigmas), the
    two CUSUMs with the sum, count and start of the residuals since each left
    0, the variance CUSUM with the sum and count of its jumps since it left 0,
    the variance regime's mean jump (0 outside one) and release CUSUM, and
    when its level left the normal one (NaN at it)."""

    level: FloatArray
    normal: FloatArray
    up: FloatArray
    up_sum: FloatArray
    up_count: FloatArray
    up_start: FloatArray
    down: FloatArray
    down_sum: FloatArray
    down_count: FloatArray
    down_start: FloatArray
    spread: FloatArray
    start: FloatArray
    settle_sum: FloatArray
    settle_count: FloatArray
    previous: FloatArray  # the last reading's z
    spread_sum: FloatArray
    spread_count: FloatArray
    widened: FloatArray
    release: FloatArray

    @classmethod
    def empty(cls, size: int) -> ChangeState:
        """The state of series never seen: at their normal level, settled."""
        columns: dict[str, Column] = {f.name: np.zeros(size) for f in fields(cls)}
        columns["start"] = np.full(size, np.nan)
        columns["settle_count"] = np.full(size, float(SETTLE))
        return cls.from_arrays(columns)


@dataclass(frozen=True, slots=True)
class Change:
    """Per reading, the departure from the normal level it belongs to: its
    start (epoch seconds) and size (the series' units), NaN at the normal
    level; and whether it was absorbed at that reading."""

    start: FloatArray
    size: FloatArray
    absorbed: BoolArray


def fit_changepoint(
    readings: Readings, hyperparameters: Mapping[str, float]
) -> tuple[PhaseBand, ChangeParams, ChangeState]:
    """The baseline band and params of one series fitted on `readings` (time
    order) with validated `hyperparameters`, and its state after them."""
    outlier = hyperparameters["outlier_sigma"]
    band = fit_baseline(readings, outlier)
    rows = np.zeros(len(readings), np.int64)
    _, _, z = baselines(
        BandPools.of([band]), np.array([outlier]), rows, readings.timestamps,
        readings.values,
    )  # fmt: skip
    unit = _unit(z)
    z = z / unit
    f, k = _inflation(z, outlier), hyperparameters["shift_sigma"] / 2
    jitter = _jitter(z)
    h, hv = _thresholds(z, f, k, jitter, hyperparameters["threshold"])
    params = ChangeParams(
        np.array([unit]),
        np.array([f]),
        np.array([h]),
        np.array([k]),
        np.array([hyperparameters["outlier_sigma"]]),
        np.array([hyperparameters["absorb_after_s"]]),
        np.array([jitter]),
        np.array([hv]),
    )
    state = ChangeState.empty(1)
    state.previous[0] = z[-1]
    return band, params, state


def _thresholds(
    z: FloatArray, f: float, k: float, jitter: float, h: float
) -> tuple[float, float]:
    """The level and variance CUSUMs' thresholds: `h` and VARIANCE_H h, or
    MARGIN times the highest each reached over the training residuals `z`
    (from 0, never re-centred) when that is more, up to MAX_RAISE times as
    much: a series whose normal readings wander or flicker beyond a
    Gaussian's is judged against its own."""
    cap = k + h / 2
    up = down = spread = top = top_spread = 0.0
    values = z.tolist()
    for before, x in zip(values[:-1], values[1:], strict=True):
        u = min(max(x / f, -cap), cap)
        up, down = max(up + u - k, 0.0), max(down - u - k, 0.0)
        jump = min(abs(x - before) / jitter, cap)
        spread = max(spread + jump - VARIANCE_REFERENCE, 0.0)
        top, top_spread = max(top, up, down), max(top_spread, spread)
    level = min(max(h, MARGIN * top), MAX_RAISE * h)
    variance = min(max(VARIANCE_H * h, MARGIN * top_spread), MAX_RAISE * VARIANCE_H * h)
    return level, variance


def _jitter(z: FloatArray) -> float:
    """The scale of successive differences of `z` at which their mean absolute
    value (clipped at OUTLIER_JUMPS robust sigmas) is a Gaussian's, 0.8: the
    variance CUSUM then measures spread against training's own, tails and
    all."""
    jumps = np.abs(np.diff(z))
    _, sigma = median_and_sigma(np.diff(z))
    sigma = max(sigma, MIN_SPREAD)
    mean = (
        float(np.minimum(jumps, OUTLIER_JUMPS * sigma).mean()) if jumps.size else sigma
    )
    return max(mean / GAUSSIAN_MEAN_ABS, MIN_SPREAD)


def _unit(z: FloatArray) -> float:
    """The residuals' sigma in baseline scales: 1, or the spread of their
    successive differences (winsorized at their 1st and 99th percentiles,
    over √2) when it is wider: discrete readings collapse the MAD and leave
    the baseline far too narrow, while a level shift among the training
    readings moves few differences."""
    jumps = np.diff(z)
    if jumps.size < 2:
        return 1.0
    low, high = np.quantile(jumps, [0.01, 0.99])
    return max(float(np.std(np.clip(jumps, low, high)) / np.sqrt(2)), 1.0)


def _inflation(z: FloatArray, outlier: float) -> float:
    """f of residuals `z` (clipped at the outlier band: a spike is no trend)."""
    clipped = np.clip(z, -outlier, outlier)
    a, b = clipped[:-1] - clipped.mean(), clipped[1:] - clipped.mean()
    energy = float(np.sqrt((a @ a) * (b @ b)))
    rho = float(a @ b) / energy if energy > 0 else 0.0
    rho = min(max(rho, 0.0), MAX_RHO)
    return float(np.sqrt((1 + rho) / (1 - rho)))


def advance(
    p: ChangeParams,
    s: ChangeState,
    rows: IntArray,
    timestamps: FloatArray,
    baseline: Baselines,
) -> tuple[Step, Change]:
    """Advance series `rows` (distinct) by one reading each, in place, given
    their baselines (`streaming.standardized`); what each one scored."""
    expected, scale, z = baseline
    unit = p.unit[rows]
    scale, z = scale * unit, z / unit
    level, f = s.level[rows], p.inflation[rows]
    k, h, outlier_sigma = p.allowance[rows], p.threshold[rows], p.outlier[rows]
    hv = p.variance_threshold[rows]
    d = z - level
    cap = k + h / 2
    jump = np.minimum(np.abs(z - s.previous[rows]) / p.jitter[rows], cap)
    s.previous[rows] = z
    variance = _variance(s, rows, jump, h, hv)
    settling = s.settle_count[rows] < SETTLE
    u = np.minimum(np.maximum(d / f, -cap), cap)
    up = _advance(s.up, s.up_sum, s.up_count, s.up_start, rows, timestamps, d, u - k)
    down = _advance(
        s.down, s.down_sum, s.down_count, s.down_start, rows, timestamps, d, -u - k
    )
    fired = (up > h) | (down > h)
    rising = up >= down
    shift = np.where(
        rising, s.up_sum[rows] / np.maximum(s.up_count[rows], 1.0),
        s.down_sum[rows] / np.maximum(s.down_count[rows], 1.0),
    )  # fmt: skip
    began = np.where(rising, s.up_start[rows], s.down_start[rows])
    new = fired & ~(np.abs(level - s.normal[rows]) > 2 * k * f)
    s.start[rows[new]] = began[new]
    total = np.where(fired, z, s.settle_sum[rows] + z)
    count = np.where(fired, 1.0, s.settle_count[rows] + 1.0)
    s.level[rows] = np.where(
        fired, level + shift, np.where(settling, total / count, level)
    )
    moved = settling | fired
    s.settle_sum[rows[moved]] = total[moved]
    s.settle_count[rows[moved]] = count[moved]
    for column in (s.up, s.up_sum, s.up_count, s.down, s.down_sum, s.down_count):
        column[rows[fired]] = 0.0
    away = s.level[rows] - s.normal[rows]
    regime = np.abs(away) / (2 * k * f)
    absorb = (regime > 1.0) & (timestamps - s.start[rows] >= p.absorb_after[rows])
    s.normal[rows[absorb]] = s.level[rows[absorb]]
    regime = np.where(absorb, 0.0, regime)
    s.start[rows[regime <= 1.0]] = np.nan
    size = np.where(regime > 1.0, away * scale, np.nan)
    level_score = np.where(fired | (regime > 1.0), regime, np.maximum(up, down) / h)
    scores = np.stack([np.abs(d) / outlier_sigma, level_score, variance])
    cause = np.argmax(scores, axis=0)
    above = np.where(cause == LEVEL, away > 0, d > 0)
    step = Step(
        scores.max(axis=0), expected + scale * level, outlier_sigma * scale, above,
        cause,
    )  # fmt: skip
    return step, Change(s.start[rows].copy(), size, absorb)


def _variance(
    s: ChangeState, rows: IntArray, jump: FloatArray, h: FloatArray, hv: FloatArray
) -> FloatArray:
    """The variance CUSUM, regime and release of series `rows` advanced by the
    readings' clipped `jump`s; returns the variance scores."""
    widened = s.widened[rows]
    wide = widened > 0.0
    middle = np.maximum((widened + GAUSSIAN_MEAN_ABS) / 2, VARIANCE_REFERENCE)
    release = np.maximum(s.release[rows] + middle - jump, 0.0)
    released = wide & (release > RELEASE * h)
    spread = np.maximum(s.spread[rows] + jump - VARIANCE_REFERENCE, 0.0)
    on = ~wide & (spread > 0.0)
    total = np.where(on, s.spread_sum[rows] + jump, 0.0)
    count = np.where(on, s.spread_count[rows] + 1.0, 0.0)
    fires = on & (spread > hv)
    widened = np.where(
        fires, total / np.maximum(count, 1.0), np.where(released, 0.0, widened)
    )
    kept = on & ~fires
    spread = np.where(kept, spread, 0.0)
    s.spread[rows] = spread
    s.spread_sum[rows] = np.where(kept, total, 0.0)
    s.spread_count[rows] = np.where(kept, count, 0.0)
    s.release[rows] = np.where(wide & ~released, release, 0.0)
    s.widened[rows] = widened
    scores: FloatArray = np.where(
        widened > 0.0, widened / VARIANCE_REFERENCE, spread / hv
    )
    return scores


def _advance(
    cusum: FloatArray,
    total: FloatArray,
    count: FloatArray,
    start: FloatArray,
    rows: IntArray,
    timestamps: FloatArray,
    d: FloatArray,
    increment: FloatArray,
) -> FloatArray:
    """One side's CUSUM advanced by `increment`, with the sum, count and start
    of the residuals since it left 0; returns its new value."""
    before = cusum[rows]
    after = np.maximum(before + increment, 0.0)
    on = after > 0.0
    start[rows] = np.where(on & (before == 0.0), timestamps, start[rows])
    total[rows] = np.where(on, total[rows] + d, 0.0)
    count[rows] = np.where(on, count[rows] + 1.0, 0.0)
    cusum[rows] = after
    return after


def advance_one(
    p: Any, s: Any, timestamp: float, baseline: Baseline
) -> tuple[tuple[float, float, float, bool, int], tuple[float, float, bool]]:
    """One reading of a series, its params and state as rows (`Columns.row`), the
    state advanced in place, given the reading's baseline
    (`streaming.standardized`, which a series' readings can get all at
    once)."""
    expected, scale, z = baseline
    unit = p.unit
    scale, z = scale * unit, z / unit
    level, f = s.level, p.inflation
    k, h = p.allowance, p.threshold
    hv = p.variance_threshold
    outlier_sigma, normal = p.outlier, s.normal
    d = z - level
    cap = k + h / 2
    jump = min(abs(z - s.previous) / p.jitter, cap)
    s.previous = z
    variance = _variance_one(s, jump, h, hv)
    settling = s.settle_count < SETTLE
    u = min(max(d / f, -cap), cap)
    s.up, s.up_sum, s.up_count, s.up_start = up_side = _advance_one(
        s.up, s.up_sum, s.up_count, s.up_start, timestamp, d, u - k
    )
    s.down, s.down_sum, s.down_count, s.down_start = down_side = _advance_one(
        s.down, s.down_sum, s.down_count, s.down_start, timestamp, d, -u - k
    )
    up, down = up_side[0], down_side[0]
    fired = up > h or down > h
    rising = up >= down
    if fired:
        _, total, count, began = up_side if rising else down_side
        if not abs(level - normal) > 2 * k * f:
            s.start = began
        s.level = level + total / max(count, 1.0)
        s.settle_sum, s.settle_count = z, 1.0
        s.up = s.up_sum = s.up_count = s.down = s.down_sum = s.down_count = 0.0
    elif settling:
        total, count = s.settle_sum + z, s.settle_count + 1.0
        s.settle_sum, s.settle_count = total, count
        s.level = total / count
    away = s.level - normal
    regime = abs(away) / (2 * k * f)
    absorb = regime > 1.0 and timestamp - s.start >= p.absorb_after
    if absorb:
        s.normal = s.level
        regime = 0.0
    if regime <= 1.0:
        s.start = math.nan
    size = away * scale if regime > 1.0 else math.nan
    level_score = regime if fired or regime > 1.0 else max(up, down) / h
    scores = [abs(d) / outlier_sigma, level_score, variance]
    cause = max(range(3), key=scores.__getitem__)
    above = away > 0 if cause == LEVEL else d > 0
    half = outlier_sigma * scale
    answer = (max(scores), expected + scale * level, half, above, cause)
    return answer, (s.start, size, absorb)


def _variance_one(s: Any, jump: float, h: float, hv: float) -> float:
    """`_variance` for one series' state row, in plain floats."""
    if s.widened > 0.0:
        middle = max((s.widened + GAUSSIAN_MEAN_ABS) / 2, VARIANCE_REFERENCE)
        release = max(s.release + middle - jump, 0.0)
        if release > RELEASE * h:
            s.widened = release = 0.0
        s.release = release
    else:
        spread = max(s.spread + jump - VARIANCE_REFERENCE, 0.0)
        if spread > 0.0:
            total, count = s.spread_sum + jump, s.spread_count + 1.0
        else:
            total = count = 0.0
        if spread > hv:
            s.widened = total / max(count, 1.0)
            spread = total = count = 0.0
        s.spread, s.spread_sum, s.spread_count = spread, total, count
    if s.widened > 0.0:
        return float(s.widened / VARIANCE_REFERENCE)
    return float(s.spread / hv)


def _advance_one(
    cusum: float,
    total: float,
    count: float,
    start: float,
    timestamp: float,
    d: float,
    increment: float,
) -> tuple[float, float, float, float]:
    """`_advance` for one series, in plain floats: the CUSUM, sum, count and
    start after it."""
    after = max(cusum + increment, 0.0)
    if after > 0.0:
        if cusum == 0.0:
            start = timestamp
        return after, total + d, count + 1.0, start
    return after, 0.0, 0.0, start
