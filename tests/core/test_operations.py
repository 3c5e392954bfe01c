"""Fleet operations' rules: a chunk's plan, the condition, the pace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from atalaia.core.operations import (
    MAX_ERRORS,
    Action,
    CanaryStart,
    Condition,
    Move,
    Operation,
    OperationStatus,
    Selector,
    Skip,
    Start,
    VersionFact,
    kept_errors,
    plan_canaries,
    plan_promotions,
    plan_rollbacks,
)
from atalaia.core.registry import Stage, StageChange
from atalaia.core.rollout import CanaryPlan, Gates

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def holdout(rate: float) -> dict[str, float | str]:
    return {"auto_chosen": "robust", "auto_robust_false_alarm_rate": rate}


def fact(
    series_id: str, version: int, stage: Stage, rate: float | None = None
) -> VersionFact:
    """Version `version` of `series_id`, its row numbered after both."""
    row = int(series_id.rsplit("_", 1)[1]) * 100 + version
    return VersionFact(series_id, row, version, stage, holdout(rate) if rate else {})


def changes(moves: list[Move]) -> list[StageChange]:
    return [change for _, change in moves]


class TestPlanPromotions:
    def test_promotes_the_newest_staging_version_and_archives_production(
        self,
    ) -> None:
        versions = [
            fact("s_1", 1, Stage.PRODUCTION),
            fact("s_1", 2, Stage.STAGING),
            fact("s_1", 3, Stage.STAGING),
        ]

        plan = plan_promotions(["s_1"], versions, archive_existing=True, condition=None)

        assert plan.moved == ["s_1"]
        assert changes(plan.retire) == [
            StageChange("s_1", 1, Stage.PRODUCTION, Stage.ARCHIVED)
        ]
        assert changes(plan.arrive) == [
            StageChange("s_1", 3, Stage.STAGING, Stage.PRODUCTION)
        ]
        assert [row for row, _ in plan.arrive] == [103]

    def test_sends_production_back_to_staging_without_archive_existing(
        self,
    ) -> None:
        versions = [fact("s_1", 1, Stage.PRODUCTION), fact("s_1", 2, Stage.STAGING)]

        plan = plan_promotions(
            ["s_1"], versions, archive_existing=False, condition=None
        )

        assert changes(plan.retire) == [
            StageChange("s_1", 1, Stage.PRODUCTION, Stage.STAGING)
        ]

    def test_a_series_without_production_only_gains_one(self) -> None:
        plan = plan_promotions(
            ["s_1"], [fact("s_1", 1, Stage.STAGING)], archive_existing=True,
            condition=None,
        )  # fmt: skip

        assert plan.retire == []
        assert changes(plan.arrive) == [
            StageChange("s_1", 1, Stage.STAGING, Stage.PRODUCTION)
        ]

    def test_skips_series_without_a_staging_version_newer_than_production(
        self,
    ) -> None:
        versions = [
            fact("s_1", 2, Stage.PRODUCTION),
            fact("s_1", 1, Stage.STAGING),  # the one sent back by a promotion
            fact("s_2", 1, Stage.PRODUCTION),
        ]

        plan = plan_promotions(
            ["s_1", "s_2", "s_3"], versions, archive_existing=True, condition=None
        )

        assert plan.moved == []
        assert plan.skipped == {Skip.NO_NEWER_STAGING: 3}


class TestCondition:
    @pytest.mark.parametrize(
        ("candidate", "production", "expected"),
        [
            (0.001, 0.001, None),
            (0.011, 0.010, None),  # +10 %
            (0.0125, 0.010, Skip.ANOMALY_RATE),  # +25 %
            (0.007, 0.010, Skip.ANOMALY_RATE),  # -30 %
            (0.03, 0.03, Skip.FALSE_ALARM_RATE),
            (None, 0.01, Skip.NO_HOLDOUT_FIGURES),
            (0.01, None, Skip.NO_HOLDOUT_FIGURES),
        ],
    )
    def test_judges_the_candidate_by_its_holdout_figures(
        self, candidate: float | None, production: float | None, expected: Skip | None
    ) -> None:
        condition = Condition(
            max_holdout_false_alarm_rate=0.02, anomaly_rate_within=0.2
        )
        versions = [
            fact("s_1", 1, Stage.PRODUCTION, production),
            fact("s_1", 2, Stage.STAGING, candidate),
        ]

        plan = plan_promotions(
            ["s_1"], versions, archive_existing=True, condition=condition
        )

        assert plan.skipped == ({expected: 1} if expected else {})
        assert plan.moved == ([] if expected else ["s_1"])

    def test_a_relative_rate_needs_a_production_version(self) -> None:
        condition = Condition(anomaly_rate_within=0.2)

        plan = plan_promotions(
            ["s_1"], [fact("s_1", 1, Stage.STAGING, 0.01)], archive_existing=True,
            condition=condition,
        )  # fmt: skip

        assert plan.skipped == {Skip.NO_PRODUCTION: 1}

    def test_a_ceiling_alone_needs_no_production_version(self) -> None:
        condition = Condition(max_holdout_false_alarm_rate=0.02)

        plan = plan_promotions(
            ["s_1"], [fact("s_1", 1, Stage.STAGING, 0.01)], archive_existing=True,
            condition=condition,
        )  # fmt: skip

        assert plan.moved == ["s_1"]


class TestBetterThanProduction:
    @staticmethod
    def judged(
        candidate: tuple[float, float], production: tuple[float, float]
    ) -> Skip | None:
        """The condition's verdict on holdouts of (found, false alarm rate)."""

        def metrics(found: float, rate: float) -> dict[str, float | str]:
            return holdout(rate) | {"auto_robust_found": found}

        condition = Condition(better_than_production=True)
        return condition.judge(metrics(*candidate), metrics(*production))

    @pytest.mark.parametrize(
        ("candidate", "production", "expected"),
        [
            ((0.9, 0.001), (0.8, 0.002), None),
            ((0.8, 0.002), (0.8, 0.002), None),  # as good is good enough
            ((0.7, 0.001), (0.8, 0.002), Skip.NOT_BETTER),  # finds fewer
            ((0.9, 0.003), (0.8, 0.002), Skip.NOT_BETTER),  # more false alarms
        ],
    )
    def test_finds_as_much_with_no_more_false_alarms(
        self,
        candidate: tuple[float, float],
        production: tuple[float, float],
        expected: Skip | None,
    ) -> None:
        assert self.judged(candidate, production) is expected

    def test_needs_both_holdouts(self) -> None:
        condition = Condition(better_than_production=True)

        assert condition.judge(holdout(0.001), None) is Skip.NO_PRODUCTION
        assert condition.judge(holdout(0.001), holdout(0.002)) is (
            Skip.NO_HOLDOUT_FIGURES  # no share found recorded
        )

    def test_described_and_read_back(self) -> None:
        condition = Condition(0.01, None, better_than_production=True)

        described = condition.describe()

        assert described == {
            "max_holdout_false_alarm_rate": 0.01,
            "better_than_production": True,
        }
        assert Condition.of(described) == condition
        assert Condition.of({}) is None


