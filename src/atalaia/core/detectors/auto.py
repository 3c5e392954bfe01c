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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from atalaia.core.detectors.base import FloatArray
from atalaia.core.detectors.phases import PhaseBand
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


FitBand = Callable[[str, Readings, Mapping[str, float]], PhaseBand]


def choose(
    readings: Readings, fit: FitBand, candidates: Sequence[str]
) -> tuple[Choice, PhaseBand]:
    """The candidate family for `readings` (see the module's docstring) and its
    band fitted on all of them; `fit` fits a family with hyperparameters."""
    full = {name: fit(name, readings, {}) for name in candidates}
    n = len(readings)
    cut = n - max(int(n * HOLDOUT), MIN_HOLDOUT)
    if cut < MIN_HOLDOUT:
        last = candidates[-1]
        return Choice(last, "too few readings to hold any out", {}), full[last]
    train = Readings(readings.timestamps[:cut], readings.values[:cut])
    held = Readings(readings.timestamps[cut:], readings.values[cut:])
    events = _events(held.values)
    trials = {
        name: _trial(fit(name, train, _pinned(full[name])), held, events)
        for name in candidates
    }
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


def _pinned(band: PhaseBand) -> dict[str, float]:
    """A seasonal band's period and phases, to fit the same shape again."""
    if band.phases < 2:
        return {}
    return {"period_s": band.period, "phases": float(band.phases)}


@dataclass(frozen=True, slots=True)
class Event:
    """An injected anomaly: `offset` added to the readings `at`."""

    at: slice
    offset: float


def _trial(band: PhaseBand, held: Readings, events: list[Event]) -> Trial:
    expected, width = band.at(held.timestamps)
    residual = held.values - expected
    clean = np.abs(residual) > width
    found = sum(
        bool((np.abs(residual[e.at] + e.offset) > width[e.at]).any()) for e in events
    )
    return Trial(float(clean.mean()), found / max(len(events), 1))


def _events(values: FloatArray) -> list[Event]:
    """Spikes and level shifts of each size, each in its own random place."""
    noise = median_and_sigma(np.diff(values))[1] / np.sqrt(2.0)
    rng = np.random.default_rng(SEED)
    events = []
    for size in SIZES:
        for length in (1, SHIFT_READINGS):
            for _ in range(EVENTS):
                start = int(rng.integers(0, max(values.size - length, 1)))
                sign = float(rng.choice((-1.0, 1.0)))
                events.append(Event(slice(start, start + length), sign * size * noise))
    return events
