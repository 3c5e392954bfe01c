"""The detectors as a library: fit a model on a series, score readings with it.

    >>> import numpy as np
    >>> from atalaia import detection
    >>> t = np.arange(0.0, 14 * 86400.0, 600.0)
    >>> v = 0.3 + 0.1 * np.sin(2 * np.pi * t / 86400.0)
    >>> v += np.random.default_rng(0).normal(0, 0.01, t.size)
    >>> model = detection.fit("seasonal", t, v)
    >>> result = model.score(np.array([t[-1] + 600.0]), np.array([0.5]))
    >>> bool(result.anomaly[0]), round(float(result.expected[0]), 2)
    (True, 0.3)

`timestamps` are epoch seconds, `values` float64 (2-D, one column per axis,
for the sensor families). Scoring is causal: a reading's score depends on the
fitted model and on the readings up to it. A score above 1 is an anomaly at
the model's threshold; larger is more anomalous. This is the code the training
jobs and the inference table run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.bands import BAND_ALGORITHMS, fit_band, reasons_of
from atalaia.core.detectors.forest import ISOLATED, Forest, fit_forest
from atalaia.core.detectors.forest import NAME as ISOLATION_FOREST
from atalaia.core.detectors.phases import BandPools, PhaseBand
from atalaia.core.series import Readings, check_readings
from atalaia.errors import UnknownAlgorithm

__all__ = ["ALGORITHMS", "BandModel", "ForestModel", "Model", "Result", "fit"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Result:
    """Per reading: the score, the verdict and its explanation."""

    anomaly_score: FloatArray
    anomaly: npt.NDArray[np.bool_]
    expected: FloatArray  # 2-D (readings × axes) for the sensor families
    lower: FloatArray
    upper: FloatArray
    direction: npt.NDArray[np.str_]  # "above" or "below" the band, "" within
    reason: npt.NDArray[np.str_]  # why an anomaly is one; "" for the others
    # Sensor families: each axis's share of the score (readings × axes, rows
    # summing to 1); None for the series families.
    contributions: FloatArray | None = None


class Model(Protocol):
    """A fitted model: what it is, and how it scores readings."""

    @property
    def algorithm(self) -> str: ...

    @property
    def hyperparameters(self) -> Mapping[str, float]: ...

    def score(self, timestamps: object, values: object) -> Result: ...


@dataclass(frozen=True, slots=True)
class BandModel:
    """A fitted model of one series whose verdict is a band (flat or seasonal)."""

    algorithm: str
    hyperparameters: Mapping[str, float]
    band: PhaseBand

    def score(self, timestamps: object, values: object) -> Result:
        """Score readings (timestamps in epoch seconds, any order)."""
        readings = Readings.of(timestamps, values)
        rows = np.zeros(len(readings), np.int64)
        expected, width = BandPools.of([self.band]).at(rows, readings.timestamps)
        score = np.abs(readings.values - expected) / width
        return _explained(
            readings.values, score, expected, width, reasons_of(self.band)
        )


@dataclass(frozen=True, slots=True)
class ForestModel:
    """A fitted isolation forest of one series (`isolation_forest`): stored
    without pickle (`to_bytes`, `from_bytes`), `nbytes` in memory."""

    forest: Forest
    algorithm: str = ISOLATION_FOREST

    @property
    def hyperparameters(self) -> Mapping[str, float]:
        return self.forest.hyperparameters

    @property
    def nbytes(self) -> int:
        return self.forest.nbytes

    def to_bytes(self) -> bytes:
        return self.forest.to_bytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ForestModel:
        return cls(Forest.from_bytes(blob))

    def score(self, timestamps: object, values: object) -> Result:
        """Score consecutive readings (timestamps strictly increasing)."""
        readings = Readings.of(timestamps, values)
        check_readings(readings)
        v = self.forest.score(readings.timestamps, readings.values)
        return _explained(readings.values, v.score, v.expected, v.half_width, ISOLATED)


def _explained(
    values: FloatArray,
    score: FloatArray,
    expected: FloatArray,
    half_width: FloatArray,
    reason: str,
) -> Result:
    """The verdicts of scores (above 1: an anomaly) and their explanation."""
    anomaly = score > 1.0
    direction = np.where(values > expected, "above", "below")
    return Result(
        anomaly_score=score,
        anomaly=anomaly,
        expected=expected,
        lower=expected - half_width,
        upper=expected + half_width,
        direction=np.where(anomaly, direction, ""),
        reason=np.where(anomaly, reason, ""),
    )


def _fit_band_model(
    algorithm: str, timestamps: object, values: object, given: Mapping[str, float]
) -> Model:
    readings = Readings.of(timestamps, values)
    check_readings(readings)
    resolved, band = fit_band(algorithm, readings, given)
    return BandModel(algorithm, resolved, band)


def _fit_forest_model(
    _algorithm: str, timestamps: object, values: object, given: Mapping[str, float]
) -> Model:
    readings = Readings.of(timestamps, values)
    check_readings(readings)
    return ForestModel(fit_forest(readings.timestamps, readings.values, given))


Fitter = Callable[[str, object, object, Mapping[str, float]], Model]
# Algorithm name → how its models are fitted.
FAMILIES: dict[str, Fitter] = dict.fromkeys(BAND_ALGORITHMS, _fit_band_model)
FAMILIES[ISOLATION_FOREST] = _fit_forest_model
ALGORITHMS: tuple[str, ...] = tuple(sorted(FAMILIES))


def fit(
    algorithm: str, timestamps: object, values: object, **hyperparameters: float
) -> Model:
    """Fit `algorithm` (one of ALGORITHMS) on readings, timestamps strictly
    increasing; unknown names or bad hyperparameters raise
    InvalidHyperparameters, bad readings InvalidSeries."""
    fitter = FAMILIES.get(algorithm)
    if fitter is None:
        raise UnknownAlgorithm(algorithm, list(ALGORITHMS))
    return fitter(algorithm, timestamps, values, hyperparameters)
