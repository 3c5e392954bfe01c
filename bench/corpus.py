"""A labelled synthetic corpus: sensor series with anomaly events of known kinds
and sizes injected at known readings. Numpy only, deterministic per seed.

Each case is one sensor read every 10 s, 1 min or 5 min. Its first `train`
readings are normal (Gaussian noise around the pattern, nothing else); after
them, normal stretches of 3-9 h alternate with labelled events, so that false
alarms can be counted between them.

A one-axis case reads `level + σ (A p(t) + z)`: z is standard Gaussian noise,
σ the series' noise sigma (the unit of every size below), p a pattern within
[-1, 1] and A its half-range, 12 σ (low noise) or 6 σ (high noise). Its period:

- none: p = 0 (2 days of training);
- daily: p = -cos(2π (t / 1 day - θ)), peaking at a random hour (5 days);
- weekly: working days (Mon-Fri) ramp up from 06:00 to 08:00 to a plateau and
  down from 18:00 to 20:00; weekends stay low with a faint bump (15 days);
- cycle: -cos over a 2.5 h cycle, not a calendar period (2 days).

A three-axis case is a sensor whose axes follow one shared load: axis k reads
`level_k + σ_k (L w(t) + z_k)`, w a smooth Gaussian wander of unit variance
(20 min correlation time), L = 8 (low noise) or 4 (high noise); 2 days of
training. It holds `axis_break` events only.

Events, their sizes in σ of the axis they hit and their durations (each drawn
uniformly within its range):

- spike: one reading jumps by ±6-10 σ.
- level_shift: a constant offset of ±4-6 σ for 1-4 h.
- drift: a ramp from 0 to ±6-10 σ over 2-8 h, then the offset vanishes.
- variance: the noise grows 3-5 × for 30 min-2 h.
- pattern_break: the right values at the wrong time. The daily pattern
  shifted by 6-9 h for 8-12 h; the cycle by 1/4-2/5 of a cycle for 2-4
  cycles; a Saturday's pattern on a working day from 07:00 to 19:00. The
  readings depart from the pattern by up to 1.4-1.9 A.
- frequency: the pattern runs 2-3 × faster, continuous at the event's start,
  for 8-12 h (daily, weekly) or 1-2 cycles; departs by up to 2 A.
- stuck: the reading before the event repeats exactly for 30 min-3 h (a
  flatlined sensor).
- axis_break: for 1-3 h one axis follows the opposite load (-w) while the
  other two keep following w, clipped to its own training range: within its
  own range, 2 L |w| σ from where the other axes put it (1.6 L σ on average).

A one-axis case holds 4 spikes and 2 events of each other kind (pattern_break
and frequency only where there is a period); a three-axis case 4 axis_breaks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Kind = Literal[
    "spike", "level_shift", "drift", "variance", "pattern_break", "frequency",
    "stuck", "axis_break",
]  # fmt: skip
Period = Literal["none", "daily", "weekly", "cycle"]
Pattern = Callable[[FloatArray], FloatArray]

KINDS: tuple[Kind, ...] = (
    "spike", "level_shift", "drift", "variance", "pattern_break", "frequency",
    "stuck", "axis_break",
)  # fmt: skip
PERIODS: tuple[Period, ...] = ("none", "daily", "weekly", "cycle")
MINUTE, HOUR, DAY = 60.0, 3_600.0, 86_400.0
CYCLE = 2.5 * HOUR
START = 1_704_067_200.0  # Monday 2024-01-01T00:00:00Z
STEPS = {"10s": 10.0, "1min": MINUTE, "5min": 5 * MINUTE}
AMPLITUDE = {"low": 12.0, "high": 6.0}  # A, in σ
LOAD = {"low": 8.0, "high": 4.0}  # L, in σ
TRAIN_DAYS = {"none": 2, "daily": 5, "weekly": 15, "cycle": 2}
AXES_TRAIN_DAYS = 2
WANDER_S = 20 * MINUTE
GAP_H = (3.0, 9.0)
SPIKES, REPEATS, AXIS_BREAKS = 4, 2, 4
PERIODIC: tuple[Kind, ...] = ("pattern_break", "frequency")
ANY_PERIOD: tuple[Kind, ...] = ("level_shift", "drift", "variance", "stuck")
# (low, high) of the size (signed when the sign is random) and of the hours.
SIZE = {"spike": (6.0, 10.0), "level_shift": (4.0, 6.0), "drift": (6.0, 10.0)}
SIGNED = frozenset(SIZE)
HOURS = {
    "level_shift": (1.0, 4.0), "drift": (2.0, 8.0), "variance": (0.5, 2.0),
    "stuck": (0.5, 3.0), "axis_break": (1.0, 3.0),
}  # fmt: skip
NOISE_FACTOR = (3.0, 5.0)
SPEED = (2.0, 3.0)
SATURDAY = 5  # weekday numbers from Monday = 0


@dataclass(frozen=True, slots=True)
class Event:
    """An injected anomaly over readings [start, stop) of one axis.

    `magnitude`: the signed size in σ (spike, level_shift, drift), the noise's
    factor (variance), the pattern's time offset in seconds (pattern_break), its
    speed (frequency), L (axis_break), 0 (stuck).
    """

    kind: Kind
    start: int
    stop: int
    axis: int
    magnitude: float


@dataclass(frozen=True, slots=True, eq=False)
class Case:
    """One sensor's readings (rows) × axes, before and after the injection."""

    name: str
    timestamps: FloatArray
    values: FloatArray
    clean: FloatArray  # the same readings before any event was injected
    train: int  # readings [0, train) are the training part
    sigma: FloatArray  # each axis' noise sigma
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class _Slot:
    """An event laid out in time, before it is turned into readings."""

    kind: Kind
    begin: float
    end: float
    magnitude: float


