"""A synthetic sensor fleet: plausible readings with known, injected anomalies.

Pure numpy and deterministic per seed, no I/O. Each series is a baseline level,
a daily sine, Gaussian noise and a small random walk pinned to zero at both ends
(so every series ends at its baseline). Some series carry injected spikes, a
temporary level shift or a slow drift; all of them end before the last day, so
the readings that `stream` continues with are normal apart from what it injects.

Sizes are in units of a series' `sigma`, the spread of its normal readings.

>>> fleet = make_fleet(sensors=1, days=7)
>>> [s.series_id for s in fleet]
['sensor_001_radial', 'sensor_001_axial', 'sensor_001_tangential']
>>> fleet[0].values.shape, float(fleet[0].timestamps[1] - fleet[0].timestamps[0])
((10080,), 60.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Kind = Literal["spike", "level_shift", "drift"]

AXES = ("radial", "axial", "tangential")
DEFAULT_START = 1_733_011_200.0  # 2024-12-01T00:00:00Z
DAY_S = 86_400.0
HOUR_S = 3_600.0

# Which anomalies series i carries in its history: PATTERNS[i % 5]. Any fleet of
# four series or more has each kind, and some series stay clean.
PATTERNS: tuple[tuple[Kind, ...], ...] = (
    ("spike",),
    ("level_shift",),
    (),
    ("drift", "spike"),
    (),
)
SPIKE_SIGMA = (6.0, 10.0)
SHIFT_SIGMA = (4.0, 6.0)
SHIFT_HOURS = (2.0, 8.0)
DRIFT_SIGMA = (3.0, 4.0)
DRIFT_HOURS = (12.0, 24.0)
# History anomalies lie in this leading fraction of the series.
INJECT_SPAN = 0.85
# In a stream: the share of readings that are spikes, and the level shift's size.
STREAM_SPIKE_RATE = 0.02
STREAM_SHIFT_SIGMA = 8.0


@dataclass(frozen=True, slots=True)
class Injected:
    """An injected anomaly over readings [start_index, end_index)."""

    kind: Kind
    start_index: int
    end_index: int


@dataclass(frozen=True, slots=True)
class Profile:
    """How a series was generated; `stream` continues it from these."""

    level: float
    noise: float
    amplitude: float  # of the daily sine
    phase: float  # of the daily sine, radians
    walk_step: float  # std of one random-walk step

    @property
    def sigma(self) -> float:
        """The standard deviation of a normal reading (noise and daily sine)."""
        return float(np.sqrt(self.noise**2 + self.amplitude**2 / 2))

    def normal(self, timestamps: FloatArray, rng: np.random.Generator) -> FloatArray:
        """Level, daily sine and noise at `timestamps` (no walk, no anomaly)."""
        daily = self.amplitude * np.sin(2 * np.pi * timestamps / DAY_S + self.phase)
        return self.level + daily + rng.normal(0.0, self.noise, timestamps.size)


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticSeries:
    series_id: str
    timestamps: FloatArray
    values: FloatArray
    injected: list[Injected]
    profile: Profile


def make_fleet(
    sensors: int = 20,
    axes: Sequence[str] = AXES,
    days: float = 7,
    step_s: int = 60,
    start: float = DEFAULT_START,
    seed: int = 7,
) -> list[SyntheticSeries]:
    """`sensors × axes` series of `days` of readings every `step_s` seconds.

    Series k is the same whatever the fleet size, for a given seed.

    >>> a = make_fleet(sensors=2, days=7, seed=1)
    >>> b = make_fleet(sensors=1, days=7, seed=1)
    >>> bool(np.array_equal(a[2].values, b[2].values))
    True
    >>> sorted({i.kind for s in a for i in s.injected})
    ['drift', 'level_shift', 'spike']
    """
    n = int(round(days * DAY_S / step_s))
    timestamps = start + step_s * np.arange(n, dtype=np.float64)
    timestamps.setflags(write=False)
    ids = [f"sensor_{s + 1:03d}_{axis}" for s in range(sensors) for axis in axes]
    seeds = np.random.SeedSequence(seed).spawn(len(ids))
    return [
        _make_series(series_id, timestamps, PATTERNS[i % len(PATTERNS)], seeds[i])
        for i, series_id in enumerate(ids)
    ]


def _make_series(
    series_id: str,
    timestamps: FloatArray,
    kinds: tuple[Kind, ...],
    seed: np.random.SeedSequence,
) -> SyntheticSeries:
    rng = np.random.default_rng(seed)
    profile = _profile(rng, timestamps.size)
    values = profile.normal(timestamps, rng) + _bridge(
        rng, timestamps.size, profile.walk_step
    )
    step_s = float(timestamps[1] - timestamps[0])
    injected = [
        i for kind in kinds for i in _inject(kind, values, profile, step_s, rng)
    ]
    values.setflags(write=False)
    return SyntheticSeries(series_id, timestamps, values, injected, profile)


def _profile(rng: np.random.Generator, n: int) -> Profile:
    level = rng.uniform(0.2, 2.0)
    noise = level * rng.uniform(0.02, 0.06)
    return Profile(
        level=level,
        noise=noise,
        amplitude=noise * rng.uniform(0.5, 1.5),
        phase=rng.uniform(0.0, 2 * np.pi),
        walk_step=0.5 * noise / float(np.sqrt(n)),
    )


def _bridge(rng: np.random.Generator, n: int, step: float) -> FloatArray:
    """A random walk pinned to zero at both ends (a Brownian bridge)."""
    walk: FloatArray = np.cumsum(rng.normal(0.0, step, n))
    walk -= walk[0]
    walk -= np.linspace(0.0, 1.0, n) * walk[-1]
    return walk


def _inject(
    kind: Kind, values: FloatArray, p: Profile, step_s: float, rng: np.random.Generator
) -> list[Injected]:
    """Add anomalies of one kind to `values` in place (a few spikes, else one)."""
    span = int(values.size * INJECT_SPAN)
    if kind == "spike":
        count = int(rng.integers(3, 7))
        at = np.sort(rng.choice(span, size=count, replace=False))
        values[at] += (
            _away(values[at] - p.level, rng)
            * rng.uniform(*SPIKE_SIGMA, count)
            * p.sigma
        )
        return [Injected(kind, int(i), int(i) + 1) for i in at]
    hours = SHIFT_HOURS if kind == "level_shift" else DRIFT_HOURS
    length = int(rng.uniform(*hours) * HOUR_S / step_s)
    begin = int(rng.integers(0, span - length))
    sign = rng.choice([-1.0, 1.0])
    if kind == "level_shift":
        values[begin : begin + length] += sign * rng.uniform(*SHIFT_SIGMA) * p.sigma
    else:
        ramp = np.linspace(0.0, 1.0, length) * rng.uniform(*DRIFT_SIGMA) * p.sigma
        values[begin : begin + length] += sign * ramp
    return [Injected(kind, begin, begin + length)]


def _away(deviation: FloatArray, rng: np.random.Generator) -> FloatArray:
    """±1 pointing away from the level, so a spike of k sigma ends ≥ k sigma out."""
    sign = np.sign(deviation)
    ties = sign == 0
    sign[ties] = rng.choice([-1.0, 1.0], size=int(ties.sum()))
    return sign


def stream(
    fleet: Sequence[SyntheticSeries], minutes: int, seed: int = 11
) -> tuple[list[str], FloatArray, FloatArray, BoolArray]:
    """Fresh readings continuing after each series' end, time-major, with the truth.

    Returns (series_ids, timestamps, values, truth), one entry per reading. About
    2% of readings are spikes of 6-10 sigma; every axis of one sensor gets a
    level shift of 8 sigma over the second half of the stream. `truth` marks them.

    >>> ids, ts, vs, truth = stream(make_fleet(sensors=1, days=7), minutes=60)
    >>> len(ids), ts.shape, vs.shape, truth.dtype.name
    (180, (180,), (180,), 'bool')
    >>> ids[:2], bool(ts.min() > make_fleet(sensors=1, days=7)[0].timestamps[-1])
    (['sensor_001_radial', 'sensor_001_axial'], True)
    """
    rng = np.random.default_rng(seed)
    step_s = float(fleet[0].timestamps[1] - fleet[0].timestamps[0])
    m = max(1, int(minutes * 60 // step_s))
    offsets = step_s * np.arange(1, m + 1, dtype=np.float64)
    ts = np.stack([s.timestamps[-1] + offsets for s in fleet])  # (series, m)
    vs = np.stack([_continue(s, ts[i], rng) for i, s in enumerate(fleet)])
    sigma = np.array([s.profile.sigma for s in fleet])[:, None]
    level = np.array([s.profile.level for s in fleet])[:, None]
    truth = _shift_one_sensor(fleet, vs, sigma, rng)
    truth |= _spike(vs, level, sigma, rng)
    order = np.lexsort((np.repeat(np.arange(len(fleet)), m), ts.ravel()))
    ids = np.repeat(np.array([s.series_id for s in fleet], dtype=object), m)[order]
    return list(ids), ts.ravel()[order], vs.ravel()[order], truth.ravel()[order]


def _continue(
    s: SyntheticSeries, ts: FloatArray, rng: np.random.Generator
) -> FloatArray:
    walk = np.cumsum(rng.normal(0.0, s.profile.walk_step, ts.size))
    return s.profile.normal(ts, rng) + walk


def _shift_one_sensor(
    fleet: Sequence[SyntheticSeries],
    vs: FloatArray,
    sigma: FloatArray,
    rng: np.random.Generator,
) -> BoolArray:
    """Shift every axis of one sensor over the second half; in place; the mask."""
    sensors = [s.series_id.rsplit("_", 1)[0] for s in fleet]
    chosen = sensors[int(rng.integers(len(sensors)))]
    rows = np.array([name == chosen for name in sensors])
    truth = np.zeros(vs.shape, dtype=np.bool_)
    truth[rows, vs.shape[1] // 2 :] = True
    vs += truth * rng.choice([-1.0, 1.0]) * STREAM_SHIFT_SIGMA * sigma
    return truth


def _spike(
    vs: FloatArray, level: FloatArray, sigma: FloatArray, rng: np.random.Generator
) -> BoolArray:
    """Spike about 2% of the readings (at least one), in place; the mask."""
    count = max(1, int(round(STREAM_SPIKE_RATE * vs.size)))
    flat = rng.choice(vs.size, size=count, replace=False)
    at = np.unravel_index(flat, vs.shape)
    size = rng.uniform(*SPIKE_SIGMA, count) * sigma[at[0], 0]
    vs[at] += _away(vs[at] - level[at[0], 0], rng) * size
    truth = np.zeros(vs.shape, dtype=np.bool_)
    truth[at] = True
    return truth
