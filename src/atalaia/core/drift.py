"""Reference profiles of training data and the data-drift decision.

Data drift compares recent readings with the training data's profile using the
population stability index (PSI) over the training deciles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from atalaia.core.series import FloatArray

PROFILE_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_QUANTILE_NAMES = [f"p{round(q * 100)}" for q in PROFILE_QUANTILES]
_DECILES = np.linspace(0.1, 0.9, 9)
_EVERY_QUANTILE = np.concatenate([PROFILE_QUANTILES, _DECILES])  # in one pass
PSI_DRIFT = 0.2  # the customary "significant shift" level
MIN_RECENT_POINTS = 100
_EPS = 1e-4


def reference_profile(values: FloatArray) -> dict[str, Any]:
    """Summary statistics of training data, kept with the model for drift checks."""
    return reference_profiles(values[np.newaxis, :])[0]


def reference_profiles(rows: FloatArray) -> list[dict[str, Any]]:
    """`reference_profile` of every row of `rows` (one series per row), at once."""
    ordered = np.sort(rows, axis=1)  # the quantiles of sorted rows come cheap
    every = np.quantile(ordered, _EVERY_QUANTILE, axis=1).T
    columns = zip(
        np.mean(rows, axis=1).tolist(),
        np.std(rows, axis=1).tolist(),
        ordered[:, 0].tolist(),
        ordered[:, -1].tolist(),
        every[:, : len(PROFILE_QUANTILES)].tolist(),
        every[:, len(PROFILE_QUANTILES) :].tolist(),
        strict=True,
    )
    return [
        {
            "count": rows.shape[1],
            "mean": mean,
            "std": std,
            "min": low,
            "max": high,
            "quantiles": dict(zip(_QUANTILE_NAMES, qs, strict=True)),
            "decile_edges": edges,
        }
        for mean, std, low, high, qs, edges in columns
    ]


@dataclass(frozen=True, slots=True)
class DataDrift:
    psi: float
    mean_shift_sigma: float
    recent_points: int
    detected: bool


def population_stability(reference: dict[str, Any], recent: FloatArray) -> float:
    """PSI of `recent` against the reference's ten equal-mass bins."""
    edges = np.asarray(reference["decile_edges"], dtype=np.float64)
    counts = np.bincount(np.searchsorted(edges, recent, side="right"), minlength=10)
    actual = np.maximum(counts / max(recent.size, 1), _EPS)
    expected = np.full(10, 0.1)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def detect_data_drift(reference: dict[str, Any], recent: FloatArray) -> DataDrift:
    """Decide whether `recent` readings drifted from the training reference."""
    if recent.size < MIN_RECENT_POINTS:
        return DataDrift(0.0, 0.0, int(recent.size), detected=False)
    psi = population_stability(reference, recent)
    shift = abs(float(np.mean(recent)) - reference["mean"]) / max(
        reference["std"], _EPS
    )
    return DataDrift(psi, shift, int(recent.size), detected=psi > PSI_DRIFT)


MIN_FEEDBACK_LABELS = 10
FALSE_ALARM_DRIFT = 0.5


@dataclass(frozen=True, slots=True)
class ConceptDrift:
    labels: int
    false_alarms: int
    detected: bool


def detect_concept_drift(labels: int, false_alarms: int) -> ConceptDrift:
    """Concept drift: most of the anomalies people labelled were false alarms.

    >>> detect_concept_drift(12, 9).detected
    True
    """
    enough = labels >= MIN_FEEDBACK_LABELS
    return ConceptDrift(
        labels, false_alarms, enough and false_alarms / labels > FALSE_ALARM_DRIFT
    )
