"""Causal windowed features of a series: what an isolation forest sees of each
reading, in units of the training spread (sigma).

Of each reading: its residual from the expected value; the residual's first
difference; over the trailing `window` readings (its own included), the mean
of the residuals, their spread (standard deviation) and the range (max − min)
of the values themselves (a stuck sensor's is exactly 0). The spread and the
range are logarithms, floored at FLOOR sigmas, so that a window that barely
moves lies far below a noisy one. A reading's features depend on it and on the
readings before it only.

The first readings of a scored array lack readings before them: the first has
no difference, and the first `window − 1` no full window. Those features take
their `typical` (training median) value, so such a reading is judged on what
it shows (its residual, its difference); a shorter window would not do: the
spread of two or three readings is often near 0 and would look stuck.

    >>> values = np.array([0.0, 1.0, 3.0])
    >>> window_features(values, np.zeros(3), np.ones(3), 2, np.full(5, -1.0))
    array([[ 0.        , -1.        , -1.        , -1.        , -1.        ],
           [ 1.        ,  1.        ,  0.5       , -0.69314718,  0.        ],
           [ 3.        ,  2.        ,  2.        ,  0.        ,  0.69314718]])
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = npt.NDArray[np.float64]

FEATURES = ("residual", "difference", "mean", "log_spread", "log_range")
FLOOR = 1e-6  # sigmas: a spread or range below it is no spread at all


def window_features(
    values: FloatArray,
    expected: FloatArray,
    sigma: FloatArray,
    window: int,
    typical: FloatArray,
) -> FloatArray:
    """The features (readings × FEATURES) of consecutive readings, given the
    expected value and the spread at each."""
    residual = (values - expected) / sigma
    features = np.tile(typical, (residual.size, 1))
    features[:, 0] = residual
    features[1:, 1] = np.diff(residual)
    if residual.size >= window:
        full = slice(window - 1, None)
        recent = sliding_window_view(residual, window)
        features[full, 2] = recent.mean(axis=1)
        features[full, 3] = _log(recent.std(axis=1))
        value_range = np.ptp(sliding_window_view(values, window), axis=1)
        features[full, 4] = _log(value_range / sigma[full])
    return features


def _log(sigmas: FloatArray) -> FloatArray:
    logged: FloatArray = np.log(np.maximum(sigmas, FLOOR))
    return logged
