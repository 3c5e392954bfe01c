"""`stuck`: a data-quality detector per series, for flatlined sensors and
dropouts, each reported as one event, not as a storm of anomalies.

A run is the readings in a row with exactly one value (in time order, as
`core.detectors.stuck` counts them). A series may repeat a value for
`stuck_after` readings, twice the longest run of its training (at least 2);
the reading whose run goes past that is an anomaly with reason `stuck`
(score: the run over the limit), and the readings after it in the same run
are not (their score is held at 1): the event is that one alarm, until the
value changes. A reading that comes more than `dropout_intervals` of the
series' usual intervals (the median spacing of its training readings) after
the one before it is an anomaly with reason `dropout` (score: the gap over
that), once, when the series comes back. A reading beyond the series' flat
robust band (`outlier_sigma` sigmas around its median) is an anomaly too,
with the band's reason.

The state is a series' previous reading (its residual: the band is flat, so
equal values have equal residuals), its run and its newest timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from atalaia.core.detectors.base import MIN_SCALE, FloatArray
from atalaia.core.detectors.phases import BandPools, PhaseBand
from atalaia.core.detectors.robust import median_and_sigma
from atalaia.core.detectors.streaming import (
    Baseline,
    Baselines,
    Columns,
    IntArray,
    Step,
    baselines,
)
from atalaia.core.detectors.stuck import stuck_after
from atalaia.core.series import Readings

NAME = "stuck"
DEFAULTS = {"outlier_sigma": 6.0, "dropout_intervals": 10.0}
BAND, STUCK, DROPOUT = 0, 1, 2  # a score's cause


@dataclass(frozen=True, slots=True)
class FlatlineParams(Columns):
    """Fitted models of series, a column entry each (see the module); their
    baseline bands are apart."""

    outlier: FloatArray
    stuck_after: FloatArray  # readings
    dropout_after: FloatArray  # seconds


@dataclass(frozen=True, slots=True)
class FlatlineState(Columns):
    """Each series' previous residual, its run and its newest timestamp."""

    previous: FloatArray
    run: FloatArray
    last: FloatArray


def fit_flatline(
    readings: Readings, hyperparameters: Mapping[str, float]
) -> tuple[PhaseBand, FlatlineParams, FlatlineState]:
    """The band, params and state after `readings` (time order) of one series,
    fitted with validated `hyperparameters`."""
    outlier = hyperparameters["outlier_sigma"]
    t, v = readings.timestamps, readings.values
    center, sigma = median_and_sigma(v)
    band = PhaseBand.flat(center, max(sigma, MIN_SCALE) * outlier)
    spacing = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    params = FlatlineParams(
        np.array([outlier]),
        np.array([float(stuck_after(v))]),
        np.array([hyperparameters["dropout_intervals"] * max(spacing, 1e-9)]),
    )
    _, _, z = baselines(
        BandPools.of([band]), np.array([outlier]), np.zeros(1, np.int64),
        t[-1:], v[-1:],
    )  # fmt: skip
    state = FlatlineState(z, np.array([float(_trailing_run(v))]), t[-1:].copy())
    return band, params, state


def _trailing_run(values: FloatArray) -> int:
    """How many readings at the end of `values` have its last value."""
    differ = np.flatnonzero(values != values[-1])
    return int(values.size - (differ[-1] + 1 if differ.size else 0))


def advance(
    p: FlatlineParams,
    s: FlatlineState,
    rows: IntArray,
    timestamps: FloatArray,
    baseline: Baselines,
) -> Step:
    """Advance series `rows` (distinct) by one reading each, in place, given
    their baselines (`streaming.standardized`); what each one scored."""
    expected, scale, z = baseline
    run = np.where(z == s.previous[rows], s.run[rows] + 1.0, 1.0)
    gap = timestamps - s.last[rows]
    limit = p.stuck_after[rows]
    s.previous[rows], s.run[rows], s.last[rows] = z, run, timestamps
    over = run / limit
    stuck = np.where(run == np.floor(limit) + 1.0, over, np.minimum(over, 1.0))
    outlier = p.outlier[rows]
    scores = np.stack([np.abs(z) / outlier, stuck, gap / p.dropout_after[rows]])
    return Step(
        scores.max(axis=0), expected, outlier * scale, z > 0, np.argmax(scores, axis=0)
    )


def advance_one(
    p: Any, s: Any, timestamp: float, baseline: Baseline
) -> tuple[float, float, float, bool, int]:
    """One reading of a series, its params and state as rows (`Columns.row`), the
    state advanced in place."""
    expected, scale, z = baseline
    run = s.run + 1.0 if z == s.previous else 1.0
    gap = timestamp - s.last
    limit = p.stuck_after
    s.previous, s.run, s.last = z, run, timestamp
    over = run / limit
    stuck = over if run == math.floor(limit) + 1.0 else min(over, 1.0)
    outlier = p.outlier
    scores = [abs(z) / outlier, stuck, gap / p.dropout_after]
    cause = max(range(3), key=scores.__getitem__)
    return max(scores), expected, outlier * scale, z > 0, cause
