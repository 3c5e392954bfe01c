"""Seasonal detector: an expected value and a robust spread for each phase of a
period (an hour of the day, of the week, or a period found in the data).

The period is found from the training data (`find_period`) unless given as
`period_s`; a series that does not repeat gets one phase, a robust flat band.
Each phase's expected value is the median of its readings; the band is
`threshold_sigma` robust sigmas of the residuals around the interpolated
expected value, per phase, shrunk towards the whole series' spread so that a
phase with few readings does not get a band too tight or too loose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from atalaia.core.detectors.base import MIN_SCALE, FloatArray
from atalaia.core.detectors.period import DAY, WEEK, find_period
from atalaia.core.detectors.phases import PhaseBand, band_at
from atalaia.core.detectors.robust import MAD_TO_SIGMA, MIN_MAD, median_and_sigma
from atalaia.errors import InvalidHyperparameters

# Phases of a period by default: hours of the day, or of the week.
PHASES_OF = {DAY: 24, WEEK: 168}
DEFAULT_PHASES = 24
MAX_PHASES = 10_080  # the minutes of a week
MIN_PER_PHASE = 8  # readings a phase needs, at the least
# A phase's own spread weighs as much as the series' spread once it has this
# many readings.
SHRINK_READINGS = 30.0


class Seasonal:
    """Flag readings more than `threshold_sigma` robust sigmas from the value
    expected at their phase.

    >>> t = np.arange(0.0, 14 * DAY, 600.0)
    >>> v = 0.3 + 0.1 * np.sin(2 * np.pi * t / DAY)
    >>> v += np.random.default_rng(0).normal(0, 0.01, t.size)
    >>> band = Seasonal().fit_band(t, v, Seasonal.defaults)
    >>> band.period, band.phases
    (86400.0, 24)
    """

    name: ClassVar[str] = "seasonal"
    # 4.5 sigmas: two normal readings in a million cross it by chance, which a
    # fleet of 285,000 series read every minute still does ~2,800 times a day.
    defaults: ClassVar[dict[str, float]] = {"threshold_sigma": 4.5}
    optional: ClassVar[frozenset[str]] = frozenset({"period_s", "phases"})

    @staticmethod
    def check(hyperparameters: Mapping[str, float]) -> None:
        """Refuse `phases` that are not a whole number from 1 to MAX_PHASES."""
        phases = hyperparameters.get("phases")
        if phases is not None and (phases != int(phases) or phases > MAX_PHASES):
            raise InvalidHyperparameters(
                f"seasonal.phases must be a whole number from 1 to {MAX_PHASES:,}, "
                f"got {phases:g}",
                rule="hyperparameters_range",
            )

    def fit_band(
        self,
        timestamps: FloatArray,
        values: FloatArray,
        hyperparameters: Mapping[str, float],
    ) -> PhaseBand:
        threshold = float(hyperparameters["threshold_sigma"])
        period = hyperparameters.get("period_s") or find_period(timestamps, values)
        phases = _phases(timestamps, period, hyperparameters.get("phases"))
        if period is None or phases < 2:
            return _flat(values, threshold)
        slot = (np.mod(timestamps, period) * (phases / period)).astype(np.int64)
        center = _fill_circular(_group_median(slot, values, phases))
        base = float(np.median(center))
        departure = (center - base).astype(np.float32)
        ones = np.ones(phases, np.float32)
        at = np.zeros(timestamps.size, np.int64)
        expected, _ = band_at(
            timestamps, np.full(timestamps.size, period),
            np.full(timestamps.size, phases), at,
            np.full(timestamps.size, base), departure, ones,
        )  # fmt: skip
        scale = _phase_scales(slot, values - expected, phases)
        return PhaseBand(
            period, base, departure, (scale * threshold).astype(np.float32)
        )


def _phases(timestamps: FloatArray, period: float | None, given: float | None) -> int:
    """How many phases: as given, else the calendar's (or 24), no more than the
    readings and their spacing allow."""
    if period is None:
        return 1
    wanted = int(given) if given else PHASES_OF.get(period, DEFAULT_PHASES)
    if given:
        return max(wanted, 1)
    spacing = float(np.median(np.diff(timestamps))) if timestamps.size > 1 else period
    return max(min(wanted, int(period / spacing), timestamps.size // MIN_PER_PHASE), 1)


def _flat(values: FloatArray, threshold: float) -> PhaseBand:
    median, scale = median_and_sigma(values)
    return PhaseBand.flat(median, max(scale, MIN_SCALE) * threshold)


def _group_median(slot: np.ndarray, values: FloatArray, groups: int) -> FloatArray:
    """The median of the values of each group (NaN for an empty group).

    Each group's values in order: the values sorted, then grouped by a stable
    sort of their groups as the smallest integers that hold them (a radix
    sort), three times faster than `np.lexsort((values, slot))`.
    """
    by_value = np.argsort(values)
    their_groups = slot[by_value].astype(np.min_scalar_type(groups))
    ordered = values[by_value][np.argsort(their_groups, kind="stable")]
    counts = np.bincount(slot, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    filled = counts > 0
    low = starts + (counts - 1) // 2
    high = starts + counts // 2
    median = np.full(groups, np.nan)
    median[filled] = (ordered[low[filled]] + ordered[high[filled]]) / 2
    return median


def _fill_circular(per_phase: FloatArray) -> FloatArray:
    """Empty phases (NaN) interpolated from their neighbours around the circle."""
    known = np.flatnonzero(~np.isnan(per_phase))
    if known.size == per_phase.size:
        return per_phase
    n = per_phase.size
    at = np.arange(n, dtype=np.float64)
    filled: FloatArray = np.interp(at, known, per_phase[known], period=n)
    return filled


def _phase_scales(slot: np.ndarray, residuals: FloatArray, phases: int) -> FloatArray:
    """Each phase's robust sigma of the residuals, shrunk towards the series'."""
    _, whole = median_and_sigma(residuals)
    center = _fill_circular(_group_median(slot, residuals, phases))
    deviation = np.abs(residuals - center[slot])
    mad = _fill_circular(_group_median(slot, deviation, phases))
    own = np.where(mad > MIN_MAD, MAD_TO_SIGMA * mad, whole)
    counts = np.bincount(slot, minlength=phases)
    shrunk = np.sqrt(
        (counts * own**2 + SHRINK_READINGS * whole**2) / (counts + SHRINK_READINGS)
    )
    scale: FloatArray = np.maximum(shrunk, MIN_SCALE)
    return scale
