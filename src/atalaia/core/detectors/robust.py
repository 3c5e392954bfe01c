"""Robust detector: median and scaled median absolute deviation (MAD)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from atalaia.core.detectors.base import FloatArray, ModelParams, ParamColumns

# MAD × 1.4826 estimates σ for normal data, so thresholds read like z-scores.
MAD_TO_SIGMA = 1.4826
# MAD is zero when over half the readings are equal; fall back to the std then.
MIN_MAD = 1e-9


class Robust:
    """Flag readings more than `threshold_sigma` robust sigmas from the median.

    Outliers in the training data barely move the median and MAD, so a series
    trained on data with spikes keeps a tight band.

    >>> values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    >>> p = Robust().fit(values, {"threshold_sigma": 3.5})
    >>> p.center, round(p.scale, 4), p.threshold
    (3.0, 1.4826, 3.5)
    """

    name: ClassVar[str] = "robust"
    defaults: ClassVar[dict[str, float]] = {"threshold_sigma": 3.5}

    def fit(
        self, values: FloatArray, hyperparameters: Mapping[str, float]
    ) -> ModelParams:
        median, scale = median_and_sigma(values)
        return ModelParams(
            center=median,
            scale=scale,
            threshold=float(hyperparameters["threshold_sigma"]),
        )

    def fit_rows(
        self, rows: FloatArray, hyperparameters: Mapping[str, float]
    ) -> ParamColumns:
        ordered = np.sort(rows, axis=1)
        median = _middle(ordered)
        mad = _median_deviation(ordered, median)
        scale = MAD_TO_SIGMA * mad
        flat = ~(mad > MIN_MAD)
        if flat.any():
            scale[flat] = np.std(rows[flat], axis=1)
        return ParamColumns(
            center=median,
            scale=scale,
            threshold=np.full(len(rows), float(hyperparameters["threshold_sigma"])),
        )


def median_and_sigma(values: FloatArray) -> tuple[float, float]:
    """The median and the robust sigma (scaled MAD, or the std when the MAD is
    zero) of `values`.

    >>> median_and_sigma(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    (3.0, 1.4826)
    """
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return median, MAD_TO_SIGMA * mad if mad > MIN_MAD else float(np.std(values))


def _middle(ordered: FloatArray) -> FloatArray:
    """np.median of each row of `ordered`, whose rows are sorted."""
    k = ordered.shape[1] // 2
    if ordered.shape[1] % 2:
        return ordered[:, k].copy()
    return (ordered[:, k - 1] + ordered[:, k]) / 2


def _median_deviation(ordered: FloatArray, median: FloatArray) -> FloatArray:
    """np.median(|x - median|) of each sorted row, in linear time, to the bit.

    The k readings nearest the median are k consecutive ones of the sorted row,
    so the k-th smallest deviation is the narrowest reach of such a run.
    """
    n = ordered.shape[1]

    def kth_smallest(k: int) -> FloatArray:
        below = median[:, None] - ordered[:, : n - k + 1]
        above = ordered[:, k - 1 :] - median[:, None]
        reach: FloatArray = np.maximum(below, above).min(axis=1)
        return reach

    k = n // 2
    if n % 2:
        return kth_smallest(k + 1)
    return (kth_smallest(k) + kth_smallest(k + 1)) / 2
