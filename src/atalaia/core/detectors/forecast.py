"""`forecast`: a one-step forecaster per series whose residuals feed an
anomaly likelihood (after Numenta's: Ahmad et al. 2017, "Unsupervised
real-time anomaly detection for streaming data").

The forecast is the seasonal baseline (`streaming.fit_baseline`: the value
expected at the reading's phase, e(t), and the residuals' robust scale there,
s(t)) plus an online level L on the deseasonalised residual z = (x − e) / s,
simple exponential smoothing (Holt's level, without trend): the forecast of
a reading is e(t) + s(t) L, its residual r = z − L, then L ← L + α r̃ with r̃
the residual clipped to ±`outlier_sigma` residual sigmas (a spike barely moves
the level). α is the one of ALPHAS with the smallest mean absolute one-step
residual on the last TAIL training readings, unless given.

The anomaly likelihood judges the mean m of the last WINDOW clipped
residuals against the long-run distribution of that mean: an exponentially
weighted mean μ and variance σ² over about `memory` readings, started from the
training residuals' median and robust spread, and updated, as is the
residuals' mean square, with deviations held within HELD sigmas and only
while m stays within the threshold (an excursion does not teach the model
that excursions are normal). Its score is |m − μ| / (σ × `threshold_sigma`):
above 1, the recent mean is less likely than a `threshold_sigma`-sigma
Gaussian deviation (4.5: a two-sided tail of 7e-6). One noisy reading moves
m by a WINDOW-th of its size and does not fire; a sustained change does. An
alarm is the one reading where the likelihood crosses its threshold: no other
is raised until it has stayed below it for `suppress` readings (the score is
held at 1 in between), so an ongoing event is one alarm, not hundreds.

A reading more than `outlier_sigma` residual sigmas (an exponentially
weighted RMS of r̃) from its forecast is an anomaly by itself, whatever the
likelihood, unless it comes during an ongoing excursion's suppression: its
score is |r| over that band. `expected` is the forecast, lower/upper that
band. Both scores carry the reason
`forecast_deviation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.phases import BandPools, PhaseBand
from atalaia.core.detectors.robust import median_and_sigma
from atalaia.core.detectors.streaming import (
    MIN_SPREAD,
    Baseline,
    Baselines,
    Columns,
    IntArray,
    Step,
    baselines,
    fit_baseline,
)
from atalaia.core.series import Readings

NAME = "forecast"
DEFAULTS = {
    "threshold_sigma": 4.5,
    "outlier_sigma": 6.0,
    "memory": 10_000.0,  # readings
    "suppress": 30.0,  # readings
}
OPTIONAL = frozenset({"alpha"})
WINDOW = 5  # residuals in the short mean
ALPHAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
# The long-run figures learn from deviations held within HELD sigmas: a long
# event just below the threshold would otherwise widen them reading by
# reading until it fits (Gaussian noise loses 2 % of its variance so).
HELD = 2.5
TAIL = 20_000  # the last training readings α is chosen on and the state from


@dataclass(frozen=True, slots=True)
class ForecastParams(Columns):
    """Fitted models of series, a column entry each (see the module); their
    baseline bands are apart."""

    alpha: FloatArray
    threshold: FloatArray
    outlier: FloatArray
    rate: FloatArray  # 1 / memory
    suppress: FloatArray  # readings


@dataclass(frozen=True, slots=True)
class ForecastState(Columns):
    """Each series' state: its level, its last WINDOW clipped residuals (a ring,
    `slot` the next to overwrite), the long-run mean and variance of their
    mean, the residuals' mean square and the suppression countdown."""

    level: FloatArray
    ring: FloatArray = field(metadata={"width": WINDOW})  # series × WINDOW
    slot: FloatArray  # a whole number
    center: FloatArray
    variance: FloatArray
    square: FloatArray
    countdown: FloatArray  # readings


def fit_forecast(
    readings: Readings, hyperparameters: Mapping[str, float]
) -> tuple[PhaseBand, ForecastParams, ForecastState]:
    """The baseline band, the params and the state after `readings` (in time
    order) of one series, fitted with validated `hyperparameters`."""
    outlier = hyperparameters["outlier_sigma"]
    band = fit_baseline(readings, outlier)
    _, _, z = baselines(
        BandPools.of([band]), np.array([outlier]), np.zeros(len(readings), np.int64),
        readings.timestamps, readings.values,
    )  # fmt: skip
    z = z[-TAIL:]  # enough to forget where smoothing began (α ≥ 0.01)
    given = hyperparameters.get("alpha")
    alpha = min(given, 1.0) if given else _best_alpha(z)
    level, residuals = _smoothed(z, alpha)
    params = _params(alpha, hyperparameters)
    return band, params, _state(level, residuals, outlier)


def _params(alpha: float, hyperparameters: Mapping[str, float]) -> ForecastParams:
    return ForecastParams(
        np.array([alpha]),
        np.array([hyperparameters["threshold_sigma"]]),
        np.array([hyperparameters["outlier_sigma"]]),
        np.array([1.0 / max(hyperparameters["memory"], 1.0)]),
        np.array([float(round(hyperparameters["suppress"]))]),
    )


def _smoothed(z: FloatArray, alpha: float) -> tuple[float, FloatArray]:
    """The level after `z` (simple exponential smoothing from its first
    value) and the one-step residuals of the others."""
    level = z[0].item()
    residuals = []
    for x in z[1:].tolist():
        residuals.append(x - level)
        level += alpha * (x - level)
    return level, np.array(residuals)


