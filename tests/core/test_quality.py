from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia.core.quality import (
    IGNORE_ALL,
    QualityReport,
    QualityRule,
    QualityThresholds,
    assess_quality,
    blocking_findings,
    check_training_data,
    parse_ignored,
)
from atalaia.core.series import MIN_TRAINING_POINTS, Readings
from atalaia.errors import InvalidInput, UnfitData
from fixtures.readings import STEP_S, FloatArray, sensor_series

N = MIN_TRAINING_POINTS + 80


def healthy(n: int = N) -> tuple[FloatArray, FloatArray]:
    """A week of minutes: a daily sine and noise (fit to train)."""
    return sensor_series(n)


def rules(report: QualityReport) -> list[str]:
    return [finding.rule.value for finding in report.findings]


def finding_of(report: QualityReport, rule: QualityRule) -> dict[str, float]:
    [found] = [f for f in report.findings if f.rule == rule]
    return found.figures


class TestHealthyData:
    def test_is_fit_to_train_without_findings(self) -> None:
        report = assess_quality(*healthy())

        assert report.fit_to_train
        assert rules(report) == []
        assert report.sampling.interval_s == STEP_S
        assert report.sampling.regular_share == 1.0
        assert report.missing_rate == 0.0
        assert report.usable == report.count == N

    def test_reports_the_value_range(self) -> None:
        ts, vs = healthy()

        value_range = assess_quality(ts, vs).value_range

        assert value_range is not None
        assert (value_range.min, value_range.max) == (vs.min(), vs.max())
        assert value_range.min < value_range.p1 < value_range.p99 < value_range.max

    def test_quantised_values_are_not_stuck_nor_spiky(self) -> None:
        ts, vs = healthy()

        report = assess_quality(ts, np.round(vs, 2))

        assert rules(report) == []


class TestTooFewReadings:
    def test_blocks_below_what_training_needs(self) -> None:
        report = assess_quality(*healthy(500))

        assert rules(report) == ["too_few_readings"]
        assert finding_of(report, QualityRule.TOO_FEW_READINGS)["readings"] == 500
        assert not report.fit_to_train

    def test_no_readings_give_an_empty_report(self) -> None:
        report = assess_quality([], [])

        assert report.count == 0
        assert report.value_range is None
        assert report.sampling.interval_s is None
        assert rules(report) == ["too_few_readings"]


