"""Algorithm name → detector, and the hyperparameters every series family takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from atalaia.core.detectors import forest
from atalaia.core.detectors.auto import NAME as AUTO
from atalaia.core.detectors.base import (
    Detector,
    ModelParams,
    ParamColumns,
    check_hyperparameters,
)
from atalaia.core.detectors.multivariate import Multivariate
from atalaia.core.detectors.robust import Robust
from atalaia.core.detectors.seasonal import Seasonal
from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from atalaia.core.detectors.zscore import ZScore
from atalaia.core.series import FloatArray
from atalaia.errors import UnknownAlgorithm

DETECTORS: dict[str, Detector] = {d.name: d for d in (ZScore(), Robust())}
SEASONAL = Seasonal()


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    """What a family takes: numbers with defaults, and optional ones without."""

    defaults: Mapping[str, float]
    optional: frozenset[str] = frozenset()
    # Rules of the family beyond "a number in (0, MAX_HYPERPARAMETER]".
    check: Callable[[Mapping[str, float]], object] | None = None


# Every family a series is trained with, by name.
SERIES_FAMILIES: dict[str, Hyperparameters] = {
    **{name: Hyperparameters(d.defaults) for name, d in DETECTORS.items()},
    SEASONAL.name: Hyperparameters(
        SEASONAL.defaults, SEASONAL.optional, SEASONAL.check
    ),
    forest.NAME: Hyperparameters(forest.DEFAULTS, forest.OPTIONAL, forest.check),
    **{
        name: Hyperparameters(f.defaults, f.optional, f.check)
        for name, f in STREAM_FAMILIES.items()
    },
    AUTO: Hyperparameters({}),  # each candidate with its defaults
}
MULTIVARIATE = Multivariate()
# Every family a sensor (its axes together) is trained with, by name.
SENSOR_FAMILIES: dict[str, Hyperparameters] = {
    MULTIVARIATE.name: Hyperparameters(MULTIVARIATE.defaults, check=MULTIVARIATE.check)
}
TRAINED = SERIES_FAMILIES | SENSOR_FAMILIES  # what the training API takes


def get_detector(name: str) -> Detector:
    try:
        return DETECTORS[name]
    except KeyError:
        raise UnknownAlgorithm(name, sorted(DETECTORS)) from None


def resolve_hyperparameters(
    algorithm: str, given: Mapping[str, object]
) -> dict[str, float]:
    """Validate `given` for `algorithm` (a family the training API takes) and
    fill in its defaults."""
    family = TRAINED.get(algorithm)
    if family is None:
        raise UnknownAlgorithm(algorithm, sorted(TRAINED))
    resolved = check_hyperparameters(algorithm, family.defaults, given, family.optional)
    if family.check is not None:
        family.check(resolved)
    return resolved


def fit(algorithm: str, values: FloatArray, given: Mapping[str, object]) -> ModelParams:
    """Fit `algorithm` on `values` with validated hyperparameters."""
    detector = get_detector(algorithm)
    return detector.fit(
        values, check_hyperparameters(algorithm, detector.defaults, given)
    )


def fit_rows(
    algorithm: str, rows: FloatArray, given: Mapping[str, object]
) -> ParamColumns:
    """Fit `algorithm` on every row of `rows` (one series per row) in one pass."""
    detector = get_detector(algorithm)
    return detector.fit_rows(
        rows, check_hyperparameters(algorithm, detector.defaults, given)
    )