def _best_alpha(z: FloatArray) -> float:
    """The α whose one-step residuals are smallest (mean absolute value); the
    smallest for too few readings to tell."""
    if z.size <= WINDOW:
        return ALPHAS[0]
    errors = [float(np.abs(_smoothed(z, a)[1]).mean()) for a in ALPHAS]
    return ALPHAS[int(np.argmin(errors))]


def _state(level: float, residuals: FloatArray, outlier: float) -> ForecastState:
    """The state at the end of training, from its residuals: robust figures,
    as training may hold a few anomalies."""
    if residuals.size == 0:  # one training reading: nothing known yet
        residuals = np.zeros(1)
    _, spread = median_and_sigma(residuals)
    spread = max(spread, MIN_SPREAD)
    clipped = np.clip(residuals, -outlier * spread, outlier * spread)
    means = np.convolve(clipped, np.ones(WINDOW) / WINDOW, mode="valid")
    center, means_spread = median_and_sigma(means)
    ring = np.zeros((1, WINDOW))
    last = clipped[-WINDOW:]
    ring[0, : last.size] = last
    return ForecastState(
        level=np.array([level]),
        ring=ring,
        slot=np.array([float(last.size % WINDOW)]),
        center=np.array([center]),
        variance=np.array([max(means_spread, MIN_SPREAD / WINDOW) ** 2]),
        square=np.array([spread**2]),
        countdown=np.zeros(1),
    )


def advance(
    p: ForecastParams,
    s: ForecastState,
    rows: IntArray,
    _timestamps: FloatArray,
    baseline: Baselines,
) -> Step:
    """Advance series `rows` (distinct) by one reading each, in place, given
    their baselines (`streaming.standardized`); what each one scored."""
    expected, scale, z = baseline
    level = s.level[rows]
    sd = np.sqrt(np.maximum(s.square[rows], MIN_SPREAD**2))
    r = z - level
    limit = p.outlier[rows] * sd
    outlier = np.abs(r) / limit
    clipped = np.minimum(np.maximum(r, -limit), limit)
    slot = s.slot[rows].astype(np.int64)
    s.ring[rows, slot] = clipped
    total = s.ring[rows, 0]
    for j in range(1, WINDOW):  # in slot order, as the plain path adds
        total = total + s.ring[rows, j]
    mean = total / WINDOW
    center, spread = s.center[rows], np.sqrt(s.variance[rows])
    deviation = (mean - center) / spread
    threshold = p.threshold[rows]
    likely = np.abs(deviation) / threshold
    beyond, countdown = likely > 1.0, s.countdown[rows]
    likely = np.where(beyond & (countdown == 0), likely, np.minimum(likely, 1.0))
    s.countdown[rows] = np.where(beyond, p.suppress[rows], np.maximum(countdown - 1, 0))
    s.level[rows] = level + p.alpha[rows] * clipped
    s.slot[rows] = (slot + 1) % WINDOW
    rate = np.where(beyond, 0.0, p.rate[rows])  # an excursion teaches nothing
    bound, near = HELD * spread, HELD * sd
    gap = np.minimum(np.maximum(mean - center, -bound), bound)
    held = np.minimum(np.maximum(r, -near), near)
    s.center[rows] = center + rate * gap
    s.variance[rows] = (1.0 - rate) * (s.variance[rows] + rate * gap * gap)
    s.square[rows] = s.square[rows] + rate * (held * held - s.square[rows])
    # Within an ongoing excursion, a far reading is part of it too.
    outlier = np.where(countdown == 0, outlier, np.minimum(outlier, 1.0))
    score = np.maximum(likely, outlier)
    above = np.where(likely >= outlier, deviation > 0, r > 0)
    return Step(
        score,
        expected + scale * level,
        limit * scale,
        above,
        np.zeros(rows.size, np.int64),
    )


def advance_one(
    p: Any, s: Any, _timestamp: float, baseline: Baseline
) -> tuple[float, float, float, bool, int]:
    """One reading of a series, its params and state as rows (`Columns.row`), the
    state advanced in place, given the reading's baseline
    (`streaming.standardized`, which a series' readings can get all at
    once)."""
    expected, scale, z = baseline
    level = s.level
    sd = math.sqrt(max(s.square, MIN_SPREAD**2))
    r = z - level
    limit = p.outlier * sd
    outlier = abs(r) / limit
    clipped = min(max(r, -limit), limit)
    slot = int(s.slot)
    ring = s.ring
    ring[slot] = clipped
    total = ring[0]
    for j in range(1, WINDOW):
        total = total + ring[j]
    mean = total / WINDOW
    center, variance = s.center, s.variance
    spread = math.sqrt(variance)
    deviation = (mean - center) / spread
    likely = abs(deviation) / p.threshold
    beyond, countdown = likely > 1.0, s.countdown
    if not (beyond and countdown == 0):
        likely = min(likely, 1.0)
    s.countdown = p.suppress if beyond else max(countdown - 1, 0.0)
    s.level = level + p.alpha * clipped
    s.slot = float((slot + 1) % WINDOW)
    rate = 0.0 if beyond else p.rate
    bound, near = HELD * spread, HELD * sd
    gap = min(max(mean - center, -bound), bound)
    held = min(max(r, -near), near)
    s.center = center + rate * gap
    s.variance = (1.0 - rate) * (variance + rate * gap * gap)
    square = s.square
    s.square = square + rate * (held * held - square)
    if countdown:
        outlier = min(outlier, 1.0)
    above = deviation > 0 if likely >= outlier else r > 0
    return max(likely, outlier), expected + scale * level, limit * scale, above, 0
