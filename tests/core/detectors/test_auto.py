"""`auto`'s trial of a candidate on the held-out readings."""

from __future__ import annotations

import numpy as np
import pytest

from atalaia.core.detectors import auto

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("size", [auto.MIN_HOLDOUT, 100, 2_520])
def test_injected_anomalies_stay_in_the_holdout(size: int) -> None:
    events = auto._events(RNG.normal(0, 1, size))
    assert events.at.shape == (len(events.offset), auto.SHIFT_READINGS)
    assert 0 <= events.at.min() <= events.at.max() < size
    spikes = (events.at == events.at[:, :1]).all(axis=1)
    assert spikes.sum() == spikes.size / 2  # the others are level shifts


def test_an_anomaly_is_found_when_any_of_its_readings_leaves_the_band() -> None:
    values = RNG.normal(0, 1, 1_000)
    events = auto._events(values)
    noise = np.abs(events.offset).min() / min(auto.SIZES)
    # A band 6 noise sigmas wide around the readings themselves: it misses the
    # anomalies of 5 sigmas, finds those of 7, and no reading is outside it.
    width = np.full(values.size, 6 * noise)
    trial = auto._trial(values, values, width, events)
    assert (trial.false_alarm_rate, trial.found) == (0.0, 0.5)
    # Narrow at one reading of each anomaly only: each is found.
    width[events.at[:, -1]] = 4 * noise
    assert auto._trial(values, values, width, events).found == 1.0
