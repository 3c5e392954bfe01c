"""The detector contract and the columnar scoring shared by every location/scale model.

Every detector reduces a series to three numbers (centre, scale, threshold), so the
whole fleet is scored in one numpy pass over parameter columns, whatever the mix
of algorithms; and many series of one length are fitted in one pass over the rows
of a 2-D array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from atalaia.errors import InvalidHyperparameters

# Every hyperparameter is a number in (0, MAX_HYPERPARAMETER]: a threshold of a
# million standard deviations already flags nothing.
MAX_HYPERPARAMETER = 1e6

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ModelParams:
    """A fitted model: a reading is anomalous when |x − centre| / scale > threshold."""

    center: float
    scale: float
    threshold: float

    def as_dict(self) -> dict[str, float]:
        return {"center": self.center, "scale": self.scale, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> ModelParams:
        return cls(
            float(data["center"]), float(data["scale"]), float(data["threshold"])
        )

    def band(self) -> tuple[float, float]:
        """The normal band [lower, upper] of the readings."""
        half = self.threshold * self.scale
        return self.center - half, self.center + half


@dataclass(frozen=True, slots=True)
class ParamColumns:
    """Fitted models of many series, one entry per series in each column."""

    center: FloatArray
    scale: FloatArray
    threshold: FloatArray

    def __len__(self) -> int:
        return int(self.center.size)

    def params(self, i: int) -> ModelParams:
        return ModelParams(
            float(self.center[i]), float(self.scale[i]), float(self.threshold[i])
        )


class Detector(Protocol):
    """Fit series into ModelParams; hyperparameters are validated first.

    `fit` is the plain reference for one series; `fit_rows` fits every row of a
    2-D array (one series per row) in one vectorized pass and gives, row for row,
    exactly what `fit` gives.
    """

    name: ClassVar[str]
    defaults: ClassVar[dict[str, float]]

    def fit(
        self, values: FloatArray, hyperparameters: Mapping[str, float]
    ) -> ModelParams: ...

    def fit_rows(
        self, rows: FloatArray, hyperparameters: Mapping[str, float]
    ) -> ParamColumns: ...


@dataclass(frozen=True, slots=True)
class Stack:
    """Series of one length as the rows of a 2-D array; `members` are their indexes."""

    rows: FloatArray
    members: list[int]


def stack_by_length(series: Sequence[FloatArray]) -> list[Stack]:
    """Group 1-D arrays by length into 2-D stacks, so each group is fitted at once.

    >>> [(s.rows.shape, s.members) for s in stack_by_length(
    ...     [np.zeros(3), np.zeros(2), np.ones(3)])]
    [((2, 3), [0, 2]), ((1, 2), [1])]
    """
    by_length: dict[int, list[int]] = {}
    for i, values in enumerate(series):
        by_length.setdefault(values.size, []).append(i)
    return [
        Stack(np.stack([series[i] for i in members]), members)
        for members in by_length.values()
    ]


# The smallest spread a model scores with: a series that barely varies still
# scores finite distances, and a flat one scores 0 at its centre, not NaN.
MIN_SCALE = 1e-12
# A positive threshold times MIN_SCALE can still underflow to 0.
MIN_WIDTH = 1e-300


def band_width(scale: FloatArray, threshold: FloatArray) -> FloatArray:
    """Half-width of the normal band, scale × threshold, clamped to be positive.

    >>> band_width(np.array([2.0, 0.0]), np.array([3.0, 3.0])).tolist()
    [6.0, 3e-12]
    """
    return np.maximum(np.maximum(scale, MIN_SCALE) * threshold, MIN_WIDTH)


def score_readings(
    center: FloatArray, width: FloatArray, values: FloatArray
) -> tuple[FloatArray, BoolArray]:
    """The scoring rule: distance from the centre in band half-widths; a score
    above 1 is an anomaly. An infinite width scores 0 (nothing is known).

    >>> s, a = score_readings(np.array([0.0]), np.array([3.0]), np.array([6.0]))
    >>> float(s[0]), bool(a[0])
    (2.0, True)
    """
    score = np.abs(values - center) / width
    return score, score > 1.0


def score_reading(center: float, width: float, value: float) -> float:
    """`score_readings` for one reading, in plain floats (the single-reading path,
    where a numpy call per request would cost more than the arithmetic).

    >>> score_reading(0.0, 3.0, -6.0)
    2.0
    """
    return abs(value - center) / width


def score_columns(
    center: FloatArray, scale: FloatArray, threshold: FloatArray, values: FloatArray
) -> tuple[FloatArray, BoolArray]:
    """Score readings against aligned parameter columns in one vectorized pass.

    >>> s, a = score_columns(np.array([0.0]), np.array([1.0]), np.array([3.0]),
    ...                      np.array([6.0]))
    >>> float(s[0]), bool(a[0])
    (2.0, True)
    """
    return score_readings(center, band_width(scale, threshold), values)


def check_hyperparameters(
    algorithm: str,
    defaults: Mapping[str, float],
    given: Mapping[str, object],
    optional: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Merge `given` over `defaults`; reject names neither there nor `optional`
    (known, without a default) and numbers outside (0, MAX_HYPERPARAMETER]."""
    unknown = sorted(set(given) - set(defaults) - optional)
    if unknown:
        raise InvalidHyperparameters(
            f"{algorithm} has no hyperparameter {', '.join(unknown)}; "
            f"known: {', '.join(sorted({*defaults, *optional}))}",
            rule="hyperparameters_known",
        )
    merged = dict(defaults)
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidHyperparameters(
                f"{algorithm}.{name} must be a number", rule="hyperparameters_numeric"
            )
        try:
            number = float(value)
        except OverflowError:  # an int beyond float64
            number = math.inf
        if not (math.isfinite(number) and number > 0):
            raise InvalidHyperparameters(
                f"{algorithm}.{name} must be a finite number > 0, got {number!r}",
                rule="hyperparameters_positive",
            )
        if number > MAX_HYPERPARAMETER:
            raise InvalidHyperparameters(
                f"{algorithm}.{name} must be at most {MAX_HYPERPARAMETER:g}, "
                f"got {number:g}",
                rule="hyperparameters_range",
            )
        merged[name] = number
    return merged
