"""Every detector family fitted into a band that may vary with the phase of a
period: the one shape the library and the inference table score."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from atalaia.core.detectors import auto, forest
from atalaia.core.detectors.auto import Choice
from atalaia.core.detectors.base import ModelParams, band_width
from atalaia.core.detectors.catalog import (
    SEASONAL,
    SERIES_FAMILIES,
    get_detector,
    resolve_hyperparameters,
)
from atalaia.core.detectors.phases import BandFit, PhaseBand
from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from atalaia.core.explanations import Reason
from atalaia.core.series import Readings

# The families fitted into a band, and what a series' version may be (those,
# the heavy isolation forest, served with its band beside its trees, and the
# streaming families, with their baseline band beside their state).
BAND_ALGORITHMS = tuple(
    sorted(set(SERIES_FAMILIES) - {auto.NAME, forest.NAME} - set(STREAM_FAMILIES))
)
SERVED_ALGORITHMS = tuple(sorted(set(SERIES_FAMILIES) - {auto.NAME}))


def fit_band(
    algorithm: str, readings: Readings, given: Mapping[str, object]
) -> tuple[dict[str, float], PhaseBand]:
    """The validated hyperparameters and the band `algorithm` fits."""
    resolved, fitted = band_fit(algorithm, readings, given)
    return resolved, fitted.band


def band_fit(
    algorithm: str, readings: Readings, given: Mapping[str, object]
) -> tuple[dict[str, float], BandFit]:
    """`fit_band`, with where the readings fall among the band's phases."""
    resolved = resolve_hyperparameters(algorithm, given)
    if algorithm == SEASONAL.name:
        return resolved, SEASONAL.fit(readings.timestamps, readings.values, resolved)
    params = get_detector(algorithm).fit(readings.values, resolved)
    return resolved, BandFit(flat_band(params))


def flat_band(params: ModelParams) -> PhaseBand:
    """The band of a location/scale model."""
    width = band_width(np.array([params.scale]), np.array([params.threshold]))
    return PhaseBand.flat(params.center, float(width[0]))


def reasons_of(band: PhaseBand) -> str:
    """The reason an anomaly outside `band` is one."""
    return Reason.OUTSIDE_SEASONAL_BAND if band.phases > 1 else Reason.OUTSIDE_BAND


def fit_auto(readings: Readings) -> tuple[Choice, dict[str, float], PhaseBand]:
    """The family `auto` chooses for `readings`, its hyperparameters (its
    defaults) and its fit on all of them."""
    choice, resolved, fitted = auto_band_fit(readings)
    return choice, resolved, fitted.band


def auto_band_fit(readings: Readings) -> tuple[Choice, dict[str, float], BandFit]:
    """`fit_auto`, with where the readings fall among the band's phases."""
    choice, fitted = auto.choose(readings, _fit_candidate, auto.CANDIDATES)
    return choice, resolve_hyperparameters(choice.algorithm, {}), fitted


def _fit_candidate(name: str, readings: Readings, like: BandFit | None) -> BandFit:
    """`name` fitted with its defaults on `readings`; a seasonal band with the
    period and phases of `like` (its fit on more readings that begin with
    these) when `like` has phases."""
    if name == SEASONAL.name and like is not None and like.phasing is not None:
        phasing = like.phasing[: len(readings)]
        defaults = resolve_hyperparameters(name, {})
        return SEASONAL.fit_phased(phasing, readings.values, defaults)
    return band_fit(name, readings, {})[1]
