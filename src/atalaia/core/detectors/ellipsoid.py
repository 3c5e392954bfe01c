"""The ellipsoid in which a statistic's normal rows lie: a robust centre and
covariance, and a threshold extrapolated from the training rows' tail.

The multivariate detector fits one for a sensor's readings and one for the
means of its runs of readings (see atalaia.core.detectors.multivariate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.robust import median_and_sigma
from atalaia.core.series import MIN_STD

KEEP_SHARE = 0.9  # of training rows the robust moments are taken over
TRIM_STEPS = 20  # at most, re-choosing the nearest rows
RIDGE = 1e-3  # of each axis' robust variance, added to the covariance's diagonal
TAIL_LEVEL = 0.9  # the training quantile above which the tail is fitted


@dataclass(frozen=True, slots=True)
class Ellipsoid:
    """Where a statistic's rows are normal: (x − center)ᵀ precision (x − center)
    ≤ limit."""

    center: FloatArray
    precision: FloatArray
    limit: float

    @classmethod
    def fit(cls, rows: FloatArray, log_tail: float) -> Ellipsoid:
        """The robust moments of `rows`, and the limit their squared distances
        exceed with probability e^log_tail (`tail_limit`)."""
        center, covariance = robust_moments(rows)
        precision = np.linalg.inv(covariance).astype(np.float64)
        ellipsoid = cls(center, precision, 1.0)
        limit = tail_limit(ellipsoid.distances(rows)[1], log_tail)
        return cls(center, precision, limit)

    def distances(self, rows: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per row: precision × departure (the axes' conditional departures times
        their conditional precisions) and the squared distance."""
        departure = rows - self.center
        # Sums of elementwise products, axis by axis in a fixed order: a row's
        # answer then does not depend on the rows scored with it, to the bit
        # (a matrix product's blocking would).
        pulled = np.zeros_like(departure)
        for axis, row in enumerate(self.precision):
            pulled += departure[:, axis : axis + 1] * row
        squared = np.zeros(rows.shape[0])
        for axis in range(departure.shape[1]):
            squared += pulled[:, axis] * departure[:, axis]
        return pulled, squared

    def shrunk(self, rows: FloatArray, squared: FloatArray) -> FloatArray:
        """Each row's departure from the centre, shrunk onto the surface when
        beyond it (`squared`: the rows' squared distances)."""
        ratio = np.divide(
            self.limit, squared, out=np.ones_like(squared), where=squared > 0
        )
        return (rows - self.center) * np.sqrt(np.minimum(ratio, 1.0))[:, None]


def robust_moments(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and covariance (ridged) of the KEEP_SHARE of `rows` nearest the
    centre: first by each axis' robust z-score, then, until the choice
    settles, by the Mahalanobis distance under the previous choice's moments.

    >>> normal = np.random.default_rng(0).normal(size=(95, 1))
    >>> center, covariance = robust_moments(np.r_[normal, np.full((5, 1), 1e3)])
    >>> bool(abs(center[0]) < 0.3 and covariance[0, 0] < 1)
    True
    """
    n, d = rows.shape
    count = max(math.ceil(KEEP_SHARE * n), d + 1)
    centre_and_sigma = [median_and_sigma(column) for column in rows.T]
    center = np.array([c for c, _ in centre_and_sigma])
    sigma = np.maximum([s for _, s in centre_and_sigma], MIN_STD)
    ridge = np.diag(RIDGE * sigma**2)
    distance = (((rows - center) / sigma) ** 2).sum(axis=1)
    nearest = np.argsort(distance, kind="stable")[:count]
    for _ in range(TRIM_STEPS):
        center = rows[nearest].mean(axis=0)
        covariance = np.cov(rows[nearest], rowvar=False).reshape(d, d) + ridge
        departure = rows - center
        pulled = departure @ np.linalg.inv(covariance)
        distance = np.einsum("ij,ij->i", pulled, departure)
        chosen = np.argsort(distance, kind="stable")[:count]
        if np.array_equal(np.sort(chosen), np.sort(nearest)):
            break
        nearest = chosen
    return center, covariance


def trailing_means(rows: FloatArray, window: int) -> FloatArray:
    """The mean of each run of `window` consecutive rows, one per full run.

    >>> trailing_means(np.arange(5.0)[:, None], 2)[:, 0].tolist()
    [0.5, 1.5, 2.5, 3.5]
    """
    runs = rows.shape[0] - window + 1
    total = np.zeros((runs, rows.shape[1]))
    for offset in range(window):  # in a fixed order: each run's sum to the bit
        total += rows[offset : offset + runs]
    means: FloatArray = total / window
    return means


def log_normal_tail(sigmas: float) -> float:
    """ln P(|z| > sigmas) for a standard normal z, also far past float64's reach.

    >>> round(log_normal_tail(4.0), 3), round(log_normal_tail(100.0), 1)
    (-9.667, -5004.8)
    """
    x = sigmas / math.sqrt(2.0)
    tail = math.erfc(x)
    if tail > 0:
        return math.log(tail)
    return -x * x - math.log(x * math.sqrt(math.pi))  # erfc's asymptote


def tail_limit(statistic: FloatArray, log_tail: float) -> float:
    """The value `statistic` exceeds with probability e^log_tail, its peaks over
    the TAIL_LEVEL quantile taken as exponential (from quantiles, so that a few
    anomalies in training barely move it).

    >>> x = np.random.default_rng(0).exponential(2.0, 20_000)
    >>> round(tail_limit(x, math.log(1e-4)) / (2.0 * math.log(1e4)), 1)
    1.0
    """
    level = float(np.quantile(statistic, TAIL_LEVEL))
    excess = statistic[statistic > level] - level
    scale = float(np.median(excess)) / math.log(2.0) if excess.size else 0.0
    limit = level + scale * (math.log(1.0 - TAIL_LEVEL) - log_tail)
    return max(limit, np.finfo(np.float64).tiny)  # positive, to divide by
