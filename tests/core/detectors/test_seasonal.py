"""The seasonal detector's bands, and the phase pools that score many series."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from atalaia.core.detectors.period import DAY, WEEK
from atalaia.core.detectors.phases import BandPools, PhaseBand, Phasing
from atalaia.core.detectors.seasonal import Seasonal, _Groups

RNG = np.random.default_rng(3)
START = 1.7e9 - 1.7e9 % WEEK  # a week boundary
MINUTES = START + np.arange(0.0, 14 * DAY, 60.0)
DEFAULTS = Seasonal.defaults


def _daily(t: np.ndarray, noise: float = 0.01) -> np.ndarray:
    return 0.3 + 0.1 * np.sin(2 * np.pi * t / DAY) + RNG.normal(0, noise, t.size)


def _score(band: PhaseBand, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    expected, width = BandPools.of([band]).at(np.zeros(t.size, np.int64), t)
    return np.abs(v - expected) / width


def test_a_reading_normal_at_another_hour_is_an_anomaly_at_its_own() -> None:
    band = Seasonal().fit_band(MINUTES, _daily(MINUTES), DEFAULTS)
    midnight = MINUTES[-1] - MINUTES[-1] % DAY + DAY  # expected 0.3 there
    quarter = midnight + DAY / 4  # expected 0.4
    scores = _score(band, np.array([midnight, quarter]), np.array([0.5, 0.4]))
    assert scores[0] > 1 > scores[1]


def test_training_readings_are_rarely_flagged() -> None:
    values = _daily(MINUTES)
    band = Seasonal().fit_band(MINUTES, values, DEFAULTS)
    assert (_score(band, MINUTES, values) > 1).mean() < 1e-3


def test_weekday_cycles_get_hour_of_week_phases() -> None:
    weekday = (MINUTES - START) // DAY % 7 < 5
    values = np.where(weekday, np.sin(2 * np.pi * MINUTES / DAY), 0.0)
    band = Seasonal().fit_band(
        MINUTES, values + RNG.normal(0, 0.05, MINUTES.size), DEFAULTS
    )
    assert (band.period, band.phases) == (WEEK, 168)
    saturday_noon = START + 5 * DAY + DAY / 2 + 2 * WEEK
    assert _score(band, np.array([saturday_noon]), np.array([1.0]))[0] > 1


def test_a_series_without_a_period_gets_one_robust_phase() -> None:
    band = Seasonal().fit_band(MINUTES, RNG.normal(5, 2, MINUTES.size), DEFAULTS)
    assert band.phases == 1
    assert band.base == pytest.approx(5, abs=0.1)
    assert band.width[0] == pytest.approx(4.5 * 2, rel=0.05)


def test_given_period_and_phases_are_used() -> None:
    hp = {**DEFAULTS, "period_s": DAY, "phases": 48}
    band = Seasonal().fit_band(MINUTES, _daily(MINUTES), hp)
    assert (band.period, band.phases) == (DAY, 48)


def test_few_readings_get_fewer_phases() -> None:
    t = MINUTES[::30][:400]  # every 30 minutes, a bit over 8 days
    band = Seasonal().fit_band(t, _daily(t), DEFAULTS)
    assert band.period == DAY
    assert 2 <= band.phases <= 400 // 8


def test_spikes_in_training_do_not_widen_the_band() -> None:
    values = _daily(MINUTES)
    clean = Seasonal().fit_band(MINUTES, values, DEFAULTS)
    values[RNG.choice(values.size, values.size // 500)] += 5.0
    spiky = Seasonal().fit_band(MINUTES, values, DEFAULTS)
    assert spiky.width.max() < 1.2 * clean.width.max()


def test_a_fit_on_the_first_readings_can_keep_the_phasing_of_all() -> None:
    values = _daily(MINUTES)
    full = Seasonal().fit(MINUTES, values, DEFAULTS)
    assert full.phasing is not None
    cut = MINUTES.size * 3 // 4
    shape = {"period_s": full.band.period, "phases": full.band.phases}
    alone = Seasonal().fit_band(MINUTES[:cut], values[:cut], DEFAULTS | shape)
    kept = Seasonal().fit_phased(full.phasing[:cut], values[:cut], DEFAULTS).band
    assert (kept.period, kept.base) == (alone.period, alone.base)
    assert kept.departure.tobytes() == alone.departure.tobytes()
    assert kept.width.tobytes() == alone.width.tobytes()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.booleans(), st.data())
def test_phase_medians_are_each_phase_s_median(
    phases: int, even: bool, data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, 400))
    if even:  # a long series' phases (a table, a row a phase)
        slot = np.arange(size) % phases
    else:  # as uneven as a few readings' (the whole series sorted)
        slot = data.draw(
            hnp.arrays(np.int64, size, elements=st.integers(0, phases - 1))
        )
    values = data.draw(hnp.arrays(np.float64, size, elements=st.floats(-1e6, 1e6)))
    medians = _Groups.of(slot, phases).median(values)
    for phase in range(phases):
        mine = values[slot == phase]
        if mine.size:
            assert medians[phase] == np.median(mine)
        else:
            assert np.isnan(medians[phase])


bands = st.builds(
    lambda period, base, parts: PhaseBand(
        period,
        base,
        np.array([d for d, _ in parts], np.float32),
        np.array([w for _, w in parts], np.float32),
    ),
    st.floats(1.0, 1e6),
    st.floats(-1e6, 1e6),
    st.lists(
        st.tuples(
            st.floats(-1e3, 1e3, width=32), st.floats(0.0009765625, 1e3, width=32)
        ),
        min_size=1,
        max_size=30,
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(bands, min_size=1, max_size=8),
    hnp.arrays(np.float64, 50, elements=st.floats(9e8, 4e9)),
    st.data(),
)
def test_pools_score_each_series_as_its_own_band(
    many: list[PhaseBand], timestamps: np.ndarray, data: st.DataObject
) -> None:
    rows = np.array(
        data.draw(st.lists(st.integers(0, len(many) - 1), min_size=50, max_size=50))
    )
    expected, width = BandPools.of(many).at(rows, timestamps)
    for i, row in enumerate(rows.tolist()):
        alone = BandPools.of([many[row]]).at(
            np.zeros(1, np.int64), timestamps[i : i + 1]
        )
        assert expected[i] == alone[0][0]
        assert width[i] == alone[1][0]
        band = many[row]
        assert (
            band.base + band.departure.min() - 1e-6 * abs(band.base) - 1e-3
            <= expected[i]
        )
        assert (
            expected[i]
            <= band.base + band.departure.max() + 1e-6 * abs(band.base) + 1e-3
        )
        assert width[i] > 0


@settings(max_examples=200, deadline=None)
@given(
    bands.filter(lambda band: band.phases > 1),
    hnp.arrays(np.float64, 50, elements=st.floats(9e8, 4e9)),
    st.integers(0, 50),
)
def test_a_band_at_known_phases_is_the_band_the_pools_score(
    band: PhaseBand, timestamps: np.ndarray, start: int
) -> None:
    rows = np.zeros(timestamps.size, np.int64)
    pooled = BandPools.of([band]).at(rows, timestamps)
    phasing = Phasing.of(timestamps, band.period, band.phases)
    for at in (band.at(timestamps), band.at(timestamps, phasing)):
        assert at[0].tobytes() == pooled[0].tobytes()
        assert at[1].tobytes() == pooled[1].tobytes()
    later = band.at(timestamps[start:], phasing[start:])
    assert later[0].tobytes() == pooled[0][start:].tobytes()
