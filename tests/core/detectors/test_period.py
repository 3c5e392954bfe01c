"""Finding a series' period from its readings."""

from __future__ import annotations

import numpy as np
import pytest

from atalaia.core.detectors.period import DAY, HOUR, WEEK, find_period

RNG = np.random.default_rng(7)
MINUTES = np.arange(0.0, 15 * DAY, 60.0)


def _noisy(signal: np.ndarray, sigma: float = 0.1) -> np.ndarray:
    return signal + RNG.normal(0, sigma, signal.size)


@pytest.mark.parametrize(
    ("signal", "period"),
    [
        (np.sin(2 * np.pi * MINUTES / DAY), DAY),
        (np.sin(2 * np.pi * MINUTES / HOUR), HOUR),
        # Busy from 8 to 17 every day: a square wave, not a sine.
        ((((MINUTES % DAY) > 8 * HOUR) & ((MINUTES % DAY) < 17 * HOUR)) * 1.0, DAY),
        # A daily cycle on weekdays only repeats at a week, not at a day.
        (
            np.where((MINUTES // DAY) % 7 < 5, np.sin(2 * np.pi * MINUTES / DAY), 0),
            WEEK,
        ),
        # Not a calendar period: found from the data, precise enough to stay in
        # phase over hundreds of cycles.
        (np.sin(2 * np.pi * MINUTES / 2220.0), 2220.0),
        (np.sign(np.sin(2 * np.pi * MINUTES / 1234.5)), 1234.5),
    ],
)
def test_finds_the_period_of_a_repeating_series(
    signal: np.ndarray, period: float
) -> None:
    found = find_period(MINUTES, _noisy(signal))
    assert found is not None
    assert abs(found - period) * (MINUTES[-1] / period) < 0.1 * period


@pytest.mark.parametrize(
    "values",
    [
        RNG.normal(size=MINUTES.size),  # noise
        MINUTES / 1e5 + RNG.normal(size=MINUTES.size),  # a trend is no season
        np.cumsum(RNG.normal(size=MINUTES.size)),  # a random walk neither
        np.ones(MINUTES.size),  # flat
    ],
)
def test_a_series_that_does_not_repeat_has_no_period(values: np.ndarray) -> None:
    assert find_period(MINUTES, values) is None


def test_a_period_needs_two_cycles_and_enough_readings() -> None:
    one_day = MINUTES[MINUTES < DAY * 1.5]
    assert find_period(one_day, np.sin(2 * np.pi * one_day / DAY)) is None
    few = np.arange(0.0, 20.0)
    assert find_period(few, np.sin(few)) is None


def test_irregular_timestamps_with_gaps() -> None:
    kept = np.sort(RNG.choice(MINUTES, MINUTES.size // 3, replace=False))
    kept = kept[(kept < 5 * DAY) | (kept > 7 * DAY)]  # two days missing
    assert find_period(kept, _noisy(np.cos(2 * np.pi * kept / DAY))) == DAY


def test_a_period_of_a_few_readings_is_found_and_the_search_ends() -> None:
    """Its refinement cannot take a larger multiple: it stops there."""
    seconds = np.arange(400.0)
    period = find_period(seconds, np.sin(2 * np.pi * seconds / 3))
    assert period == pytest.approx(3.0, rel=1e-6)
