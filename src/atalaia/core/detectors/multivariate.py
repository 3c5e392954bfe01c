"""Multivariate detector: one model of a sensor over its axes (or channels); the
readings of one timestamp are scored together.

Fitting, on rows of readings × axes:

1. Axes that hold one value in training (std ≤ MIN_STD) are left out: nothing
   to learn from them.
2. A robust centre and covariance (`ellipsoid.robust_moments`): the mean and
   covariance of the 90 % of readings nearest the centre, so that a few
   anomalies in training do not widen the model; a light ridge keeps the
   covariance invertible when axes are collinear or quantized.
3. Axes that wander are left out (`steady_axes`). The model takes a reading's
   departure from what the other axes predict to be noise around a fixed
   centre. When the slow part of that departure (its means over BLOCKS
   consecutive stretches of training) holds more than SLOW_SHARE of its
   variance, the axis moves on its own during training (a temperature that
   warms up, a level that drifts), and training cannot say how far it will
   go: the most wandering axis is dropped and the rest refitted, until none
   wanders. One axis always stays. A load that moves every axis together is
   no wander: the other axes predict it.
4. Two squared Mahalanobis distances: of a reading from the centre, and of the
   mean departure of the last `window` readings under the covariance such
   means have in training: an anomaly that lasts shows in the mean even when
   each reading stays within the noise. A departure counts in the mean only
   up to the reading threshold's surface, so that a spike, judged by its own
   distance, does not flag the `window - 1` readings after it too.
5. Each distance's threshold comes from its own training values: their peaks
   over the 90 % quantile are taken as exponential (`ellipsoid.tail_limit`)
   and extrapolated to the probability of a normal deviation of
   `threshold_sigma` sigmas (two-sided), so that 4 means here what it means
   for the band detectors. A chi-square quantile would be exact only for
   Gaussian readings independent in time; real axes are quantized, skewed, and
   their window means autocorrelated, and trimming biases the covariance's
   scale. The training distances' own tail absorbs all three.

Scoring: a reading's score is the larger of the two distances, each as a
multiple of its threshold's (square roots): above 1 is an anomaly. The window
runs over the rows of one call, in time order: reading i is judged on rows
≤ i, the first `window - 1` rows by their reading alone. Each modelled axis
explains the score by its conditional departure: its value minus what the
other modelled axes predict (the conditional expectation), in conditional
sigmas. `expected` is that prediction for the reading; `lower`/`upper` are
expected ± the reading threshold's radius in conditional sigmas (the band the
axis keeps a reading normal in, were the others at the centre);
`contributions` are the squared departures' shares (of the window mean's when
the window decides); `direction` is that of the top contributor. The reason
of an anomaly is `axis_correlation_break` (the axes together lie where
training never put them), `outside_band` when one axis is modelled. Axes left
out contribute 0 and get NaN for expected, lower and upper.

>>> rng = np.random.default_rng(0)
>>> load = rng.normal(size=600)
>>> rows = np.column_stack([load, 2 * load]) + rng.normal(0, 0.1, (600, 2))
>>> params = Multivariate().fit(rows, Multivariate.defaults)
>>> s = params.score(np.array([[1.0, 2.0], [1.0, -2.0]]))
>>> s.anomaly.tolist(), s.reason.tolist()
([False, True], ['', 'axis_correlation_break'])
>>> [round(float(x), 1) for x in s.expected[1]]
[-1.0, 2.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.base import FloatArray, check_hyperparameters
from atalaia.core.detectors.ellipsoid import (
    Ellipsoid,
    log_normal_tail,
    robust_moments,
    trailing_means,
)
from atalaia.core.explanations import Reason
from atalaia.core.series import MIN_STD, Readings, check_readings
from atalaia.errors import InvalidHyperparameters, InvalidSeries

IntArray = npt.NDArray[np.int64]

BLOCKS = 10  # consecutive stretches of training, for the slow share
SLOW_SHARE = 0.5  # an axis whose departures are slower than this wanders
MIN_READINGS = 100  # full windows of training, at the least
READINGS_PER_AXIS = 10


@dataclass(frozen=True, slots=True)
class SensorReadings:
    """A sensor's readings: timestamps and rows of values (readings × axes)."""

    timestamps: FloatArray
    values: FloatArray

    @classmethod
    def of(cls, timestamps: object, values: object) -> SensorReadings:
        """Validated readings; 1-D values are one axis. Raise InvalidSeries
        naming the rule (shape, equal_lengths, and check_readings' per axis)."""
        ts = np.asarray(timestamps, dtype=np.float64)
        vs = np.asarray(values, dtype=np.float64)
        if vs.ndim == 1:
            vs = vs[:, None]
        if ts.ndim != 1 or vs.ndim != 2 or not vs.shape[1]:
            raise InvalidSeries(
                "timestamps must be a flat list and values rows of one or more "
                "axes (readings × axes)",
                rule="shape",
            )
        if vs.shape[0] != ts.size:
            raise InvalidSeries(
                f"got {ts.size} timestamps but {vs.shape[0]} rows of values; "
                "they must pair up",
                rule="equal_lengths",
            )
        for axis in range(vs.shape[1]):
            try:
                check_readings(Readings(ts, vs[:, axis]))
            except InvalidSeries as exc:
                detail = f"axis {axis}: {exc.detail}"
                raise InvalidSeries(detail, rule=exc.rule) from None
        return cls(ts, vs)


