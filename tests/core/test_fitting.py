"""Fitting many series at once gives each exactly what fitting it alone gives."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from atalaia import detection
from atalaia.core.detectors import DETECTORS, fit, score_columns
from atalaia.core.drift import reference_profile
from atalaia.core.fitting import fit_series
from atalaia.core.series import Readings
from fixtures.readings import sensor_readings, sensor_series

# Two lengths, interleaved: two stacks whose results must land in input order.
SERIES = [
    sensor_readings(10_080, seed=1),
    sensor_readings(12_000, seed=2, spikes=[10, 500]),
    sensor_readings(10_080, seed=3, spikes=[7]),
]


@pytest.mark.parametrize("algorithm", sorted(DETECTORS))
class TestFitSeries:
    def test_fits_each_series_as_alone(self, algorithm: str) -> None:
        fits = fit_series(algorithm, {"threshold_sigma": 4}, SERIES)
        assert [f.params for f in fits] == [
            fit(algorithm, r.values, {"threshold_sigma": 4}) for r in SERIES
        ]

    def test_profiles_each_series_as_alone(self, algorithm: str) -> None:
        fits = fit_series(algorithm, {}, SERIES)
        assert [f.reference for f in fits] == [
            reference_profile(r.values) for r in SERIES
        ]

    def test_keeps_training_metrics(self, algorithm: str) -> None:
        fits = fit_series(algorithm, {}, SERIES)
        for readings, fitted in zip(SERIES, fits, strict=True):
            p = fitted.params
            one = np.ones(1)
            _, flagged = score_columns(
                p.center * one, p.scale * one, p.threshold * one, readings.values
            )
            assert fitted.metrics["training_points"] == len(readings)
            assert fitted.metrics["training_anomaly_rate"] == flagged.mean()
            assert float(fitted.metrics["fit_seconds"]) >= 0


class TestPhasedFits:
    def test_a_seasonal_fit_is_the_library_s(self) -> None:
        fits = fit_series("seasonal", {"threshold_sigma": 4.5}, SERIES)
        for readings, fitted in zip(SERIES, fits, strict=True):
            model = detection.fit("seasonal", readings.timestamps, readings.values)
            assert isinstance(model, detection.BandModel)
            band = model.band
            assert fitted.band is not None
            assert fitted.band.period == band.period == 86_400.0
            assert fitted.band.width.tolist() == band.width.tolist()
            assert fitted.params.center == band.base
            assert fitted.metrics["phases"] == 24.0

    def test_the_training_anomaly_rate_is_the_band_s(self) -> None:
        for algorithm in ("seasonal", "auto"):
            fits = fit_series(algorithm, {}, SERIES)
            for readings, fitted in zip(SERIES, fits, strict=True):
                assert fitted.band is not None
                expected, width = fitted.band.at(readings.timestamps)
                flagged = np.abs(readings.values - expected) > width
                assert fitted.metrics["training_anomaly_rate"] == flagged.mean()

    def test_auto_serves_what_it_chose_and_says_why(self) -> None:
        daily = SERIES[0]
        noise = Readings.of(*sensor_series(10_080, seed=4, amplitude=0.0))
        fits = fit_series("auto", {}, [daily, noise])

        assert fits[0].algorithm == fits[0].metrics["auto_chosen"] == "seasonal"
        assert fits[0].band is not None
        assert "found" in str(fits[0].metrics["auto_reason"])
        assert float(fits[0].metrics["auto_seasonal_found"]) > float(
            fits[0].metrics["auto_zscore_found"]
        )
        assert fits[1].band is None  # no period: a flat band, whichever family


def test_hashes_the_timestamps_then_the_values() -> None:
    readings = Readings.of([1.0, 2.0], [0.5, 0.25])
    digest = hashlib.sha256(readings.timestamps.tobytes() + readings.values.tobytes())

    (fitted,) = fit_series("zscore", {}, [readings])

    assert fitted.data_hash == f"sha256:{digest.hexdigest()}"
