from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from atalaia.core.drift import (
    MIN_RECENT_POINTS,
    PSI_DRIFT,
    detect_data_drift,
    population_stability,
    reference_profile,
)
from atalaia.core.series import FloatArray
from fixtures.readings import sensor_series


def normal(mean: float, std: float, n: int, *, seed: int) -> FloatArray:
    return np.random.default_rng(seed).normal(mean, std, n)


@pytest.fixture
def reference() -> dict[str, Any]:
    return reference_profile(normal(0.0, 1.0, 10_080, seed=0))


class TestReferenceProfile:
    def test_summarizes_the_training_values(self) -> None:
        _, values = sensor_series()
        profile = reference_profile(values)
        assert profile["count"] == values.size
        assert profile["mean"] == pytest.approx(float(values.mean()))
        assert profile["std"] == pytest.approx(float(values.std()))
        assert (
            profile["min"] <= profile["quantiles"]["p1"] <= profile["quantiles"]["p99"]
        )
        assert profile["quantiles"]["p99"] <= profile["max"]
        assert set(profile["quantiles"]) == {
            "p1",
            "p5",
            "p25",
            "p50",
            "p75",
            "p95",
            "p99",
        }

    def test_keeps_nine_increasing_decile_edges(self) -> None:
        edges = reference_profile(normal(0.0, 1.0, 5_000, seed=1))["decile_edges"]
        assert len(edges) == 9
        assert edges == sorted(edges)


class TestDetectDataDrift:
    def test_reports_no_drift_on_the_same_distribution(
        self, reference: dict[str, Any]
    ) -> None:
        drift = detect_data_drift(reference, normal(0.0, 1.0, 1_440, seed=1))
        assert not drift.detected
        assert drift.psi < PSI_DRIFT / 4
        assert drift.mean_shift_sigma < 0.1
        assert drift.recent_points == 1_440

    def test_detects_a_shifted_mean(self, reference: dict[str, Any]) -> None:
        drift = detect_data_drift(reference, normal(1.5, 1.0, 1_440, seed=2))
        assert drift.detected
        assert drift.psi > PSI_DRIFT
        assert drift.mean_shift_sigma == pytest.approx(1.5, abs=0.1)

    def test_detects_a_wider_spread_with_the_same_mean(
        self, reference: dict[str, Any]
    ) -> None:
        drift = detect_data_drift(reference, normal(0.0, 3.0, 1_440, seed=3))
        assert drift.detected
        assert drift.mean_shift_sigma < 0.3

    def test_decides_nothing_when_too_few_points(
        self, reference: dict[str, Any]
    ) -> None:
        drift = detect_data_drift(
            reference, normal(50.0, 1.0, MIN_RECENT_POINTS - 1, seed=4)
        )
        assert not drift.detected
        assert drift.recent_points == MIN_RECENT_POINTS - 1
        assert drift.psi == 0.0

    def test_decides_from_the_minimum_number_of_points(
        self, reference: dict[str, Any]
    ) -> None:
        drift = detect_data_drift(
            reference, normal(50.0, 1.0, MIN_RECENT_POINTS, seed=5)
        )
        assert drift.detected


class TestPopulationStability:
    def test_is_near_zero_for_the_training_data_itself(self) -> None:
        values = normal(0.0, 1.0, 10_000, seed=6)
        assert population_stability(reference_profile(values), values) < 1e-3

    def test_grows_with_the_shift(self, reference: dict[str, Any]) -> None:
        psis = [
            population_stability(reference, normal(shift, 1.0, 2_000, seed=7))
            for shift in (0.0, 0.5, 1.0, 2.0)
        ]
        assert psis == sorted(psis)
