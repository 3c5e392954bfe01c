"""What the streaming families (`forecast`, `changepoint`) share: the seasonal
baseline their residuals are measured from, and columns of per-series state.

A streaming model is fitted once (its params: the baseline band and a few
numbers per series) and keeps adapting a small state as readings arrive. Both
are columns, one entry (or row) per series, so a fleet advances in one
vectorized pass per timestamp; one series is the one-row case. The state
holds no window of raw readings: a few floats and a short ring a series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.period import find_period
from atalaia.core.detectors.phases import BandPools, PhaseBand, Widths
from atalaia.core.detectors.seasonal import (
    DEFAULT_PHASES,
    MAX_PHASES,
    MIN_PER_PHASE,
    PHASES_OF,
    Seasonal,
)
from atalaia.core.series import Readings

IntArray = npt.NDArray[np.int64]
Column = npt.NDArray[np.float64] | npt.NDArray[np.int64] | npt.NDArray[np.bool_]
_SEASONAL = Seasonal()
# The residuals' spread is never trusted below this share of the baseline's.
MIN_SPREAD = 0.1
PER_PHASE = 32  # readings a fine phase needs


def fit_baseline(readings: Readings) -> PhaseBand:
    """The seasonal band of `readings` at one robust sigma: its centre is the
    value expected at each phase, its half-width the residuals' scale there.

    `seasonal`'s period, on finer phases when the readings allow (PER_PHASE
    readings a phase): a band tolerates the error of interpolating a steep
    ramp between hourly phases, but a sum of residuals over the ramp adds it
    up into a change."""
    t = readings.timestamps
    period = find_period(t, readings.values)
    hyperparameters = {"threshold_sigma": 1.0}
    if period is not None and t.size > 1:
        spacing = float(np.median(np.diff(t)))
        usual = min(PHASES_OF.get(period, DEFAULT_PHASES), t.size // MIN_PER_PHASE)
        fine = max(t.size // PER_PHASE, usual)
        phases = min(fine, int(period / spacing), MAX_PHASES)
        hyperparameters |= {"period_s": period, "phases": float(max(phases, 1))}
    return _SEASONAL.fit_band(t, readings.values, hyperparameters)


def standardized(
    bands: BandPools, rows: IntArray, timestamps: FloatArray, values: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The baseline's expected value and scale at each reading, and the
    reading's residual in that scale."""
    expected, scale = bands.at(rows, timestamps)
    return expected, scale, (values - expected) / scale


# One reading's baseline: its expected value, the scale, its residual in it.
Baseline = tuple[float, float, float]


def baseline_one(
    bands: BandPools, row: int, timestamp: float, value: float
) -> Baseline:
    """`standardized` for one reading, as plain floats."""
    e, s, z = standardized(
        bands, np.array([row]), np.array([timestamp]), np.array([value])
    )
    return e.item(), s.item(), z.item()


def pools_to_arrays(bands: BandPools) -> dict[str, Column]:
    """The bands' columns and pools as named arrays."""
    return {f"band_{f.name}": getattr(bands, f.name) for f in fields(bands)}


def pools_from_arrays(arrays: dict[str, Column]) -> BandPools:
    stored = np.asarray(arrays["band_width"])
    # A flat band keeps its width in float64, a seasonal one in float32.
    width: Widths = (
        stored.astype(np.float32)
        if stored.dtype == np.float32
        else stored.astype(np.float64)
    )
    return BandPools(
        period=np.array(arrays["band_period"], np.float64),
        phases=np.array(arrays["band_phases"], np.int64),
        offset=np.array(arrays["band_offset"], np.int64),
        base=np.array(arrays["band_base"], np.float64),
        departure=np.array(arrays["band_departure"], np.float32),
        width=width,
    )


class Columns:
    """Per-series columns (dataclass fields, all arrays) stored as named
    arrays: no pickle. Mixed into the params' and states' dataclasses."""

    __slots__ = ()

    def to_arrays(self) -> dict[str, Column]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_arrays(cls, arrays: dict[str, Column]) -> Self:
        return cls(**{f.name: np.array(arrays[f.name]) for f in fields(cls)})  # type: ignore[arg-type]

    def copy(self) -> Self:
        return self.from_arrays(self.to_arrays())

    @classmethod
    def join(cls, parts: Sequence[Self]) -> Self:
        """The columns of `parts` one after the other: a fleet of series."""
        joined = {
            f.name: _join([getattr(p, f.name) for p in parts])
            for f in fields(cls)  # type: ignore[arg-type]
        }
        return cls(**joined)


def _join(columns: list[Any]) -> Any:
    if isinstance(columns[0], BandPools):
        return join_pools(columns)
    return np.concatenate(columns)


def join_pools(parts: list[BandPools]) -> BandPools:
    """Several series' band pools as one (their phases' offsets moved on)."""
    sizes = np.cumsum([0] + [p.departure.size for p in parts[:-1]])
    return BandPools(
        period=np.concatenate([p.period for p in parts]),
        phases=np.concatenate([p.phases for p in parts]),
        offset=np.concatenate(
            [p.offset + at for p, at in zip(parts, sizes, strict=True)]
        ),
        base=np.concatenate([p.base for p in parts]),
        departure=np.concatenate([p.departure for p in parts]),
        width=np.concatenate([p.width for p in parts]),
    )


@dataclass(frozen=True, slots=True)
class Step:
    """What advancing readings answered, per reading: the anomaly score, the
    value expected, the band's half-width around it, and the side."""

    score: FloatArray
    expected: FloatArray
    half_width: FloatArray
    above: npt.NDArray[np.bool_]
    cause: IntArray  # which of the family's reasons drove the score