class TestPlanCanaries:
    CANARY = CanaryStart(CanaryPlan(initial=10.0), Gates(min_predictions=500))

    def test_starts_the_newest_candidate_beside_production(self) -> None:
        production = fact("s_1", 1, Stage.PRODUCTION)
        newest = fact("s_1", 3, Stage.STAGING)
        versions = [production, fact("s_1", 2, Stage.STAGING), newest]

        plan = plan_canaries(["s_1"], versions, condition=None, canary=self.CANARY)

        assert plan.starts == [Start(newest, production)]
        assert plan.canary == self.CANARY
        assert plan.moved == ["s_1"]
        assert (plan.retire, plan.arrive) == ([], [])  # no stage moves yet

    def test_a_condition_judges_before_the_canary_rules(self) -> None:
        sensor_model = fact("s_3", 2, Stage.STAGING)._replace(sensor=True)
        versions = [
            fact("s_1", 1, Stage.STAGING),  # nothing in production
            fact("s_2", 1, Stage.PRODUCTION),  # nothing newer
            fact("s_3", 1, Stage.PRODUCTION),
            sensor_model,
            fact("s_4", 1, Stage.PRODUCTION, 0.001),
            fact("s_4", 2, Stage.STAGING, 0.5),  # fails the condition
        ]
        condition = Condition(max_holdout_false_alarm_rate=0.01)

        plan = plan_canaries(
            ["s_1", "s_2", "s_3", "s_4"], versions, condition=condition,
            canary=self.CANARY,
        )  # fmt: skip

        assert plan.starts == []
        assert plan.skipped == {
            Skip.NO_NEWER_STAGING: 1,
            Skip.NO_HOLDOUT_FIGURES: 2,  # the condition reads s_1's, s_3's first
            Skip.FALSE_ALARM_RATE: 1,
        }

    def test_without_a_condition_names_each_reason(self) -> None:
        sensor_model = fact("s_3", 2, Stage.STAGING)._replace(sensor=True)
        versions = [
            fact("s_1", 1, Stage.STAGING),
            fact("s_2", 1, Stage.PRODUCTION),
            fact("s_3", 1, Stage.PRODUCTION),
            sensor_model,
        ]

        plan = plan_canaries(
            ["s_1", "s_2", "s_3"], versions, condition=None, canary=self.CANARY
        )

        assert plan.skipped == {
            Skip.NO_PRODUCTION: 1,
            Skip.NO_NEWER_STAGING: 1,
            Skip.SENSOR_MODEL: 1,
        }

    def test_the_canaries_are_described_and_read_back(self) -> None:
        described = self.CANARY.describe()

        assert described["plan"] == {
            "initial": 10.0, "increment": 15.0, "interval_s": 7200.0
        }  # fmt: skip
        assert described["gates"]["min_predictions"] == 500
        assert CanaryStart.of(described) == self.CANARY
        assert CanaryStart.of({}) is None