def make_corpus(seed: int = 0) -> list[Case]:
    """Every case of the corpus: one-axis ones for each period × sampling step ×
    noise level, then three-axis ones for each sampling step × noise level."""
    specs = [(p, s, n) for p in PERIODS for s in STEPS for n in AMPLITUDE]
    seeds = np.random.SeedSequence(seed).spawn(len(specs) + len(STEPS) * len(LOAD))
    rngs = iter(np.random.default_rng(s) for s in seeds)
    cases = [_one_axis(p, s, n, next(rngs)) for p, s, n in specs]
    return cases + [_three_axes(s, n, next(rngs)) for s in STEPS for n in LOAD]


def _one_axis(period: Period, step: str, noise: str, rng: np.random.Generator) -> Case:
    kinds: list[Kind] = ["spike"] * SPIKES
    for kind in ANY_PERIOD + (PERIODIC if period != "none" else ()):
        kinds += [kind] * REPEATS
    rng.shuffle(kinds)
    train_end = START + TRAIN_DAYS[period] * DAY
    slots, end = _layout(kinds, period, train_end, rng)
    t = _times(end, STEPS[step])
    level = rng.uniform(1.0, 100.0)
    sigma = level * rng.uniform(0.005, 0.03)
    pattern = _pattern(period, rng.uniform())
    z = rng.normal(size=t.size)
    amplitude = AMPLITUDE[noise]
    clean = level + sigma * (amplitude * pattern(t) + z)
    values = clean.copy()
    events = []
    for slot in slots:
        at = _readings(t, slot)
        if slot.kind == "stuck":
            values[at] = values[at.start - 1]
        else:
            values[at] += sigma * _offset(slot, t[at], pattern, z[at], amplitude)
        events.append(Event(slot.kind, at.start, at.stop, 0, slot.magnitude))
    return Case(
        f"{period}-{step}-{noise}", t, values[:, None], clean[:, None],
        _index(t, train_end), np.array([sigma]), tuple(events),
    )  # fmt: skip


def offset(event: Event) -> FloatArray:
    """What a spike, level shift or drift adds to each of its readings, in σ."""
    if event.kind not in SIGNED:
        raise ValueError(f"a {event.kind} is no offset")
    return _shift(event.kind, event.magnitude, event.stop - event.start)


def _shift(kind: Kind, magnitude: float, size: int) -> FloatArray:
    if kind == "drift":
        return magnitude * np.linspace(0.0, 1.0, size)
    return np.full(size, magnitude)


def _offset(
    slot: _Slot, t: FloatArray, pattern: Pattern, z: FloatArray, amplitude: float
) -> FloatArray:
    """What the event adds to the readings at `t`, in σ (z: their noise)."""
    m = slot.magnitude
    if slot.kind in SIGNED:
        return _shift(slot.kind, m, t.size)
    if slot.kind == "variance":
        return (m - 1.0) * z
    if slot.kind == "pattern_break":
        return amplitude * (pattern(t + m) - pattern(t))
    if slot.kind == "frequency":
        return amplitude * (pattern(t[0] + m * (t - t[0])) - pattern(t))
    raise ValueError(f"{slot.kind} is not a one-axis event")


def _three_axes(step: str, noise: str, rng: np.random.Generator) -> Case:
    train_end = START + AXES_TRAIN_DAYS * DAY
    load = LOAD[noise]
    slots, end = _layout(["axis_break"] * AXIS_BREAKS, "none", train_end, rng)
    t = _times(end, STEPS[step])
    train = _index(t, train_end)
    levels = rng.uniform(1.0, 100.0, 3)
    sigma = levels * rng.uniform(0.005, 0.03, 3)
    w = _wander(t.size, STEPS[step], rng)
    z = rng.normal(size=(t.size, 3))
    clean = levels + sigma * (load * w[:, None] + z)
    values = clean.copy()
    low, high = clean[:train].min(axis=0), clean[:train].max(axis=0)
    events = []
    for slot in slots:
        at, axis = _readings(t, slot), int(rng.integers(3))
        apart = levels[axis] + sigma[axis] * (-load * w[at] + z[at, axis])
        values[at, axis] = np.clip(apart, low[axis], high[axis])
        events.append(Event(slot.kind, at.start, at.stop, axis, load))
    return Case(f"axes-{step}-{noise}", t, values, clean, train, sigma, tuple(events))