class TestRawInput:
    def test_counts_non_finite_readings_and_measures_the_rest(self) -> None:
        ts, vs = healthy()
        vs[[3, 70]] = [np.nan, np.inf]
        ts[90] = np.nan

        report = assess_quality(ts, vs)

        assert report.non_finite == 3
        assert report.usable == N - 3
        assert rules(report) == ["non_finite"]
        assert not report.fit_to_train

    def test_duplicates_with_one_value_are_reported_not_blocking(self) -> None:
        ts, vs = healthy()

        sent = np.r_[np.repeat(np.arange(40), 2), np.arange(40, N)]  # 40 resent

        report = assess_quality(ts[sent], vs[sent])

        assert (report.duplicates, report.conflicting_duplicates) == (40, 0)
        assert report.usable == N
        assert rules(report) == ["duplicates"]
        assert report.fit_to_train

    def test_duplicates_with_another_value_block(self) -> None:
        ts, vs = healthy()

        report = assess_quality(np.r_[ts, ts[:5]], np.r_[vs, vs[:5] + 1])

        assert report.conflicting_duplicates == 5
        assert "conflicting_duplicates" in rules(report)
        assert not report.fit_to_train

    def test_out_of_order_readings_are_counted_and_sorted(self) -> None:
        ts, vs = healthy()
        order = np.arange(N)
        order[[100, 101]] = [101, 100]

        report = assess_quality(ts[order], vs[order])

        assert report.out_of_order == 1
        assert rules(report) == ["out_of_order"]
        assert report.sampling.regular_share == 1.0  # measured in time order

    def test_refuses_columns_that_do_not_pair_up(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            assess_quality([1.0, 2.0], [1.0])

        assert caught.value.rule == "equal_lengths"


class TestTiming:
    def test_gaps_are_listed_with_their_total(self) -> None:
        ts, vs = healthy()
        ts[5_000:] += 2 * 86_400  # two days missing in a week
        report = assess_quality(ts, vs)

        gaps = report.gaps
        assert gaps.count == 1
        assert gaps.listed[0].start == ts[4_999]
        assert gaps.listed[0].end == ts[5_000]
        assert gaps.total_s == 2 * 86_400 + STEP_S
        assert {"gaps", "missing_rate"} <= set(rules(report))
        assert not report.fit_to_train

    def test_a_short_gap_is_measured_but_allowed(self) -> None:
        ts, vs = healthy()
        ts[5_000:] += 3_600

        report = assess_quality(ts, vs)

        assert report.gaps.count == 1
        assert rules(report) == []

    def test_gaps_listed_are_capped(self) -> None:
        ts, vs = healthy()
        ts += 600 * (np.arange(N) // 100)  # a 10-minute gap every 100 readings

        report = assess_quality(ts, vs, thresholds=QualityThresholds(listed=3))

        assert report.gaps.count == (N - 1) // 100
        assert len(report.gaps.listed) == 3

    def test_missing_readings_spread_out(self) -> None:
        ts, vs = healthy(2 * N)
        kept = np.arange(2 * N) % 4 != 1  # one in four lost, no long gap

        report = assess_quality(ts[kept], vs[kept])

        assert report.missing_rate == pytest.approx(1 / 4, abs=1e-3)
        assert report.gaps.count == 0
        assert "missing_rate" in rules(report)

    def test_irregular_sampling_is_reported(self) -> None:
        rng = np.random.default_rng(1)
        ts = np.cumsum(rng.exponential(60.0, N))  # event-driven

        report = assess_quality(1.7e9 + ts, rng.normal(size=N))

        assert report.sampling.regular_share is not None
        assert report.sampling.regular_share < 0.5
        assert report.sampling.spacing_cv == pytest.approx(1.0, abs=0.05)
        assert "irregular_sampling" in rules(report)


class TestValues:
    def test_a_stuck_run_blocks(self) -> None:
        ts, vs = healthy()
        vs[2_000:3_000] = vs[2_000]  # 1,000 minutes flat

        report = assess_quality(ts, vs)

        [run] = report.stuck.listed
        assert (run.start, run.end, run.readings) == (ts[2_000], ts[2_999], 1_000)
        assert report.stuck.share == pytest.approx(1_000 / N)
        assert rules(report) == ["stuck"]
        assert not report.fit_to_train

    def test_a_short_flat_stretch_is_not_stuck(self) -> None:
        ts, vs = healthy()
        vs[2_000:2_020] = vs[2_000]  # 20 minutes

        assert assess_quality(ts, vs).stuck.count == 0

    def test_spikes_are_counted_and_listed(self) -> None:
        ts, vs = sensor_series(N, spikes=[100, 5_000, 9_000])

        report = assess_quality(ts, vs)

        assert report.spikes == 3
        assert [s.timestamp for s in report.first_spikes] == list(
            ts[[100, 5_000, 9_000]]
        )
        assert rules(report) == []  # under max_spike_share

    def test_many_spikes_are_a_finding_not_blocking(self) -> None:
        ts, vs = sensor_series(N, spikes=range(0, N, 50))

        report = assess_quality(ts, vs)

        assert rules(report) == ["spikes"]
        assert report.fit_to_train

    @pytest.mark.parametrize("factor", [1000.0, 0.001])
    def test_a_unit_switch_blocks(self, factor: float) -> None:
        ts, vs = healthy()
        vs[6_000:] *= factor

        report = assess_quality(ts, vs)

        [jump] = report.unit_jumps
        assert jump.timestamp == ts[6_000]
        assert jump.factor == pytest.approx(factor, rel=0.2)
        assert rules(report) == ["unit_jump"]
        assert not report.fit_to_train

    def test_a_unit_switch_inside_a_block_is_found(self) -> None:
        ts, vs = healthy()
        vs[6_030:] *= 1000  # the middle of the 60-reading block from 6,000

        [jump] = assess_quality(ts, vs).unit_jumps

        assert jump.timestamp == ts[6_030]

    def test_starting_from_an_idle_level_is_not_a_unit_switch(self) -> None:
        ts, vs = healthy()
        rng = np.random.default_rng(3)
        vs[:4_000] = 0.002 + rng.normal(0, 1e-4, 4_000)  # idle: ~0 bar

        assert assess_quality(ts, vs).unit_jumps == []

    def test_values_outside_the_physical_range(self) -> None:
        ts, vs = healthy()
        vs[10] = -5.0

        report = assess_quality(ts, vs, physical_range=(0.0, 1.0))

        assert report.out_of_range == 1
        assert finding_of(report, QualityRule.OUT_OF_RANGE)["count"] == 1
        assert not report.fit_to_train
        assert assess_quality(ts, vs).out_of_range == 0  # no range, no check


class TestVerdict:
    def test_blocking_rules_are_the_thresholds_choice(self) -> None:
        ts, vs = healthy()
        vs[2_000:3_000] = vs[2_000]

        report = assess_quality(
            ts, vs, thresholds=QualityThresholds(blocking=frozenset())
        )

        assert rules(report) == ["stuck"]
        assert report.fit_to_train

    def test_ignored_rules_leave_the_others_blocking(self) -> None:
        ts, vs = healthy()
        vs[2_000:3_000] = vs[2_000]
        vs[6_000:] *= 1000
        report = assess_quality(ts, vs)

        left = blocking_findings(report, parse_ignored(["stuck"]))

        assert [f.rule for f in left] == [QualityRule.UNIT_JUMP]
        assert blocking_findings(report, parse_ignored(IGNORE_ALL)) == []

    @pytest.mark.parametrize("ignore", [["gaps", "nope"], "some"])
    def test_unknown_rules_are_refused(self, ignore: str | list[str]) -> None:
        with pytest.raises(InvalidInput) as caught:
            parse_ignored(ignore)

        assert caught.value.rule == "data_quality_ignore"


@st.composite
def raw_readings(draw: st.DrawFn) -> tuple[FloatArray, FloatArray]:
    n = draw(st.integers(0, 300))
    steps = draw(
        st.lists(st.sampled_from([0.0, 1.0, 1.0, 1.0, 7.0]), min_size=n, max_size=n)
    )
    values = draw(
        st.lists(
            st.sampled_from([0.0, 1.0, 2.5, 1000.0, np.nan]), min_size=n, max_size=n
        )
    )
    return 1.7e9 + np.cumsum(steps), np.asarray(values, dtype=np.float64)


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(raw_readings())
    def test_the_order_of_arrival_changes_only_the_out_of_order_count(
        self, readings: tuple[FloatArray, FloatArray]
    ) -> None:
        ts, vs = readings
        finite = np.isfinite(vs)
        ts, vs = ts[finite], vs[finite]
        # Unique timestamps: which duplicate comes first decides what is kept.
        ts, first = np.unique(ts, return_index=True)
        vs = vs[first]
        order = np.random.default_rng(len(ts)).permutation(len(ts))

        shuffled = assess_quality(ts[order], vs[order])
        plain = assess_quality(ts, vs)

        assert shuffled.out_of_order == int(np.count_nonzero(np.diff(order) < 0))
        assert shuffled.stuck == plain.stuck
        assert shuffled.gaps == plain.gaps
        assert shuffled.unit_jumps == plain.unit_jumps
        assert shuffled.spikes == plain.spikes

    @settings(max_examples=60, deadline=None)
    @given(raw_readings())
    def test_counts_add_up_and_shares_are_shares(
        self, readings: tuple[FloatArray, FloatArray]
    ) -> None:
        report = assess_quality(*readings)

        assert report.usable + report.duplicates + report.non_finite == report.count
        assert 0.0 <= report.missing_rate <= 1.0
        assert 0.0 <= report.gaps.share <= 1.0
        assert 0.0 <= report.stuck.share <= 1.0
        assert report.fit_to_train == (not any(f.blocking for f in report.findings))


class TestCheckTrainingData:
    def test_raises_unfit_data_naming_each_blocking_finding(self) -> None:
        ts, vs = healthy()
        vs[2_000:3_000] = vs[2_000]
        vs[6_000:] *= 1000

        with pytest.raises(UnfitData) as caught:
            check_training_data(Readings(ts, vs))

        assert caught.value.rule == "data_quality"
        assert [f["rule"] for f in caught.value.findings] == ["stuck", "unit_jump"]
        assert "stuck" in caught.value.detail

    def test_passes_fit_data_and_ignored_rules(self) -> None:
        ts, vs = healthy()
        check_training_data(Readings(ts, vs))
        vs[2_000:3_000] = vs[2_000]

        check_training_data(Readings(ts, vs), parse_ignored(["stuck"]))