class TestPlanRollbacks:
    def test_puts_back_the_version_promoted_before_production(self) -> None:
        production = [fact("s_1", 3, Stage.PRODUCTION)]
        past = [  # most recently promoted first: v1 came back after v2
            fact("s_1", 3, Stage.PRODUCTION),
            fact("s_1", 1, Stage.ARCHIVED),
            fact("s_1", 2, Stage.ARCHIVED),
        ]

        plan = plan_rollbacks(["s_1"], production, past)

        assert changes(plan.retire) == [
            StageChange("s_1", 3, Stage.PRODUCTION, Stage.ARCHIVED)
        ]
        assert changes(plan.arrive) == [
            StageChange("s_1", 1, Stage.ARCHIVED, Stage.PRODUCTION)
        ]

    def test_skips_series_with_nothing_to_roll_back_to(self) -> None:
        production = [fact("s_1", 1, Stage.PRODUCTION)]
        past = [fact("s_1", 1, Stage.PRODUCTION)]

        plan = plan_rollbacks(["s_1", "s_2"], production, past)

        assert plan.moved == []
        assert plan.skipped == {
            Skip.NO_EARLIER_PRODUCTION: 1,
            Skip.NO_PRODUCTION: 1,
        }


class TestSelector:
    def test_describes_an_explicit_list_by_its_size(self) -> None:
        ids = tuple(f"s_{i}" for i in range(1000))

        assert Selector(series_ids=ids).describe() == {
            "series_ids": {"count": 1000, "first": ["s_0", "s_1", "s_2", "s_3", "s_4"]}
        }
        assert Selector(prefix="plant1_").describe() == {"prefix": "plant1_"}
        assert Selector(all=True).describe() == {"all": True}


def operation(**progress: object) -> Operation:
    fields: dict[str, object] = {
        "id": "op", "action": Action.PROMOTE, "status": OperationStatus.RUNNING,
        "selector": {"all": True}, "condition": {}, "archive_existing": True,
        "reason": "", "actor": "me", "total": 1000, "done": 0, "failed": 0,
        "skipped": 0, "skipped_by_reason": {}, "errors": [], "created_at": T0,
        "started_at": T0, "finished_at": None, "cancel_requested": False,
    }  # fmt: skip
    return Operation(**(fields | progress))  # type: ignore[arg-type]


class TestPace:
    def test_rate_and_time_left_from_the_series_handled(self) -> None:
        running = operation(done=300, skipped=90, failed=10)

        rate, eta = running.pace(T0 + timedelta(seconds=10))

        assert running.remaining == 600
        assert (rate, eta) == (40.0, 15.0)

    def test_an_ended_operation_has_no_time_left(self) -> None:
        ended = operation(
            done=500, status=OperationStatus.CANCELLED,
            finished_at=T0 + timedelta(seconds=5),
        )  # fmt: skip

        assert ended.pace(T0 + timedelta(hours=1)) == (100.0, None)

    def test_nothing_handled_has_no_pace(self) -> None:
        assert operation().pace(T0 + timedelta(seconds=3)) == (None, None)


def test_keeps_the_first_errors_only() -> None:
    kept = kept_errors([], [(f"s_{i}", "bad") for i in range(15)])
    more = kept_errors(kept, [(f"t_{i}", "worse") for i in range(15)])

    assert len(more) == MAX_ERRORS
    assert more[:15] == kept
    assert more[-1] == {"series_id": "t_4", "error": "worse"}
