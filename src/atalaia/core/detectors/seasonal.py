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
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from atalaia.core.detectors.base import MIN_SCALE, FloatArray
from atalaia.core.detectors.period import DAY, WEEK, find_period
from atalaia.core.detectors.phases import BandFit, IntArray, PhaseBand, Phasing
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
TABLE_PADDING = 4  # see `_Groups`


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
        return self.fit(timestamps, values, hyperparameters).band

    def fit(
        self,
        timestamps: FloatArray,
        values: FloatArray,
        hyperparameters: Mapping[str, float],
    ) -> BandFit:
        """The band, and where the readings fall among its phases."""
        period = hyperparameters.get("period_s") or find_period(timestamps, values)
        phases = _phases(timestamps, period, hyperparameters.get("phases"))
        if period is None or phases < 2:
            threshold = float(hyperparameters["threshold_sigma"])
            return BandFit(_flat(values, threshold))
        phasing = Phasing.of(timestamps, period, phases)
        return self.fit_phased(phasing, values, hyperparameters)

    def fit_phased(
        self,
        phasing: Phasing,
        values: FloatArray,
        hyperparameters: Mapping[str, float],
    ) -> BandFit:
        """The band of `values` on the phases `phasing` places them in."""
        threshold = float(hyperparameters["threshold_sigma"])
        groups = _Groups.of(phasing.slot, phasing.phases)
        center = _fill_circular(groups.median(values))
        base = float(np.median(center))
        departure = (center - base).astype(np.float32)
        expected = base + phasing.interpolate(departure)
        scale = _phase_scales(groups, values - expected)
        width = (scale * threshold).astype(np.float32)
        return BandFit(PhaseBand(phasing.period, base, departure, width), phasing)


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


@dataclass(frozen=True, slots=True)
class _Groups:
    """Readings grouped by phase, for the median of each phase's values.

    The values go into a table, a row a phase (a short row padded with +inf),
    whose rows are sorted: much faster than sorting (and arg-sorting) the
    whole series. Phases so uneven that the table would be mostly padding
    (more than TABLE_PADDING times the readings) sort the whole series
    instead.
    """

    slot: IntArray  # each reading's phase
    counts: IntArray  # each phase's readings
    order: IntArray  # the readings phase by phase
    cell: tuple[IntArray, IntArray]  # where each of them goes in the table

    @classmethod
    def of(cls, slot: IntArray, phases: int) -> _Groups:
        counts = np.bincount(slot, minlength=phases)
        order = np.argsort(slot, kind="stable")
        column = np.arange(slot.size) - np.repeat(np.cumsum(counts) - counts, counts)
        return cls(slot, counts, order, (slot[order], column))

    def median(self, values: FloatArray) -> FloatArray:
        """The median of each phase's values (NaN for an empty phase)."""
        counts = self.counts
        longest = int(counts.max())
        if counts.size * longest > TABLE_PADDING * values.size:
            return _sorted_group_median(self.slot, values, counts)
        table = np.full((counts.size, longest), np.inf)
        table[self.cell] = values[self.order]
        table.sort(axis=1)
        rows = np.arange(counts.size)
        median: FloatArray = (
            table[rows, (counts - 1) // 2] + table[rows, counts // 2]
        ) / 2
        median[counts == 0] = np.nan
        return median


def _sorted_group_median(
    slot: IntArray, values: FloatArray, counts: IntArray
) -> FloatArray:
    """`_Groups.median` by sorting the whole series: the values sorted, then
    grouped by a stable sort of their groups as the smallest integers that hold
    them (a radix sort), three times faster than `np.lexsort((values, slot))`.
    """
    by_value = np.argsort(values)
    their_groups = slot[by_value].astype(np.min_scalar_type(counts.size))
    ordered = values[by_value][np.argsort(their_groups, kind="stable")]
    starts = np.cumsum(counts) - counts
    filled = counts > 0
    low = starts + (counts - 1) // 2
    high = starts + counts // 2
    median = np.full(counts.size, np.nan)
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


def _phase_scales(groups: _Groups, residuals: FloatArray) -> FloatArray:
    """Each phase's robust sigma of the residuals, shrunk towards the series'."""
    _, whole = median_and_sigma(residuals)
    center = _fill_circular(groups.median(residuals))
    deviation = np.abs(residuals - center[groups.slot])
    mad = _fill_circular(groups.median(deviation))
    own = np.where(mad > MIN_MAD, MAD_TO_SIGMA * mad, whole)
    counts = groups.counts
    shrunk = np.sqrt(
        (counts * own**2 + SHRINK_READINGS * whole**2) / (counts + SHRINK_READINGS)
    )
    scale: FloatArray = np.maximum(shrunk, MIN_SCALE)
    return scale
