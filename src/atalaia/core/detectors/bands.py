"""Every detector family fitted into a band that may vary with the phase of a
period: the one shape the library and the inference table score."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from atalaia.core.detectors.base import band_width, check_hyperparameters
from atalaia.core.detectors.catalog import DETECTORS, get_detector
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.detectors.seasonal import Seasonal
from atalaia.core.series import Readings
from atalaia.errors import UnknownAlgorithm

SEASONAL = Seasonal()
BAND_ALGORITHMS: tuple[str, ...] = tuple(sorted({*DETECTORS, SEASONAL.name}))
# Why an anomaly of each kind of band is one (the documented reasons).
OUTSIDE_BAND, OUTSIDE_SEASONAL_BAND = "outside_band", "outside_seasonal_band"


def fit_band(
    algorithm: str, readings: Readings, given: Mapping[str, object]
) -> tuple[dict[str, float], PhaseBand]:
    """The validated hyperparameters and the band `algorithm` fits."""
    if algorithm == SEASONAL.name:
        resolved = check_hyperparameters(
            algorithm, SEASONAL.defaults, given, SEASONAL.optional
        )
        return resolved, SEASONAL.fit_band(
            readings.timestamps, readings.values, resolved
        )
    if algorithm not in DETECTORS:
        raise UnknownAlgorithm(algorithm, list(BAND_ALGORITHMS))
    detector = get_detector(algorithm)
    resolved = check_hyperparameters(algorithm, detector.defaults, given)
    params = detector.fit(readings.values, resolved)
    width = band_width(np.array([params.scale]), np.array([params.threshold]))
    return resolved, PhaseBand.flat(params.center, float(width[0]))


def reasons_of(band: PhaseBand) -> str:
    """The reason an anomaly outside `band` is one."""
    return OUTSIDE_SEASONAL_BAND if band.phases > 1 else OUTSIDE_BAND
