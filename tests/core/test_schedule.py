"""When the scheduler's tasks run: triggers, due times, the fleet schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.schedule import (
    Every,
    ScheduledTask,
    Task,
    Weekly,
    fleet_schedule,
    healing_schedule,
)

# Tuesday 1 December 2026, 13:30 UTC
TUESDAY = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)


class TestWeekly:
    @pytest.mark.parametrize(
        ("weekday", "hour", "expected"),
        [
            (6, 2, datetime(2026, 12, 6, 2, tzinfo=UTC)),  # the coming Sunday
            (1, 14, datetime(2026, 12, 1, 14, tzinfo=UTC)),  # later today
            (1, 13, datetime(2026, 12, 8, 13, tzinfo=UTC)),  # today's slot has passed
            (0, 0, datetime(2026, 12, 7, 0, tzinfo=UTC)),
        ],
    )
    def test_next_slot_after_a_moment(
        self, weekday: int, hour: int, expected: datetime
    ) -> None:
        assert Weekly(weekday, hour).next_after(TUESDAY) == expected

    def test_a_moment_on_the_slot_gets_the_next_week(self) -> None:
        slot = datetime(2026, 12, 6, 2, tzinfo=UTC)

        assert Weekly(6, 2).next_after(slot) == slot + timedelta(days=7)

    def test_reads_other_time_zones_as_utc(self) -> None:
        lisbon_winter = timezone(timedelta(hours=1))
        moment = datetime(2026, 12, 6, 2, 30, tzinfo=lisbon_winter)  # 01:30 UTC

        assert Weekly(6, 2).next_after(moment) == datetime(2026, 12, 6, 2, tzinfo=UTC)

    @given(moment=moments, weekday=st.integers(0, 6), hour=st.integers(0, 23))
    def test_the_next_slot_is_within_a_week_on_the_right_day_and_hour(
        self, moment: datetime, weekday: int, hour: int
    ) -> None:
        slot = Weekly(weekday, hour).next_after(moment)

        assert moment < slot <= moment + timedelta(days=7)
        assert (slot.weekday(), slot.hour, slot.minute, slot.second) == (
            weekday, hour, 0, 0,
        )  # fmt: skip

    @pytest.mark.parametrize(("weekday", "hour"), [(7, 0), (-1, 0), (0, 24)])
    def test_refuses_a_slot_that_does_not_exist(self, weekday: int, hour: int) -> None:
        with pytest.raises(ValueError, match="no such weekly slot"):
            Weekly(weekday, hour)


class TestEvery:
    def test_next_run_is_one_interval_later(self) -> None:
        assert Every(6).next_after(TUESDAY) == TUESDAY + timedelta(hours=6)

    @pytest.mark.parametrize("hours", [0, -1])
    def test_refuses_an_interval_that_is_not_positive(self, hours: float) -> None:
        with pytest.raises(ValueError, match="must be positive"):
            Every(hours)


class TestDue:
    drift = ScheduledTask(Task.DRIFT, Every(6))

    def test_a_task_that_never_ran_waits_for_its_first_trigger(self) -> None:
        assert self.drift.due(last_run=None, now=TUESDAY) == TUESDAY + timedelta(
            hours=6
        )

    def test_a_task_runs_one_trigger_after_its_last_run(self) -> None:
        last = TUESDAY - timedelta(hours=2)

        assert self.drift.due(last_run=last, now=TUESDAY) == TUESDAY + timedelta(
            hours=4
        )

    def test_missed_runs_make_the_task_due_once_at_once(self) -> None:
        retrain = ScheduledTask(Task.RETRAIN, Weekly(6, 2))
        last = datetime(2026, 11, 15, 2, 5, tzinfo=UTC)  # then three Sundays missed

        due = retrain.due(last_run=last, now=TUESDAY)

        assert due < TUESDAY  # overdue: run now ...
        assert retrain.due(last_run=TUESDAY, now=TUESDAY) == datetime(
            2026, 12, 6, 2, tzinfo=UTC
        )  # ... and after that run, on the next Sunday only


class TestFleetSchedule:
    def test_weekly_retraining_drift_checks_and_rollout_steps(self) -> None:
        schedule = fleet_schedule(
            retrain_weekday="wed", retrain_hour=3, drift_every_hours=4,
            rollout_every_minutes=3,
        )  # fmt: skip

        assert schedule == (
            ScheduledTask(Task.RETRAIN, Weekly(2, 3)),
            ScheduledTask(Task.DRIFT, Every(4)),
            ScheduledTask(Task.ROLLOUT, Every(0.05)),
        )
        assert schedule[2].trigger.describe() == "every 3 min"

    def test_each_task_has_an_audit_action(self) -> None:
        assert [t.audit_action for t in Task] == [
            "scheduler.retrain",
            "scheduler.drift",
            "scheduler.rollout",
            "scheduler.healing",
            "scheduler.wave",
            "scheduler.archive",
            "scheduler.report",
            "scheduler.backup",
        ]

    def test_healing_runs_every_few_minutes(self) -> None:
        healing = healing_schedule(every_minutes=5)

        assert healing == ScheduledTask(Task.HEALING, Every(5 / 60))
        assert healing.trigger.describe() == "every 5 min"