@dataclass(frozen=True, slots=True)
class SensorScores:
    """Per reading: the score, the verdict, and per axis its explanation."""

    score: FloatArray
    anomaly: npt.NDArray[np.bool_]
    expected: FloatArray  # readings × axes
    lower: FloatArray
    upper: FloatArray
    contributions: FloatArray  # readings × axes, rows summing to 1
    direction: npt.NDArray[np.str_]  # of the top contributing axis; "" if normal
    reason: npt.NDArray[np.str_]  # "" if normal


@dataclass(frozen=True, slots=True)
class SensorParams:
    """A fitted sensor: which of its axes are modelled, and the two ellipsoids."""

    axes: int  # of the readings, modelled or not
    modelled: IntArray
    reading: Ellipsoid
    window: int
    window_means: Ellipsoid

    def score(self, values: FloatArray) -> SensorScores:
        """Score rows of readings × axes, in time order (see the module doc)."""
        if values.shape[1] != self.axes:
            raise InvalidSeries(
                f"the model has {self.axes} axes; got rows of {values.shape[1]}",
                rule="axes",
            )
        rows = values[:, self.modelled]
        own_pulled, squared = self.reading.distances(rows)
        scores = np.sqrt(squared / self.reading.limit)
        pulled = own_pulled.copy()  # of the statistic that decides
        gain = np.tile(np.diag(self.reading.precision), (rows.shape[0], 1))
        if rows.shape[0] >= self.window:
            means = trailing_means(self.reading.shrunk(rows, squared), self.window)
            w_pulled, w_squared = self.window_means.distances(means)
            w_scores = np.sqrt(w_squared / self.window_means.limit)
            wins = w_scores > scores[self.window - 1 :]
            at = np.flatnonzero(wins) + self.window - 1
            scores[at] = w_scores[wins]
            pulled[at] = w_pulled[wins]
            gain[at] = np.diag(self.window_means.precision)
        return self._explain(rows, own_pulled, pulled, gain, scores)

    def _explain(
        self,
        rows: FloatArray,
        own_pulled: FloatArray,
        pulled: FloatArray,
        gain: FloatArray,
        scores: FloatArray,
    ) -> SensorScores:
        """Each reading's explanation: `own_pulled` is its reading's precision ×
        departure; `pulled`, `gain` those of the deciding statistic."""
        parts = pulled**2 / gain
        total = parts.sum(axis=1, keepdims=True)
        shares = np.divide(
            parts, total, out=np.full_like(parts, 1.0 / parts.shape[1]), where=total > 0
        )
        top = np.argmax(parts, axis=1)
        rising = pulled[np.arange(scores.size), top] > 0
        anomaly = scores > 1.0
        reason = (
            Reason.AXIS_CORRELATION_BREAK
            if self.modelled.size > 1
            else Reason.OUTSIDE_BAND
        )
        own = np.diag(self.reading.precision)
        expected = rows - own_pulled / own
        half = math.sqrt(self.reading.limit) / np.sqrt(own)
        return SensorScores(
            score=scores,
            anomaly=anomaly,
            expected=self._spread(expected),
            lower=self._spread(expected - half),
            upper=self._spread(expected + half),
            contributions=self._spread(shares, fill=0.0),
            direction=np.where(anomaly, np.where(rising, "above", "below"), ""),
            reason=np.where(anomaly, reason, ""),
        )

    def _spread(self, modelled: FloatArray, fill: float = math.nan) -> FloatArray:
        """Columns of the modelled axes placed among all axes, `fill` elsewhere."""
        full = np.full((modelled.shape[0], self.axes), fill)
        full[:, self.modelled] = modelled
        return full

    def to_arrays(self) -> dict[str, npt.NDArray[np.float64] | IntArray]:
        """The model as named numpy arrays (for an .npz or a registry row).

        >>> rows = np.random.default_rng(1).normal(size=(300, 2))
        >>> params = Multivariate().fit(rows, Multivariate.defaults)
        >>> again = SensorParams.from_arrays(params.to_arrays())
        >>> bool((again.score(rows).score == params.score(rows).score).all())
        True
        """
        return {
            "axes": np.array([self.axes, self.window], np.int64),
            "modelled": self.modelled,
            "reading_center": self.reading.center,
            "reading_precision": self.reading.precision,
            "window_center": self.window_means.center,
            "window_precision": self.window_means.precision,
            "limits": np.array([self.reading.limit, self.window_means.limit]),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.ArrayLike]) -> SensorParams:
        """The model `to_arrays` gave."""
        axes, window = (int(x) for x in np.asarray(arrays["axes"]))
        reading_limit, window_limit = (float(x) for x in np.asarray(arrays["limits"]))
        return cls(
            axes=axes,
            modelled=np.asarray(arrays["modelled"], np.int64),
            reading=Ellipsoid(
                np.asarray(arrays["reading_center"], np.float64),
                np.asarray(arrays["reading_precision"], np.float64),
                reading_limit,
            ),
            window=window,
            window_means=Ellipsoid(
                np.asarray(arrays["window_center"], np.float64),
                np.asarray(arrays["window_precision"], np.float64),
                window_limit,
            ),
        )


