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
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors import changepoint, forecast
from atalaia.core.detectors.auto import NAME as AUTO
from atalaia.core.detectors.auto import Choice
from atalaia.core.detectors.bands import BAND_ALGORITHMS, fit_auto, fit_band, reasons_of
from atalaia.core.detectors.base import check_hyperparameters
from atalaia.core.detectors.catalog import resolve_hyperparameters
from atalaia.core.detectors.forest import ISOLATED, Forest, fit_forest
from atalaia.core.detectors.forest import NAME as ISOLATION_FOREST
from atalaia.core.detectors.multivariate import (
    Multivariate,
    SensorParams,
    SensorReadings,
)
from atalaia.core.detectors.phases import BandPools, PhaseBand
from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from atalaia.core.detectors.streaming import baselines
from atalaia.core.detectors.stuck import guard, stuck_after
from atalaia.core.explanations import Reason
from atalaia.core.series import Readings, check_readings
from atalaia.errors import UnknownAlgorithm

__all__ = [
    "ALGORITHMS",
    "MATRIX_ALGORITHMS",
    "SENSOR_ALGORITHMS",
    "AutoModel",
    "BandModel",
    "ForestModel",
    "Model",
    "Result",
    "SensorModel",
    "StreamModel",
    "fit",
]

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
    # `changepoint`: the latest change detected at or before each reading, its
    # start (epoch seconds) and size (the series' units), NaN before any, and
    # whether it was absorbed (its level is the normal one now); None for the
    # other families.
    change_start: FloatArray | None = None
    change_size: FloatArray | None = None
    change_absorbed: npt.NDArray[np.bool_] | None = None


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
        expected, width = self.band.at(readings.timestamps)
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
        outside = reasons_of(self.forest.band)
        reason = np.where(v.isolated, ISOLATED, outside)
        return _explained(readings.values, v.score, v.expected, v.half_width, reason)


