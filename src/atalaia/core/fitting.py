"""Fitting many series at once: what a training run keeps of each series.

For the location/scale families, series of one length are stacked into the rows
of a 2-D array and fitted, scored and profiled in one vectorized pass; each
series gets exactly what fitting it alone gives. A seasonal series is fitted on
its own (its period and phases are its own), by the library's code.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors import ModelParams, fit_rows, score_columns, stack_by_length
from atalaia.core.detectors.auto import NAME as AUTO
from atalaia.core.detectors.bands import auto_band_fit, band_fit
from atalaia.core.detectors.catalog import (
    DETECTORS,
    MULTIVARIATE,
    resolve_hyperparameters,
)
from atalaia.core.detectors.forest import NAME as FOREST
from atalaia.core.detectors.forest import fit_forest
from atalaia.core.detectors.phases import BandFit, PhaseBand
from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from atalaia.core.detectors.stuck import stuck_after
from atalaia.core.drift import reference_profiles
from atalaia.core.sensors import SensorData, StoredSensor
from atalaia.core.series import Readings


@dataclass(frozen=True, slots=True)
class Fit:
    """A fitted series: its model, training metrics, reference profile, data hash.

    A seasonal model's `params` hold its base value, its typical spread and its
    threshold, and `band` its phases; a flat model has no `band`."""

    params: ModelParams
    metrics: dict[str, float | str]
    reference: dict[str, Any]
    data_hash: str
    band: PhaseBand | None = None
    algorithm: str | None = None  # the family fitted, when `auto` chose it
    sensor: StoredSensor | None = None  # a sensor's model
    artifact: bytes | None = None  # a heavy model, kept in the artifact store
    # The longest run of one value allowed (`core.detectors.stuck`); 0: no guard.
    stuck_after: int = 0
    # A streaming model's params and its state after training, packed
    # (`core.detectors.stream_families`); None: not a streaming model.
    stream: bytes | None = None


def fit_series(
    algorithm: str, hyperparameters: Mapping[str, object], series: Sequence[Readings]
) -> list[Fit]:
    """Fit `algorithm` on each of `series` (validated training data), in order.

    `fit_seconds` is each series' share of the pass that fitted it.
    """
    if algorithm == AUTO:
        return [_fit_auto(r) for r in series]
    if algorithm == FOREST:
        return [_fit_forest(hyperparameters, r) for r in series]
    if algorithm in STREAM_FAMILIES:
        return [_fit_stream(algorithm, hyperparameters, r) for r in series]
    if algorithm not in DETECTORS:
        return [_fit_phased(algorithm, hyperparameters, r) for r in series]
    fits: list[Fit | None] = [None] * len(series)
    for stack in stack_by_length([readings.values for readings in series]):
        started = time.perf_counter()
        columns = fit_rows(algorithm, stack.rows, hyperparameters)
        seconds = (time.perf_counter() - started) / len(columns)
        _, flagged = score_columns(
            columns.center[:, None],
            columns.scale[:, None],
            columns.threshold[:, None],
            stack.rows,
        )
        rates = flagged.mean(axis=1).tolist()
        profiles = reference_profiles(stack.rows)
        points = float(stack.rows.shape[1])
        for k, i in enumerate(stack.members):
            metrics = {
                "training_points": points,
                "training_anomaly_rate": rates[k],
                "fit_seconds": seconds,
            }
            fits[i] = Fit(columns.params(k), metrics, profiles[k], data_hash(series[i]))
    return [fit for fit in fits if fit is not None]


def _fit_auto(readings: Readings) -> Fit:
    """The family `auto` chooses, fitted, with its stuck guard; its choice and
    the guard's limit in the metrics."""
    started = time.perf_counter()
    choice, resolved, fitted = auto_band_fit(readings)
    limit = stuck_after(readings.values)
    fit = _fitted(readings, resolved, fitted, time.perf_counter() - started)
    fit.metrics.update(choice.metrics())
    fit.metrics["stuck_after"] = float(limit)
    return replace(fit, algorithm=choice.algorithm, stuck_after=limit)


def _fit_phased(algorithm: str, given: Mapping[str, object], readings: Readings) -> Fit:
    """A band fit on its own (seasonal): its band, and params summing it up."""
    started = time.perf_counter()
    resolved, fitted = band_fit(algorithm, readings, given)
    return _fitted(readings, resolved, fitted, time.perf_counter() - started)


