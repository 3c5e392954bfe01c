"""Fitting many series at once: what a training run keeps of each series.

Series of one length are stacked into the rows of a 2-D array and fitted, scored
and profiled in one vectorized pass; each series gets exactly what fitting it
alone gives.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from atalaia.core.detectors import ModelParams, fit_rows, score_columns, stack_by_length
from atalaia.core.drift import reference_profiles
from atalaia.core.series import Readings


@dataclass(frozen=True, slots=True)
class Fit:
    """A fitted series: its model, training metrics, reference profile, data hash."""

    params: ModelParams
    metrics: dict[str, float]
    reference: dict[str, Any]
    data_hash: str


def fit_series(
    algorithm: str, hyperparameters: Mapping[str, object], series: Sequence[Readings]
) -> list[Fit]:
    """Fit `algorithm` on each of `series` (validated training data), in order.

    `fit_seconds` is each series' share of the pass that fitted it.
    """
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


def data_hash(readings: Readings) -> str:
    """`sha256:` of the timestamps' then the values' float64 bytes."""
    digest = hashlib.sha256(readings.timestamps.tobytes())
    digest.update(readings.values.tobytes())
    return f"sha256:{digest.hexdigest()}"