def _layout(
    kinds: list[Kind],
    period: Period,
    begin: float,
    rng: np.random.Generator,
) -> tuple[list[_Slot], float]:
    """Events one after the other from `begin`, a normal stretch before each and
    after the last; returns them and the end of the last stretch."""
    slots = []
    cursor = begin
    for kind in kinds:
        start = _aligned(kind, period, cursor + _hours(GAP_H, rng), rng)
        length, magnitude = _shape(kind, period, start, rng)
        slots.append(_Slot(kind, start, start + length, magnitude))
        cursor = start + length
    return slots, cursor + _hours(GAP_H, rng)


def _aligned(
    kind: Kind, period: Period, start: float, rng: np.random.Generator
) -> float:
    """Where a weekly series' pattern events start: on a working day, at 07:00
    for a pattern break, between 04:00 and 08:00 for a frequency change."""
    if period != "weekly" or kind not in PERIODIC:
        return start
    hour = 7.0 if kind == "pattern_break" else rng.uniform(4.0, 8.0)
    day = math.floor(start / DAY) * DAY
    at = day + hour * HOUR
    while at < start or _weekday(at) >= SATURDAY:
        at += DAY
    return at


def _shape(
    kind: Kind, period: Period, start: float, rng: np.random.Generator
) -> tuple[float, float]:
    """(duration in seconds, magnitude) of an event starting at `start`."""
    if kind == "spike":
        return 0.0, _signed(SIZE[kind], rng)
    if kind == "pattern_break":
        if period == "weekly":  # the same hours of the coming Saturday
            return 12 * HOUR, float(SATURDAY - _weekday(start)) * DAY
        if period == "daily":
            return _hours((8.0, 12.0), rng), _signed((6 * HOUR, 9 * HOUR), rng)
        return rng.uniform(2.0, 4.0) * CYCLE, _signed((CYCLE / 4, CYCLE * 0.4), rng)
    if kind == "frequency":
        if period == "cycle":
            return rng.uniform(1.0, 2.0) * CYCLE, rng.uniform(*SPEED)
        return _hours((8.0, 12.0), rng), rng.uniform(*SPEED)
    length = _hours(HOURS[kind], rng)
    if kind in SIGNED:
        return length, _signed(SIZE[kind], rng)
    return length, rng.uniform(*NOISE_FACTOR) if kind == "variance" else 0.0


def _pattern(period: Period, theta: float) -> Pattern:
    """The pattern p(t) within [-1, 1] of epoch seconds t."""

    def daily(t: FloatArray) -> FloatArray:
        return -np.cos(2 * np.pi * (t / DAY - theta))

    def cycle(t: FloatArray) -> FloatArray:
        return -np.cos(2 * np.pi * (t / CYCLE - theta))

    def weekly(t: FloatArray) -> FloatArray:
        hour = np.mod(t, DAY) / HOUR
        bump = _smoothstep((hour - 6.0) / 2.0) * _smoothstep((20.0 - hour) / 2.0)
        weekend = _weekdays(t) >= SATURDAY
        height: FloatArray = -1.0 + np.where(weekend, 0.3, 2.0) * bump
        return height

    def none(t: FloatArray) -> FloatArray:
        return np.zeros(t.size)

    return {"daily": daily, "cycle": cycle, "weekly": weekly, "none": none}[period]


def _smoothstep(x: FloatArray) -> FloatArray:
    x = np.clip(x, 0.0, 1.0)
    step: FloatArray = x * x * (3.0 - 2.0 * x)
    return step


def _weekdays(t: FloatArray) -> npt.NDArray[np.int64]:
    """Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday)."""
    return (np.floor_divide(t, DAY).astype(np.int64) + 3) % 7


def _weekday(t: float) -> int:
    return int(_weekdays(np.array([t]))[0])


def _wander(n: int, step: float, rng: np.random.Generator) -> FloatArray:
    """A smooth Gaussian wander of unit variance: white noise through a Gaussian
    kernel as wide as WANDER_S."""
    width = WANDER_S / step
    half = int(4 * width) + 1
    lags = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (lags / width) ** 2)
    smooth = np.convolve(rng.normal(size=n + 2 * half), kernel, mode="valid")
    wander: FloatArray = (smooth - smooth.mean()) / float(smooth.std())
    return wander


def _times(end: float, step: float) -> FloatArray:
    """Epoch seconds from START to `end`, `step` apart."""
    return START + step * np.arange(math.ceil((end - START) / step), dtype=np.float64)


def _index(t: FloatArray, at: float) -> int:
    """The first reading at or after `at`."""
    return int(np.searchsorted(t, at))


def _readings(t: FloatArray, slot: _Slot) -> slice:
    """The readings an event covers: those in [begin, end), at least one."""
    start = _index(t, slot.begin)
    return slice(start, max(_index(t, slot.end), start + 1))


def _hours(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    return rng.uniform(*bounds) * HOUR


def _signed(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(*bounds))
