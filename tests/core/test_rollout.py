"""Canary rollouts as rules: the split of readings, the gates, the steps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.rollout import (
    COUNTERS,
    Action,
    Canary,
    CanaryPlan,
    Figures,
    Gates,
    Labels,
    Outcome,
    Pairs,
    RolloutFigures,
    Verdict,
    ab_report,
    compare,
    draw,
    draws,
    figures_of,
    judge,
    judge_rollout,
    series_key,
    shadow_verdict,
    start,
    step,
    to_candidate,
)

T0 = 1_733_000_000.0


def _fleet_readings(series: int, each: int) -> tuple[np.ndarray, np.ndarray]:
    keys = np.repeat(
        np.array(
            [series_key(f"sensor_{i:06d}_radial") for i in range(series)], np.uint64
        ),
        each,
    )
    timestamps = np.tile(T0 + 60.0 * np.arange(each), series)
    return keys, timestamps


class TestSplit:
    def test_a_series_key_is_stable_and_its_own(self) -> None:
        assert series_key("sensor_001_radial") == series_key("sensor_001_radial")
        assert series_key("sensor_001_radial") != series_key("sensor_001_axial")
        assert 0 <= series_key("x") < 2**64

    def test_draws_are_uniform_over_the_fleet_and_within_each_series(self) -> None:
        keys, timestamps = _fleet_readings(series=200, each=1_000)

        drawn = draws(keys, timestamps)

        assert drawn.min() >= 0.0
        assert drawn.max() < 1.0
        deciles = np.histogram(drawn, bins=10, range=(0, 1))[0] / drawn.size
        assert np.allclose(deciles, 0.1, atol=0.005)
        per_series = (drawn.reshape(200, 1_000) < 0.05).mean(axis=1)
        assert np.allclose(per_series, 0.05, atol=0.04)  # binomial, n = 1,000

    def test_a_share_sends_about_that_share_to_the_candidate(self) -> None:
        keys, timestamps = _fleet_readings(series=100, each=1_000)

        for share in (0.05, 0.2, 0.5):
            assert to_candidate(keys, timestamps, share).mean() == pytest.approx(
                share, abs=0.01
            )

    @given(
        st.lists(st.floats(T0, T0 + 1e8), min_size=1, max_size=50),
        st.floats(0, 1),
        st.floats(0, 1),
    )
    def test_a_reading_always_goes_the_same_way_and_growth_only_adds(
        self, times: list[float], a: float, b: float
    ) -> None:
        small, large = sorted((a, b))
        keys = np.full(len(times), series_key("pump7_axial"), np.uint64)
        timestamps = np.array(times)

        before = to_candidate(keys, timestamps, small)

        assert np.array_equal(before, to_candidate(keys, timestamps, small))
        assert not (before & ~to_candidate(keys, timestamps, large)).any()

    @given(
        st.lists(
            st.tuples(st.text(max_size=40), st.floats(0, 4.2e9)),
            min_size=1,
            max_size=30,
        )
    )
    def test_one_reading_draws_as_a_batch_does(
        self, readings: list[tuple[str, float]]
    ) -> None:
        keys = np.array([series_key(s) for s, _ in readings], np.uint64)
        timestamps = np.array([t for _, t in readings])

        batch = draws(keys, timestamps)

        assert [draw(series_key(s), t) for s, t in readings] == batch.tolist()

    def test_none_and_all(self) -> None:
        keys, timestamps = _fleet_readings(series=10, each=100)

        assert not to_candidate(keys, timestamps, 0.0).any()
        assert to_candidate(keys, timestamps, 1.0).all()


HEALTHY = Figures(predictions=100_000, errors=0, anomalies=1_000)


class TestGates:
    def test_a_candidate_like_production_passes(self) -> None:
        candidate = Figures(predictions=20_000, errors=10, anomalies=240)

        verdict = judge(candidate, HEALTHY, Gates())

        assert (verdict.outcome, verdict.reasons) == (Outcome.PASSED, ())
        assert verdict.evidence["candidate_anomaly_rate"] == pytest.approx(0.012)
        assert verdict.evidence["production_anomaly_rate"] == pytest.approx(0.01)

    @pytest.mark.parametrize(
        ("candidate", "reason"),
        [
            (
                Figures(500, errors=3, anomalies=5),
                "error rate 0.60% ≥ 0.50%",
            ),
            (
                Figures(500, errors=0, anomalies=5, slow=6),
                "p99 latency ≥ 100 ms (1.2% of answers slower)",
            ),
            (Figures(20_000, errors=0, anomalies=320), "anomaly rate 1.60%"),
            (Figures(20_000, errors=0, anomalies=80), "anomaly rate 0.40%"),
        ],
    )
    def test_each_gate_fails_naming_its_figure(
        self, candidate: Figures, reason: str
    ) -> None:
        verdict = judge(candidate, HEALTHY, Gates())

        assert verdict.outcome is Outcome.FAILED
        assert len(verdict.reasons) == 1
        assert verdict.reasons[0].startswith(reason)

    def test_too_few_answers_are_not_judged(self) -> None:
        few = Figures(predictions=99, errors=50, anomalies=50, slow=50)

        verdict = judge(few, HEALTHY, Gates())

        assert verdict.outcome is Outcome.TOO_FEW
        assert verdict.reasons == ("99 answers, fewer than 100",)

    def test_production_without_enough_answers_is_no_reference(self) -> None:
        candidate = Figures(predictions=500, errors=0, anomalies=50)
        quiet = Figures(predictions=10, errors=0, anomalies=0)

        assert judge(candidate, quiet, Gates()).outcome is Outcome.PASSED

    def test_a_difference_sampling_explains_passes(self) -> None:
        never = Figures(predictions=5_000, errors=0, anomalies=0)
        one = Figures(predictions=500, errors=0, anomalies=1)
        many = Figures(predictions=500, errors=0, anomalies=25)

        assert judge(one, never, Gates()).outcome is Outcome.PASSED
        assert judge(many, never, Gates()).outcome is Outcome.FAILED

    def test_the_tolerance_is_configurable(self) -> None:
        candidate = Figures(predictions=20_000, errors=0, anomalies=320)

        assert (
            judge(candidate, HEALTHY, Gates(anomaly_rate_tolerance=0.5)).reasons == ()
        )


PASSED = Verdict(Outcome.PASSED, ())
FAILED = Verdict(Outcome.FAILED, ("error rate 0.60% ≥ 0.50%",))
TOO_FEW = Verdict(Outcome.TOO_FEW, ("3 answers, fewer than 100",))


class TestSteps:
    def test_a_healthy_canary_grows_to_production(self) -> None:
        plan = CanaryPlan(initial=5, increment=15, interval_s=7_200)
        canary: Canary = start("s1", candidate=2, production=1, plan=plan, now=T0)
        shares, now = [canary.percentage], T0

        while True:
            now = canary.next_step_at
            taken = step(canary, PASSED, now)
            if taken.action is Action.PROMOTE:
                break
            assert taken.action is Action.GROW
            canary = taken.canary
            shares.append(canary.percentage)

        assert shares == [5, 20, 35, 50, 65, 80, 95]
        assert taken.canary.percentage == 100
        assert now == T0 + 7 * 7_200

    def test_a_failed_gate_rolls_back_at_once(self) -> None:
        canary = start("s1", 2, 1, CanaryPlan(), T0)

        taken = step(canary, FAILED, canary.next_step_at)

        assert taken.action is Action.ROLL_BACK
        assert taken.verdict.reasons == FAILED.reasons

    def test_too_few_answers_wait_a_step_at_the_same_share(self) -> None:
        canary = start("s1", 2, 1, CanaryPlan(interval_s=600), T0)

        taken = step(canary, TOO_FEW, T0 + 600)

        assert taken.action is Action.WAIT
        assert (taken.canary.percentage, taken.canary.next_step_at) == (5, T0 + 1_200)

    @pytest.mark.parametrize(
        "plan",
        [{"initial": 0}, {"initial": 101}, {"increment": -5}, {"interval_s": 0}],
    )
    def test_a_plan_out_of_range_is_refused(self, plan: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="percentage|positive"):
            CanaryPlan(**plan)


class TestFigures:
    def test_counters_read_as_each_version_s_figures(self) -> None:
        counts = dict.fromkeys(COUNTERS, 0.0) | {
            "candidate_predictions": 200, "candidate_errors": 2,
            "candidate_anomalies": 10, "candidate_slow": 1,
            "production_predictions": 800, "production_anomalies": 8,
            "paired": 200, "paired_agreements": 190,
            "paired_production_anomalies": 4,
        }  # fmt: skip

        figures = figures_of(counts)

        assert figures.candidate == Figures(200, 2, 10, 1)
        assert figures.production == Figures(800, 0, 8)
        assert figures.production_paired == Figures(200, anomalies=4)
        assert figures.pairs.agreement == pytest.approx(0.95)
        assert figures.pairs.correlation is None  # no score varied
        assert figures_of({}) == RolloutFigures()

    def test_scores_that_move_together_correlate(self) -> None:
        x = np.array([0.1, 0.5, 0.9, 1.4, 0.3])
        pairs = Pairs(5, 5, x.sum(), (2 * x).sum(), (x * x).sum(),
                      (4 * x * x).sum(), (2 * x * x).sum())  # fmt: skip

        assert pairs.correlation == pytest.approx(1.0)

    def test_a_rollout_is_judged_against_production_on_the_same_readings(
        self,
    ) -> None:
        figures = RolloutFigures(
            candidate=Figures(1_000, anomalies=50),
            production=Figures(9_000, anomalies=90),  # 1 %: elsewhere
            production_paired=Figures(1_000, anomalies=48),  # 4.8 %: the same
            pairs=Pairs(1_000, 990),
        )

        verdict = judge_rollout(figures, Gates())

        assert verdict.outcome is Outcome.PASSED
        assert verdict.evidence["production_anomaly_rate"] == pytest.approx(0.048)
        assert verdict.evidence["agreement"] == pytest.approx(0.99)

    def test_a_shadow_that_saw_too_few_readings_fails_at_its_end(self) -> None:
        assert shadow_verdict(TOO_FEW).outcome is Outcome.FAILED
        assert shadow_verdict(PASSED) is PASSED


class TestAbReport:
    def test_differences_are_tested_and_too_few_labels_say_so(self) -> None:
        figures = RolloutFigures(
            candidate=Figures(5_000, anomalies=150),
            production=Figures(5_000, anomalies=50),
        )

        report = ab_report(figures, Labels(40, 30), Labels(3, 1))

        assert report["challenger_anomaly_rate"] == pytest.approx(0.03)
        assert report["anomaly_rate_significant"] == 1.0
        assert 0 <= report["anomaly_rate_p_value"] < 0.001
        assert report["production_precision"] == pytest.approx(0.75)
        assert report["precision_p_value"] == -1.0  # 3 labels: too few to test
        assert report["precision_significant"] == 0.0

    def test_the_z_test_matches_its_textbook_value(self) -> None:
        # 45 of 500 against 30 of 500: z = 1.80, two-sided p = 0.072.
        found = compare(30, 500, 45, 500)

        assert found.p_value == pytest.approx(0.0719, abs=5e-4)
        assert not found.significant