def _fitted(
    readings: Readings, resolved: Mapping[str, float], fitted: BandFit, seconds: float
) -> Fit:
    """What a training run keeps of a band fitted in `seconds`."""
    band = fitted.band
    expected, width = band.at(readings.timestamps, fitted.phasing)
    flagged = np.abs(readings.values - expected) > width
    return _as_fit(readings, band, resolved["threshold_sigma"], flagged, seconds)


def _fit_forest(given: Mapping[str, object], readings: Readings) -> Fit:
    """An isolation forest: its trees go to the artifact store, its band (the
    explanation's, and the answer when the trees cannot be read) to the
    registry."""
    started = time.perf_counter()
    fitted = fit_forest(readings.timestamps, readings.values, given)
    seconds = time.perf_counter() - started
    flagged = fitted.score(readings.timestamps, readings.values).score > 1.0
    threshold = fitted.hyperparameters["threshold_sigma"]
    fit = _as_fit(readings, fitted.band, threshold, flagged, seconds)
    fit.metrics["model_bytes"] = float(fitted.nbytes)
    return replace(fit, artifact=fitted.to_bytes())


def _fit_stream(algorithm: str, given: Mapping[str, object], readings: Readings) -> Fit:
    """A streaming model: its baseline band (the stateless band, answering
    while its state is cold) and, packed, its params and its state after the
    training readings."""
    family = STREAM_FAMILIES[algorithm]
    started = time.perf_counter()
    resolved = resolve_hyperparameters(algorithm, given)
    band, params, state = family.fit(readings, resolved)
    seconds = time.perf_counter() - started
    expected, width = band.at(readings.timestamps)
    flagged = np.abs(readings.values - expected) > width
    fit = _as_fit(readings, band, resolved["outlier_sigma"], flagged, seconds)
    until = float(readings.timestamps[-1])
    return replace(fit, stream=family.pack(params, state, until))


def _as_fit(
    readings: Readings,
    band: PhaseBand,
    threshold: float,
    flagged: npt.NDArray[np.bool_],
    seconds: float,
) -> Fit:
    """What a training run keeps of a band `threshold` sigmas wide fitted in
    `seconds` (its `flagged` training readings): params summing it up, and
    its phases unless it has one."""
    metrics: dict[str, float | str] = {
        "training_points": float(len(readings)),
        "training_anomaly_rate": float(flagged.mean()),
        "fit_seconds": seconds,
        "period_s": band.period if band.phases > 1 else 0.0,
        "phases": float(band.phases),
    }
    return Fit(
        ModelParams(band.base, float(np.median(band.width)) / threshold, threshold),
        metrics,
        reference_profiles(readings.values[None, :])[0],
        data_hash(readings),
        band if band.phases > 1 else None,
    )


def fit_sensors(
    hyperparameters: Mapping[str, object], sensors: Sequence[SensorData]
) -> list[Fit]:
    """Fit `multivariate` on each sensor's axes, in order."""
    resolved = MULTIVARIATE.check(hyperparameters)
    fits = []
    for data in sensors:
        started = time.perf_counter()
        params = MULTIVARIATE.fit(data.values, resolved)
        seconds = time.perf_counter() - started
        flagged = params.score(data.values).anomaly
        modelled = [data.axes[i] for i in params.modelled.tolist()]
        metrics: dict[str, float | str] = {
            "training_points": float(len(data)),
            "training_anomaly_rate": float(flagged.mean()),
            "fit_seconds": seconds,
            "axes": ",".join(data.axes),
            "modelled_axes": ",".join(modelled),
        }
        digest = hashlib.sha256(data.timestamps.tobytes())
        digest.update(data.values.tobytes())
        fits.append(
            Fit(
                ModelParams(0.0, 1.0, resolved["threshold_sigma"]),
                metrics,
                {},
                f"sha256:{digest.hexdigest()}",
                sensor=StoredSensor(data.axes, params),
            )
        )
    return fits


def data_hash(readings: Readings) -> str:
    """`sha256:` of the timestamps' then the values' float64 bytes."""
    digest = hashlib.sha256(readings.timestamps.tobytes())
    digest.update(readings.values.tobytes())
    return f"sha256:{digest.hexdigest()}"
