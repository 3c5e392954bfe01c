"""Bands that vary with the phase of a period: the expected value and the band's
half-width at each phase, linearly interpolated between phase centres.

A flat band (z-score, robust) is the one-phase case. Many series' bands live in
shared pools: each series keeps its period, its number of phases, the offset of
its phases in the pools and a base value; each phase keeps its departure from
the base and its half-width as float32 (the base keeps the precision of large
values). Scoring a reading is then a few gathers by (series, phase), the same
arithmetic for one series or the whole fleet. A fit keeps where its training
readings fall among the phases (`Phasing`), to evaluate bands there again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.base import MIN_WIDTH

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
# Float32 for a seasonal band's phases; a flat band keeps its width in float64.
Widths = npt.NDArray[np.float32] | npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PhaseBand:
    """One series' band: `phases` equal slices of `period` seconds (counted from
    the epoch), each with the expected value's departure from `base` and the
    band's half-width at its centre."""

    period: float
    base: float
    departure: Float32Array
    width: Widths

    @property
    def phases(self) -> int:
        return int(self.departure.size)

    def at(
        self, timestamps: FloatArray, phasing: Phasing | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """The expected value and the band's half-width at `timestamps` (where
        `phasing` places them among its phases, when it is known); a flat
        band's exactly, the same at every time."""
        if self.phases == 1:
            ones = np.ones(timestamps.size)
            return self.base * ones, float(self.width[0]) * ones
        if phasing is None:
            phasing = Phasing.of(timestamps, self.period, self.phases)
        half = np.maximum(phasing.interpolate(self.width), MIN_WIDTH)
        return self.base + phasing.interpolate(self.departure), half

    @classmethod
    def flat(cls, center: float, width: float) -> PhaseBand:
        """The band of a location/scale model: one phase, its width exact."""
        return cls(1.0, center, np.zeros(1, np.float32), np.array([width]))

    def to_bytes(self) -> bytes:
        """The band as stored: its period (float64), then its phases as
        (departure, width) float32 pairs, little-endian; the base is kept apart.

        >>> band = PhaseBand(10.0, 1.0, np.array([0, 2], np.float32),
        ...                  np.array([1, 3], np.float32))
        >>> PhaseBand.from_bytes(1.0, band.to_bytes()).width.tolist()
        [1.0, 3.0]
        """
        pairs = np.column_stack([self.departure, self.width]).astype("<f4")
        return np.array([self.period], "<f8").tobytes() + pairs.tobytes()

    @classmethod
    def from_bytes(cls, base: float, data: bytes) -> PhaseBand:
        period, pairs = stored_phases(data)
        return cls(period, base, pairs[:, 0].copy(), pairs[:, 1].copy())


@dataclass(frozen=True, slots=True)
class Phasing:
    """Where readings fall among `phases` equal slices of `period` seconds: the
    slice each is in, and the centres of the slices before and after it, with
    its weight on the latter (a band is interpolated between phase centres)."""

    period: float
    phases: int
    slot: IntArray
    first: IntArray
    second: IntArray
    frac: FloatArray

    @classmethod
    def of(cls, timestamps: FloatArray, period: float, phases: int) -> Phasing:
        position = phase_position(timestamps, period, phases)
        first, second, frac = _around(position, phases)
        return cls(period, phases, position.astype(np.int64), first, second, frac)

    def __getitem__(self, part: slice) -> Phasing:
        """The phasing of readings `part`."""
        return Phasing(
            self.period, self.phases, self.slot[part], self.first[part],
            self.second[part], self.frac[part],
        )  # fmt: skip

    def interpolate(self, per_phase: Widths) -> FloatArray:
        """Values at the phases' centres, interpolated at each reading."""
        return _between(per_phase, self.first, self.second, self.frac)


@dataclass(frozen=True, slots=True)
class BandFit:
    """A band, and where the readings it was fitted on fall among its phases
    (None for a flat band: the same at every time)."""

    band: PhaseBand
    phasing: Phasing | None = None


def stored_phases(data: bytes) -> tuple[float, Float32Array]:
    """A stored band's period, and its phases as rows of (departure, width)."""
    period = float(np.frombuffer(data, "<f8", 1)[0])
    pairs: Float32Array = np.frombuffer(data, "<f4", offset=8).reshape(-1, 2)
    return period, pairs


@dataclass(frozen=True, slots=True)
class BandPools:
    """Many series' bands: per-series columns and the shared per-phase pools."""

    period: FloatArray
    phases: IntArray
    offset: IntArray  # where each series' phases start in the pools
    base: FloatArray
    departure: Float32Array
    width: Widths

    @classmethod
    def of(cls, bands: list[PhaseBand]) -> BandPools:
        sizes = np.array([b.phases for b in bands], np.int64)
        return cls(
            period=np.array([b.period for b in bands]),
            phases=sizes,
            offset=np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64),
            base=np.array([b.base for b in bands]),
            departure=np.concatenate([b.departure for b in bands]),
            width=np.concatenate([b.width for b in bands]),
        )

    def at(
        self, rows: IntArray, timestamps: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """The expected value and the band's half-width of series `rows` at
        `timestamps` (aligned arrays)."""
        return band_at(
            timestamps,
            self.period[rows],
            self.phases[rows],
            self.offset[rows],
            self.base[rows],
            self.departure,
            self.width,
        )


def phase_position(
    timestamps: FloatArray, period: FloatArray | float, phases: IntArray | int
) -> FloatArray:
    """Where each timestamp falls in its period, in phases: [0, phases).

    >>> phase_position(np.array([0.0, 45.0, 100.0]), 100.0, 4).tolist()
    [0.0, 1.8, 0.0]
    """
    position: FloatArray = np.mod(timestamps, period) * (phases / np.asarray(period))
    return position


def band_at(
    timestamps: FloatArray,
    period: FloatArray,
    phases: IntArray,
    offset: IntArray,
    base: FloatArray,
    departure: Float32Array,
    width: Widths,
) -> tuple[FloatArray, FloatArray]:
    """The expected value and half-width at each reading's time, interpolated
    between the centres of the two phases around it.

    >>> band_at(np.array([0.5, 1.0]), np.array([2.0, 2.0]), np.array([2, 2]),
    ...         np.array([0, 0]), np.array([10.0, 10.0]),
    ...         np.array([0.0, 2.0], np.float32), np.array([1.0, 3.0], np.float32))
    (array([10., 11.]), array([1., 2.]))
    """
    first, second, frac = _around(phase_position(timestamps, period, phases), phases)
    first += offset
    second += offset
    expected = base + _between(departure, first, second, frac)
    half = np.maximum(_between(width, first, second, frac), MIN_WIDTH)
    return expected, half


def _around(
    position: FloatArray, phases: IntArray | int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The phases whose centres are at or before and after each `position`
    (around the circle), and how far it is from the first to the second."""
    below = position - 0.5
    step = np.floor(below)
    frac = below - step
    first = np.mod(step.astype(np.int64), phases)
    second = first + 1
    second[second == phases] = 0
    return first, second, frac


def _between(
    per_phase: Widths, first: IntArray, second: IntArray, frac: FloatArray
) -> FloatArray:
    """(1 − frac)·per_phase[first] + frac·per_phase[second], every product in
    float64."""
    values: FloatArray = (1.0 - frac) * per_phase[first] + frac * per_phase[second]
    return values
