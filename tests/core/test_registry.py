from __future__ import annotations

import pytest

from atalaia.core.registry import (
    Stage,
    StageChange,
    check_transition,
    plan_direct_promotion,
    plan_rollback,
)
from atalaia.errors import Conflict, NothingToRollBack, VersionNotPromotable
from fixtures.factories import SERIES, model_version


def assert_legal(changes: list[StageChange]) -> None:
    for change in changes:
        assert change.from_stage is not None
        check_transition(
            change.series_id, change.version, change.from_stage, change.to_stage
        )


class TestCheckTransition:
    @pytest.mark.parametrize(
        ("src", "dst"),
        [
            (Stage.STAGING, Stage.PRODUCTION),
            (Stage.STAGING, Stage.ARCHIVED),
            (Stage.PRODUCTION, Stage.ARCHIVED),
            (Stage.PRODUCTION, Stage.STAGING),
            (Stage.ARCHIVED, Stage.PRODUCTION),
        ],
    )
    def test_allows_a_legal_move(self, src: Stage, dst: Stage) -> None:
        check_transition(SERIES, 1, src, dst)

    @pytest.mark.parametrize(
        ("src", "dst"),
        [
            (Stage.STAGING, Stage.STAGING),
            (Stage.PRODUCTION, Stage.PRODUCTION),
            (Stage.ARCHIVED, Stage.ARCHIVED),
            (Stage.ARCHIVED, Stage.STAGING),
        ],
    )
    def test_refuses_an_illegal_move(self, src: Stage, dst: Stage) -> None:
        with pytest.raises(VersionNotPromotable, match=f"from {src} to {dst}"):
            check_transition(SERIES, 1, src, dst)


class TestPlanDirectPromotion:
    def test_promotes_a_staging_version_when_nothing_serves(self) -> None:
        changes = plan_direct_promotion(
            model_version(1, Stage.STAGING), None, archive_existing=True
        )
        assert changes == [StageChange(SERIES, 1, Stage.STAGING, Stage.PRODUCTION)]

    def test_archives_the_previous_production_version_first(self) -> None:
        changes = plan_direct_promotion(
            model_version(2, Stage.STAGING),
            model_version(1, Stage.PRODUCTION),
            archive_existing=True,
        )
        assert changes == [
            StageChange(SERIES, 1, Stage.PRODUCTION, Stage.ARCHIVED),
            StageChange(SERIES, 2, Stage.STAGING, Stage.PRODUCTION),
        ]
        assert_legal(changes)

    def test_sends_the_previous_production_version_to_staging_when_not_archiving(
        self,
    ) -> None:
        changes = plan_direct_promotion(
            model_version(2, Stage.STAGING),
            model_version(1, Stage.PRODUCTION),
            archive_existing=False,
        )
        assert changes[0] == StageChange(SERIES, 1, Stage.PRODUCTION, Stage.STAGING)
        assert changes[1] == StageChange(SERIES, 2, Stage.STAGING, Stage.PRODUCTION)
        assert_legal(changes)

    @pytest.mark.parametrize("stage", [Stage.PRODUCTION, Stage.ARCHIVED])
    def test_refuses_a_version_that_is_not_staging(self, stage: Stage) -> None:
        with pytest.raises(VersionNotPromotable, match="only a staging version"):
            plan_direct_promotion(model_version(1, stage), None, archive_existing=True)

    def test_refuses_the_version_already_in_production(self) -> None:
        current = model_version(1, Stage.PRODUCTION)
        with pytest.raises(VersionNotPromotable):
            plan_direct_promotion(current, current, archive_existing=True)

    def test_reports_a_conflict(self) -> None:
        with pytest.raises(Conflict):
            plan_direct_promotion(
                model_version(1, Stage.ARCHIVED), None, archive_existing=False
            )


class TestPlanRollback:
    def test_restores_the_previous_production_version(self) -> None:
        current = model_version(3, Stage.PRODUCTION)
        past = [
            current,
            model_version(2, Stage.ARCHIVED),
            model_version(1, Stage.ARCHIVED),
        ]
        changes = plan_rollback(current, past)
        assert changes == [
            StageChange(SERIES, 3, Stage.PRODUCTION, Stage.ARCHIVED),
            StageChange(SERIES, 2, Stage.ARCHIVED, Stage.PRODUCTION),
        ]
        assert_legal(changes)

    def test_restores_a_previous_version_kept_in_staging(self) -> None:
        current = model_version(2, Stage.PRODUCTION)
        changes = plan_rollback(current, [current, model_version(1, Stage.STAGING)])
        assert changes[1] == StageChange(SERIES, 1, Stage.STAGING, Stage.PRODUCTION)
        assert_legal(changes)

    def test_follows_the_promotion_order_not_the_version_numbers(self) -> None:
        # v1 was put back after v3: the version before v1 in production is v3.
        current = model_version(1, Stage.PRODUCTION)
        past = [
            current,
            model_version(3, Stage.ARCHIVED),
            model_version(2, Stage.ARCHIVED),
        ]
        assert plan_rollback(current, past)[1].version == 3

    def test_refuses_when_nothing_is_in_production(self) -> None:
        with pytest.raises(NothingToRollBack, match="no production version"):
            plan_rollback(None, [model_version(1, Stage.ARCHIVED)])

    def test_refuses_when_the_current_version_was_the_first_in_production(self) -> None:
        current = model_version(1, Stage.PRODUCTION)
        with pytest.raises(NothingToRollBack, match="first production version"):
            plan_rollback(current, [current])

    def test_refuses_when_no_history_is_known(self) -> None:
        with pytest.raises(NothingToRollBack):
            plan_rollback(model_version(4, Stage.PRODUCTION), [])


class TestLineage:
    def test_serializes_the_data_window(self) -> None:
        data = model_version(1, Stage.STAGING).lineage.as_dict()
        assert data["data_window"] == {"start": 1_733_000_000.0, "end": 1_733_604_740.0}
        assert data["job_id"] == f"job-{SERIES}-1"
        assert set(data) == {
            "job_id",
            "algorithm",
            "hyperparameters",
            "data_window",
            "data_points",
            "data_hash",
            "package_version",
            "data_snapshot",
        }