def _explained(
    values: FloatArray,
    score: FloatArray,
    expected: FloatArray,
    half_width: FloatArray,
    reason: str | npt.NDArray[np.str_],
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


@dataclass(frozen=True, slots=True)
class AutoModel:
    """The family `auto` chose, fitted, and why it chose it; for one series,
    with a stuck guard (`stuck_after`: the longest run of one value allowed,
    `core.detectors.stuck`; 0: none)."""

    chosen: Model
    choice: Choice
    algorithm: str = "auto"
    hyperparameters: Mapping[str, float] = field(default_factory=dict)
    stuck_after: int = 0

    def score(self, timestamps: object, values: object) -> Result:
        """Score readings (the guard counts runs in time order among them)."""
        matrix = np.asarray(values, dtype=np.float64)
        if matrix.ndim == 2 and matrix.shape[1] == 1:  # one axis: a series
            matrix = matrix[:, 0]
        result = self.chosen.score(timestamps, matrix)
        if not self.stuck_after:
            return result
        readings = Readings.of(timestamps, matrix)
        score, stuck = guard(
            readings.timestamps, readings.values, result.anomaly_score,
            self.stuck_after,
        )  # fmt: skip
        anomaly = score > 1.0
        side = np.where(readings.values > result.expected, "above", "below")
        return replace(
            result,
            anomaly_score=score,
            anomaly=anomaly,
            direction=np.where(anomaly, side, ""),
            reason=np.where(stuck, Reason.STUCK.value, result.reason),
        )


def _fit_auto_model(
    algorithm: str, timestamps: object, values: object, given: Mapping[str, float]
) -> Model:
    """Several axes (2-D values) are modelled together; one series gets the band
    family its data favours (`core.detectors.auto`)."""
    resolve_hyperparameters(algorithm, given)  # it takes none
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 2 and matrix.shape[1] > 1:
        sensor = _fit_sensor_model(_MULTIVARIATE.name, timestamps, matrix, {})
        why = "several axes: modelled together, so a break between them shows"
        return AutoModel(sensor, Choice(_MULTIVARIATE.name, why, {}))
    if matrix.ndim == 2 and matrix.shape[1] == 1:
        matrix = matrix[:, 0]
    readings = Readings.of(timestamps, matrix)
    check_readings(readings)
    choice, resolved, band = fit_auto(readings)
    guard = stuck_after(readings.values)
    return AutoModel(
        BandModel(choice.algorithm, resolved, band), choice, stuck_after=guard
    )


def _fit_forest_model(
    _algorithm: str, timestamps: object, values: object, given: Mapping[str, float]
) -> Model:
    readings = Readings.of(timestamps, values)
    check_readings(readings)
    return ForestModel(fit_forest(readings.timestamps, readings.values, given))


def _fit_band_model(
    algorithm: str, timestamps: object, values: object, given: Mapping[str, float]
) -> Model:
    readings = Readings.of(timestamps, values)
    check_readings(readings)
    resolved, band = fit_band(algorithm, readings, given)
    return BandModel(algorithm, resolved, band)


@dataclass(frozen=True, slots=True)
class SensorModel:
    """A fitted model of a sensor's axes together (values: readings × axes)."""

    algorithm: str
    hyperparameters: Mapping[str, float]
    params: SensorParams

    def score(self, timestamps: object, values: object) -> Result:
        """Score readings in time order: the model's window runs over them."""
        s = self.params.score(SensorReadings.of(timestamps, values).values)
        return Result(
            s.score, s.anomaly, s.expected, s.lower, s.upper, s.direction, s.reason,
            s.contributions,
        )  # fmt: skip


_MULTIVARIATE = Multivariate()


def _fit_sensor_model(
    algorithm: str, timestamps: object, values: object, given: Mapping[str, float]
) -> Model:
    readings = SensorReadings.of(timestamps, values)
    resolved = _MULTIVARIATE.check(given)
    params = _MULTIVARIATE.fit(readings.values, resolved)
    return SensorModel(algorithm, resolved, params)


@dataclass(frozen=True, slots=True)
class StreamModel:
    """A streaming model of one series (`forecast`, `changepoint`): its
    baseline band, its params and the state its training readings left (both
    columns of one entry, `to_arrays` for storage); scoring advances a copy of
    that state through the readings in time order, one `advance_one` each,
    their baseline found at once (`step_one` and the vectorized `step` give
    the same numbers)."""

    algorithm: str
    hyperparameters: Mapping[str, float]
    band: PhaseBand
    params: forecast.ForecastParams | changepoint.ChangeParams
    state: forecast.ForecastState | changepoint.ChangeState
    reasons: tuple[str, ...]

    def score(self, timestamps: object, values: object) -> Result:
        """Score consecutive readings (timestamps strictly increasing)."""
        readings = Readings.of(timestamps, values)
        check_readings(readings)
        family = STREAM_FAMILIES[self.algorithm]
        params = family.params.row(self.params.entry(0))
        state = family.state.row(self.state.entry(0))  # a copy: scoring is pure
        advance_one, tracked = family.advance_one, family.tracks_changes
        answers = np.empty((len(readings), 5))
        change = np.full((len(readings), 3), np.nan)
        rows = np.zeros(len(readings), np.int64)
        ts = readings.timestamps
        outlier = np.full(rows.size, self.params.outlier[0])
        bands = BandPools.of([self.band])
        columns = baselines(bands, outlier, rows, ts, readings.values)
        at = zip(ts.tolist(), *(c.tolist() for c in columns), strict=True)
        for i, (t, e, s, z) in enumerate(at):
            if tracked:
                answers[i], change[i] = advance_one(params, state, t, (e, s, z))
            else:
                answers[i] = advance_one(params, state, t, (e, s, z))
        score, expected, half = answers[:, 0], answers[:, 1], answers[:, 2]
        anomaly = score > 1.0
        reason = np.array(self.reasons)[answers[:, 4].astype(np.int64)]
        return Result(
            score, anomaly, expected, expected - half, expected + half,
            np.where(anomaly, np.where(answers[:, 3] > 0, "above", "below"), ""),
            np.where(anomaly, reason, ""),
            change_start=change[:, 0] if tracked else None,
            change_size=change[:, 1] if tracked else None,
            change_absorbed=change[:, 2] > 0 if tracked else None,
        )  # fmt: skip


def _fit_stream_model(
    algorithm: str, timestamps: object, values: object, given: Mapping[str, float]
) -> Model:
    family = STREAM_FAMILIES[algorithm]
    resolved = check_hyperparameters(algorithm, family.defaults, given, family.optional)
    readings = Readings.of(timestamps, values)
    check_readings(readings)
    band, params, state = family.fit(readings, resolved)
    reasons = tuple(r or reasons_of(band) for r in family.reasons)
    return StreamModel(algorithm, resolved, band, params, state, reasons)


Fitter = Callable[[str, object, object, Mapping[str, float]], Model]
# Algorithm name → how its models are fitted.
FAMILIES: dict[str, Fitter] = dict.fromkeys(BAND_ALGORITHMS, _fit_band_model)
FAMILIES[_MULTIVARIATE.name] = _fit_sensor_model
FAMILIES[AUTO] = _fit_auto_model
FAMILIES[ISOLATION_FOREST] = _fit_forest_model
FAMILIES |= dict.fromkeys(STREAM_FAMILIES, _fit_stream_model)
# The families that model a sensor's axes together (values 2-D).
SENSOR_ALGORITHMS = frozenset({_MULTIVARIATE.name})
# The families that take a sensor's axes whole: `auto` models several together.
MATRIX_ALGORITHMS = SENSOR_ALGORITHMS | {AUTO}
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
