"""Algorithm name → detector."""

from __future__ import annotations

from collections.abc import Mapping

from atalaia.core.detectors.base import (
    Detector,
    ModelParams,
    ParamColumns,
    check_hyperparameters,
)
from atalaia.core.detectors.robust import Robust
from atalaia.core.detectors.zscore import ZScore
from atalaia.core.series import FloatArray
from atalaia.errors import UnknownAlgorithm

DETECTORS: dict[str, Detector] = {d.name: d for d in (ZScore(), Robust())}


def get_detector(name: str) -> Detector:
    try:
        return DETECTORS[name]
    except KeyError:
        raise UnknownAlgorithm(name, sorted(DETECTORS)) from None


def resolve_hyperparameters(
    algorithm: str, given: Mapping[str, object]
) -> dict[str, float]:
    """Validate `given` for `algorithm` and fill in its defaults."""
    detector = get_detector(algorithm)
    return check_hyperparameters(algorithm, detector.defaults, given)


def fit(algorithm: str, values: FloatArray, given: Mapping[str, object]) -> ModelParams:
    """Fit `algorithm` on `values` with validated hyperparameters."""
    return get_detector(algorithm).fit(
        values, resolve_hyperparameters(algorithm, given)
    )


def fit_rows(
    algorithm: str, rows: FloatArray, given: Mapping[str, object]
) -> ParamColumns:
    """Fit `algorithm` on every row of `rows` (one series per row) in one pass."""
    return get_detector(algorithm).fit_rows(
        rows, resolve_hyperparameters(algorithm, given)
    )
