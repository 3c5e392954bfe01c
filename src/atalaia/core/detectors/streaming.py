"""What the streaming families (`forecast`, `changepoint`) share: the seasonal
baseline their residuals are measured from, and columns of per-series state.

A streaming model is fitted once (its baseline band and params: a few numbers
per series) and keeps adapting a small state as readings arrive. Params and
state are columns, one entry (or row) per series, so a fleet advances in one
vectorized pass per timestamp; one series is the one-row case. The state
holds no window of raw readings: a few floats and a short ring a series.

The baseline band is the model's stateless one: `outlier_sigma` robust sigmas
wide around the value expected at each phase. A reading's scale is its
half-width over `outlier_sigma`, so the band as served (the inference table's)
gives the same residuals as the band as fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.period import find_period
from atalaia.core.detectors.phases import BandPools, PhaseBand
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


def fit_baseline(readings: Readings, sigmas: float) -> PhaseBand:
    """The seasonal band of `readings` `sigmas` robust sigmas wide: its centre
    is the value expected at each phase, its half-width `sigmas` times the
    residuals' scale there.

    `seasonal`'s period, on finer phases when the readings allow (PER_PHASE
    readings a phase): a band tolerates the error of interpolating a steep
    ramp between hourly phases, but a sum of residuals over the ramp adds it
    up into a change."""
    t = readings.timestamps
    period = find_period(t, readings.values)
    hyperparameters = {"threshold_sigma": sigmas}
    if period is not None and t.size > 1:
        spacing = float(np.median(np.diff(t)))
        usual = min(PHASES_OF.get(period, DEFAULT_PHASES), t.size // MIN_PER_PHASE)
        fine = max(t.size // PER_PHASE, usual)
        phases = min(fine, int(period / spacing), MAX_PHASES)
        hyperparameters |= {"period_s": period, "phases": float(max(phases, 1))}
    return _SEASONAL.fit_band(t, readings.values, hyperparameters)


# Each reading's baseline: the value expected, the scale, its residual in it.
Baselines = tuple[FloatArray, FloatArray, FloatArray]


def standardized(
    expected: FloatArray, half_width: FloatArray, sigmas: FloatArray, values: FloatArray
) -> Baselines:
    """The baseline of readings whose band (`sigmas` wide) has this centre and
    half-width at their times."""
    scale = half_width / sigmas
    return expected, scale, (values - expected) / scale


def baselines(
    bands: BandPools,
    sigmas: FloatArray,
    rows: IntArray,
    timestamps: FloatArray,
    values: FloatArray,
) -> Baselines:
    """The baseline of readings of series `rows`, from their bands."""
    expected, half_width = bands.at(rows, timestamps)
    return standardized(expected, half_width, sigmas, values)


# One reading's baseline: its expected value, the scale, its residual in it.
Baseline = tuple[float, float, float]


def baseline_one(
    bands: BandPools, sigmas: float, row: int, timestamp: float, value: float
) -> Baseline:
    """`baselines` for one reading, as plain floats."""
    e, s, z = baselines(
        bands, np.array([sigmas]), np.array([row]), np.array([timestamp]),
        np.array([value]),
    )  # fmt: skip
    return e.item(), s.item(), z.item()


class Row:
    """One series' entry of columns as plain floats, an attribute a field (a
    list for a field several wide): what the plain-float path reads and
    writes, a few times faster than reading and writing numpy scalars."""


def _layout(cls: type) -> tuple[tuple[str, int], ...]:
    """Each field of a `Columns` class and how many numbers a series has
    (kept on the class: the plain-float path reads it every reading)."""
    layout: tuple[tuple[str, int], ...] | None = cls.__dict__.get("_layout")
    if layout is None:
        layout = tuple((f.name, f.metadata.get("width", 1)) for f in fields(cls))
        type.__setattr__(cls, "_layout", layout)
    return layout


class Columns:
    """Per-series columns (dataclass fields, all float64 arrays), stored as
    named arrays or packed (`packed`), never pickled. Mixed into the params'
    and states' dataclasses; a field's metadata says how many numbers a
    series has (`width`, default 1: a 1-D column; else series × width)."""

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
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(cls)  # type: ignore[arg-type]
        }
        return cls(**joined)

    @classmethod
    def width(cls) -> int:
        """Numbers a series has in all the columns."""
        return sum(width for _, width in _layout(cls))

    @classmethod
    def row(cls, values: list[float]) -> Any:
        """A series' numbers (as `packed` lays them) as a `Row`."""
        row, at = Row(), 0
        entries = row.__dict__
        for name, width in _layout(cls):
            if width == 1:
                entries[name] = values[at]
                at += 1
            else:
                entries[name] = values[at : at + width]
                at += width
        return row

    @classmethod
    def values(cls, row: Any) -> list[float]:
        """A `Row`'s numbers, as `packed` lays them."""
        values: list[float] = []
        entries = row.__dict__
        for name, width in _layout(cls):
            if width == 1:
                values.append(entries[name])
            else:
                values.extend(entries[name])
        return values

    def entry(self, i: int) -> list[float]:
        """Series `i`'s numbers, as `packed` lays them."""
        return self.packed_rows(np.array([i]))[0].tolist()  # type: ignore[no-any-return]

    def set_entry(self, i: int, values: list[float]) -> None:
        """Give series `i` these numbers (laid as `packed` lays them)."""
        at = 0
        for name, width in _layout(type(self)):
            getattr(self, name)[i] = (
                values[at] if width == 1 else values[at : at + width]
            )
            at += width

    def packed_rows(self, rows: IntArray | slice) -> FloatArray:
        """Series `rows`' numbers, a row each (rows × `width()`)."""
        return np.hstack(
            [
                np.asarray(getattr(self, name)[rows], np.float64).reshape(-1, width)
                for name, width in _layout(type(self))
            ]
        )

    def packed(self) -> FloatArray:
        """Each series' numbers in one row (series × `width()`)."""
        return self.packed_rows(slice(None))

    @classmethod
    def unpacked(cls, rows: FloatArray) -> Self:
        """Columns over series packed in `rows` (`packed`): views of it, so
        that writing the columns writes `rows`."""
        columns, at = {}, 0
        for name, width in _layout(cls):
            columns[name] = rows[:, at] if width == 1 else rows[:, at : at + width]
            at += width
        return cls(**columns)


@dataclass(frozen=True, slots=True)
class Step:
    """What advancing readings answered, per reading: the anomaly score, the
    value expected, the band's half-width around it, and the side."""

    score: FloatArray
    expected: FloatArray
    half_width: FloatArray
    above: npt.NDArray[np.bool_]
    cause: IntArray  # which of the family's reasons drove the score