class Multivariate:
    """Fit a sensor's readings (rows × axes) into SensorParams."""

    name: ClassVar[str] = "multivariate"
    defaults: ClassVar[dict[str, float]] = {"threshold_sigma": 4.0, "window": 5.0}

    def check(self, given: Mapping[str, object]) -> dict[str, float]:
        """The hyperparameters over the defaults; `window` is whole readings."""
        resolved = check_hyperparameters(self.name, self.defaults, given)
        if not float(resolved["window"]).is_integer():
            raise InvalidHyperparameters(
                f"{self.name}.window is a number of readings; got {resolved['window']}",
                rule="hyperparameters_integer",
            )
        return resolved

    def fit(
        self, values: FloatArray, hyperparameters: Mapping[str, float]
    ) -> SensorParams:
        window = int(hyperparameters["window"])
        needed = max(MIN_READINGS, READINGS_PER_AXIS * values.shape[1]) + window - 1
        if values.shape[0] < needed:
            raise InvalidSeries(
                f"{self.name} needs at least {needed} readings of "
                f"{values.shape[1]} axes with window {window}; got {values.shape[0]}",
                rule="min_points",
            )
        varying = np.flatnonzero(values.std(axis=0) > MIN_STD)
        if not varying.size:
            raise InvalidSeries(
                f"every axis is constant (std ≤ {MIN_STD:g}); nothing to learn",
                rule="non_constant",
            )
        modelled = steady_axes(values, varying)
        log_tail = log_normal_tail(float(hyperparameters["threshold_sigma"]))
        rows = values[:, modelled]
        reading = Ellipsoid.fit(rows, log_tail)
        squared = reading.distances(rows)[1]
        means = trailing_means(reading.shrunk(rows, squared), window)
        return SensorParams(
            axes=values.shape[1],
            modelled=modelled,
            reading=reading,
            window=window,
            window_means=Ellipsoid.fit(means, log_tail),
        )


def steady_axes(values: FloatArray, candidates: IntArray) -> IntArray:
    """The candidate axes left once every wandering one is dropped (see the
    module doc), the most wandering first; at least one stays."""
    axes = candidates
    while axes.size > 1:
        center, covariance = robust_moments(values[:, axes])
        precision = np.linalg.inv(covariance)
        departure = (values[:, axes] - center) @ precision / np.diag(precision)
        share = slow_share(departure)
        worst = int(np.argmax(share))
        if share[worst] <= SLOW_SHARE:
            break
        axes = np.delete(axes, worst)
    return axes


def slow_share(rows: FloatArray) -> FloatArray:
    """Per column, the share of its variance that its means over BLOCKS
    consecutive stretches hold (near (BLOCKS − 1)/n for noise, 1 for a trend).

    >>> t = np.arange(400.0)
    >>> noise = np.random.default_rng(0).normal(size=400)
    >>> [round(float(s), 2) for s in slow_share(np.column_stack([noise, t]))]
    [0.02, 0.99]
    """
    n = rows.shape[0] // BLOCKS * BLOCKS
    departure = rows[:n] - rows[:n].mean(axis=0)
    blocks = departure.reshape(BLOCKS, n // BLOCKS, -1).mean(axis=1)
    total = (departure**2).sum(axis=0)
    slow: FloatArray = (blocks**2).sum(axis=0) * (n // BLOCKS)
    return np.where(total > 0, slow / np.where(total > 0, total, 1.0), 0.0)
