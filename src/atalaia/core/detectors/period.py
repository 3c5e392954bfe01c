"""Finding the period of a series: the lag at which it best repeats itself.

The readings are binned onto a regular grid, detrended, and their
autocorrelation computed by FFT. The candidates are the calendar periods (an
hour, a day, a week) that fit at least twice in the data, and the first peak of
the autocorrelation, refined on its farthest multiple (so that a period a little
off does not drift out of phase over many cycles) and snapped to a calendar
period within 2 %. A candidate counts only where the autocorrelation turned
negative before it (a slow signal is not a repetition). The shortest candidate
whose autocorrelation is within `TOLERANCE` of the best wins: a daily cycle also
repeats weekly, and the day needs seven times fewer phases; a cycle whose
weekdays differ from its weekends repeats much better at a week than at a day.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.robust import median_and_sigma

FloatArray = npt.NDArray[np.float64]

HOUR, DAY, WEEK = 3600.0, 86400.0, 604800.0
CALENDAR = (HOUR, DAY, WEEK)
MIN_ACF = 0.3  # a weaker repetition is not a season worth modelling
TOLERANCE = 0.1
MAX_GRID = 1 << 15  # bins of the regular grid, at most
MIN_READINGS = 32
MIN_LAG_BINS = 4  # a period spans at least this many bins of the grid
CLIP = 5.0
SNAP = 0.02  # a period found this close to a calendar one is the calendar one
FOLD_SLOTS = 24  # phase slots of a folded profile
FOLD_TRIES = 41  # lags tried around a refined one, in each round
MIN_STEP = 1e-6  # of the lag: the search for a folded period stops below it
HARMONICS = 6  # of the smooth cycle a period is refined with
REFINE_BINS = 2048
UNCERTAINTY = 0.1  # of a lag: how far the top of an autocorrelation hump may be
MIN_EXPLAINED = 0.25  # of a later half's variance, by the earlier half's profile


def find_period(timestamps: FloatArray, values: FloatArray) -> float | None:
    """The period of the series in seconds, or None when it does not repeat.

    `timestamps` are epoch seconds in increasing order.

    >>> t = np.arange(0.0, 7 * DAY, 600.0)
    >>> find_period(t, np.sin(2 * np.pi * t / DAY))
    86400.0
    >>> find_period(t, np.random.default_rng(0).normal(size=t.size)) is None
    True
    """
    if timestamps.size < MIN_READINGS:
        return None
    span = float(timestamps[-1] - timestamps[0])
    spacing = float(np.median(np.diff(timestamps)))
    if not span > 0 or not spacing > 0:
        return None
    step = max(spacing, span / MAX_GRID)
    grid = _regular(timestamps - timestamps[0], values, step)
    acf = _autocorrelation(grid)
    if acf is None:
        return None
    calendar = [p for p in CALENDAR if p / step >= MIN_LAG_BINS and p / step < acf.size]
    candidates = [(p, _peak_near(acf, p / step)) for p in calendar]
    first = _first_peak(acf)
    if first is not None and not any(
        abs(first * step / p - 1) < SNAP for p in calendar
    ):
        candidates.append((first * step, float(acf[round(first)])))
    good = [(p, r) for p, r in candidates if r >= MIN_ACF]
    if not good:
        return None
    best = max(r for _, r in good)
    period = min(p for p, r in good if r >= best - TOLERANCE)
    if period not in CALENDAR:
        period = _folded(grid, *_refined(acf, period / step)) * step
    return period if _repeats(grid, period / step) else None


def _fold(
    grid: FloatArray, lag: float, part: slice = slice(None)
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Each grid bin's phase slot for a period of `lag` bins, and each slot's
    mean over the bins of `part`. FOLD_SLOTS slots, or one a bin for a shorter
    lag: more slots than bins would fit noise."""
    slots = min(FOLD_SLOTS, int(lag))
    at = np.arange(grid.size, dtype=np.float64)
    slot = (np.mod(at, lag) * (slots / lag)).astype(np.int64)
    counts = np.bincount(slot[part], minlength=slots)
    sums = np.bincount(slot[part], grid[part], minlength=slots)
    profile: FloatArray = sums / np.maximum(counts, 1)
    return profile, slot


