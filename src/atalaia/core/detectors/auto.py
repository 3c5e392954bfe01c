"""`auto`: the family of a series chosen from its own training data.

Each candidate family is fitted on every training reading, then again on all
but the last HOLDOUT of them (a seasonal candidate keeping the period and
phases it found on all: a holdout can hold too few cycles to find them). This
second fit scores the held-out readings twice: as they are (its false-alarm
rate on readings it has not seen) and with anomalies of known places and sizes
injected (spikes and level shifts of SIZES noise sigmas, the noise measured on
first differences, so whatever the family; each event judged on its own). The
candidate that finds the most injected anomalies wins among those whose
false-alarm rate stays within FALSE_ALARM_BUDGET, give or take one alarm
(when none does, among those with the fewest false alarms); ties go to fewer
false alarms, then to the family listed first in CANDIDATES. Its fit on every
reading is the model; each candidate's figures and the reason are kept with
it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.phases import BandFit, IntArray
from atalaia.core.detectors.robust import median_and_sigma
from atalaia.core.series import Readings

NAME = "auto"
# Ties go to the first: the widest band of the quiet ones (seasonal falls back
# to 4 robust sigmas, robust is 3.5, zscore 3), the least likely to cry wolf.
CANDIDATES = ("seasonal", "robust", "zscore")
HOLDOUT = 0.25
FALSE_ALARM_BUDGET = 1e-3  # of the clean holdout's readings
SIZES = (5.0, 7.0)  # injected anomalies, in noise sigmas
EVENTS = 8  # injected of each kind and size
SHIFT_READINGS = 12  # how long an injected level shift lasts
MIN_HOLDOUT = 64
SEED = 20_261_202


@dataclass(frozen=True, slots=True)
class Trial:
    """How a candidate did on the holdout."""

    false_alarm_rate: float
    found: float  # the share of injected anomalies it flagged

    def as_dict(self) -> dict[str, float]:
        return {"false_alarm_rate": self.false_alarm_rate, "found": self.found}


@dataclass(frozen=True, slots=True)
class Choice:
    algorithm: str
    reason: str
    trials: dict[str, Trial]

    def metrics(self) -> dict[str, float | str]:
        """The choice, why, and each candidate's figures, as flat metrics."""
        figures: dict[str, float | str] = {
            f"auto_{name}_{key}": value
            for name, trial in self.trials.items()
            for key, value in trial.as_dict().items()
        }
        return figures | {"auto_chosen": self.algorithm, "auto_reason": self.reason}


# Fits a family with its defaults on readings; given the family's fit on more
# readings that begin with these, a band of the same shape (see `choose`).
FitBand = Callable[[str, Readings, BandFit | None], BandFit]


def choose(
    readings: Readings, fit: FitBand, candidates: Sequence[str]
) -> tuple[Choice, BandFit]:
    """The candidate family for `readings` (see the module's docstring) and its
    band fitted on all of them."""
    full = {name: fit(name, readings, None) for name in candidates}
    n = len(readings)
    cut = n - max(int(n * HOLDOUT), MIN_HOLDOUT)
    if cut < MIN_HOLDOUT:
        last = candidates[-1]
        return Choice(last, "too few readings to hold any out", {}), full[last]
    train = Readings(readings.timestamps[:cut], readings.values[:cut])
    held = Readings(readings.timestamps[cut:], readings.values[cut:])
    events = _events(held.values)
    trials = {}
    for name in candidates:
        band = fit(name, train, full[name]).band
        # A band of the same shape as the full fit's places the held readings
        # where that fit did.
        phasing = full[name].phasing
        at = band.at(held.timestamps, None if phasing is None else phasing[cut:])
        trials[name] = _trial(held.values, *at, events)
    fewest = min(t.false_alarm_rate for t in trials.values())
    # One chance alarm is within any budget: a short holdout cannot tell it from
    # a rate of a few in ten thousand.
    allowed = (FALSE_ALARM_BUDGET * len(held) + 1) / len(held)
    quiet = [c for c in candidates if trials[c].false_alarm_rate <= allowed]
    pool = quiet or [c for c in candidates if trials[c].false_alarm_rate == fewest]
    best = min(
        pool,
        key=lambda c: (
            -trials[c].found,
            trials[c].false_alarm_rate,
            candidates.index(c),
        ),
    )
    t = trials[best]
    reason = (
        f"found {t.found:.0%} of the anomalies injected into the last "
        f"{HOLDOUT:.0%} of the training readings, with {t.false_alarm_rate:.2%} "
        "false alarms on them as they are"
    )
    if not quiet:
        reason += f" (no candidate kept within {FALSE_ALARM_BUDGET:.1%})"
    return Choice(best, reason, trials), full[best]


@dataclass(frozen=True, slots=True)
class Events:
    """Injected anomalies: each one's `offset`, added to the readings `at` (a
    row of indexes each: a level shift's readings, a spike's one repeated)."""

    at: IntArray
    offset: FloatArray


def _trial(
    values: FloatArray, expected: FloatArray, width: FloatArray, events: Events
) -> Trial:
    residual = values - expected
    clean = np.abs(residual) > width
    hit = np.abs(residual[events.at] + events.offset[:, None]) > width[events.at]
    found = int(hit.any(axis=1).sum())
    return Trial(float(clean.mean()), found / max(len(events.offset), 1))


def _events(values: FloatArray) -> Events:
    """Spikes and level shifts of each size, each in its own random place."""
    noise = median_and_sigma(np.diff(values))[1] / np.sqrt(2.0)
    at, sigmas = _placements(values.size)
    return Events(at, sigmas * noise)


@lru_cache(maxsize=256)
def _placements(size: int) -> tuple[IntArray, FloatArray]:
    """The readings each injected anomaly touches in a holdout of `size` (see
    `Events.at`), and its offset in noise sigmas; the same for every holdout of
    that size."""
    rng = np.random.default_rng(SEED)
    rows, sigmas = [], []
    for sigma in SIZES:
        for length in (1, SHIFT_READINGS):
            for _ in range(EVENTS):
                start = int(rng.integers(0, max(size - length, 1)))
                sign = float(rng.choice((-1.0, 1.0)))
                rows.append(start + np.minimum(np.arange(SHIFT_READINGS), length - 1))
                sigmas.append(sign * sigma)
    at, offsets = np.array(rows), np.array(sigmas)
    at.flags.writeable = offsets.flags.writeable = False
    return at, offsets
