"""How an answer explains an anomaly: which side of the band it fell on, and why
it is one (the documented list of reasons)."""

from __future__ import annotations

from enum import StrEnum


class Direction(StrEnum):
    ABOVE = "above"
    BELOW = "below"


class Reason(StrEnum):
    """Why a reading is an anomaly."""

    # Outside a flat band: centre ± threshold × spread (zscore, robust, and the
    # fallback on a series' history).
    OUTSIDE_BAND = "outside_band"
    # Outside the band expected at that phase of the series' period (seasonal).
    OUTSIDE_SEASONAL_BAND = "outside_seasonal_band"
    # A sensor's axes no longer move as in training (multivariate): one left
    # the others, even within its own range.
    AXIS_CORRELATION_BREAK = "axis_correlation_break"
    # The pattern of the recent readings was isolated faster than any seen in
    # training (isolation_forest): a stuck sensor, a burst of noise...
    ISOLATED_PATTERN = "isolated_pattern"
    # The reading repeats one value for longer than the series' training ever
    # did (auto's stuck guard): a flatlined sensor, a frozen transmitter.
    STUCK = "stuck"
    # The recent readings departed from the one-step forecast more than the
    # series' residuals ever do (forecast's anomaly likelihood), or one
    # reading departed from it by far.
    FORECAST_DEVIATION = "forecast_deviation"
    # The series' level moved and stays moved (changepoint: a CUSUM crossed its
    # threshold; a drift moves it again and again) until it returns or the
    # change is absorbed.
    LEVEL_SHIFT = "level_shift"
    # The readings' spread around their level grew (changepoint).
    VARIANCE_CHANGE = "variance_change"
    # The reading came after a gap of more expected intervals than allowed
    # (the stuck family): the sensor or its link dropped out meanwhile.
    DROPOUT = "dropout"