def _folded(grid: FloatArray, lag: float, error: float) -> float:
    """The lag within `error` of `lag` whose folded profile explains the most
    of the grid: precise enough to stay in phase over every cycle. Each round
    searches around the previous one's best, FOLD_TRIES / 2 times closer, until
    a step is below MIN_STEP of the lag; on a grid of at most REFINE_BINS bins
    (bin means), as the smooth cycle needs no finer one."""
    merge = -(-grid.size // REFINE_BINS)
    if merge > 1:
        grid = grid[: grid.size // merge * merge].reshape(-1, merge).mean(axis=1)
        return _folded(grid, lag / merge, error / merge) * merge
    while True:
        tries = np.linspace(lag - error, lag + error, FOLD_TRIES)
        left = [_unexplained(grid, at) for at in tries]
        lag = float(tries[int(np.argmin(left))])
        error = 2 * error / (FOLD_TRIES - 1)
        if error < MIN_STEP * lag:
            return lag


def _unexplained(grid: FloatArray, lag: float) -> float:
    """What a smooth cycle of `lag` bins (HARMONICS sines and cosines) leaves
    of the grid: unlike a binned profile's, it varies smoothly with the lag."""
    at = np.arange(grid.size, dtype=np.float64) * (2 * np.pi / lag)
    harmonics = min(HARMONICS, max(int(lag) // 4, 1))
    k = np.arange(1, harmonics + 1)
    basis = np.column_stack(
        [np.ones(grid.size), np.cos(np.outer(at, k)), np.sin(np.outer(at, k))]
    )
    _, residual, *_ = np.linalg.lstsq(basis, grid, rcond=None)
    return float(residual[0]) if residual.size else 0.0


def _repeats(grid: FloatArray, lag: float) -> bool:
    """Whether the profile of the first half's cycles explains at least
    MIN_EXPLAINED of the second half's variance: a season repeats, a wander
    that happened to correlate does not."""
    half = grid.size // 2
    if half < lag:
        return False
    profile, slot = _fold(grid, lag, slice(None, half))
    later = grid[half:]
    left = np.square(later - profile[slot[half:]]).sum()
    total = np.square(later - later.mean()).sum()
    return bool(total > 0 and 1 - left / total >= MIN_EXPLAINED)


def _regular(offsets: FloatArray, values: FloatArray, step: float) -> FloatArray:
    """Bin means on a grid of `step` seconds, gaps filled linearly, detrended,
    and clipped to CLIP robust sigmas (spikes would dominate the correlation)."""
    bins = (offsets / step).astype(np.int64)
    size = int(bins[-1]) + 1
    counts = np.bincount(bins, minlength=size)
    sums = np.bincount(bins, values, minlength=size)
    filled = counts > 0
    at = np.arange(size, dtype=np.float64)
    grid = np.interp(at, at[filled], sums[filled] / counts[filled])
    # Less its least-squares line, in closed form (ten times np.polyfit's speed).
    centred = at - at[-1] / 2
    slope = float(centred @ grid) / float(centred @ centred)
    detrended = grid - grid.mean() - slope * centred
    median, sigma = median_and_sigma(detrended)
    clipped: FloatArray = np.clip(
        detrended, median - CLIP * sigma, median + CLIP * sigma
    )
    return clipped


def _autocorrelation(grid: FloatArray) -> FloatArray | None:
    """The autocorrelation at lags 0 … half the grid, or None for a flat grid."""
    size = grid.size
    spectrum = np.fft.rfft(grid, 2 * size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum))[: size // 2 + 1]
    if not acov[0] > 0:
        return None
    # Each lag divided by how many pairs it has, so long lags are not shrunk.
    acf: FloatArray = acov / acov[0] * size / (size - np.arange(acov.size))
    return acf


def _peak_near(acf: FloatArray, lag: float) -> float:
    """The autocorrelation at `lag` bins (the best of its neighbours), or 0 when
    it never turned negative before: a slow signal, not a repetition."""
    at = round(lag)
    if not (acf[1:at] < 0).any():
        return 0.0
    return float(acf[max(at - 1, 1) : at + 2].max())


def _first_peak(acf: FloatArray) -> float | None:
    """The lag, in bins, of the top of the autocorrelation's first hump above
    MIN_ACF after it first turned negative."""
    negative = np.flatnonzero(acf < 0)
    if not negative.size:
        return None
    above = np.flatnonzero(acf[negative[0] :] >= MIN_ACF)
    if not above.size:
        return None
    start = int(negative[0] + above[0])
    below = np.flatnonzero(acf[start:] < MIN_ACF)
    end = start + int(below[0]) if below.size else acf.size
    return float(start + int(np.argmax(acf[start:end])))


def _refined(acf: FloatArray, lag: float) -> tuple[float, float]:
    """`lag` made precise on its multiples, with how far off it may still be:
    the peak near k × lag, looked for within k times the uncertainty (and less
    than half a period away), is as uncertain as the first one, so it gives the
    lag k times more precisely."""
    reach = UNCERTAINTY * lag  # bins: how far a hump's top may be from the lag
    error, k = reach, 1
    while True:
        wider = min(int(0.4 * lag / error), int((acf.size - 2) / lag))
        if wider <= k:
            return lag, error
        k = wider
        lo = max(int(k * (lag - error)), 1)
        hi = min(int(k * (lag + error)) + 2, acf.size)
        lag = (lo + int(np.argmax(acf[lo:hi]))) / k
        error = reach / k
