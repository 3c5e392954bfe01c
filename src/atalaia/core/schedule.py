"""What the scheduler runs and when: its tasks and their triggers, in UTC.

A task runs one trigger after its last run; a task that never ran runs at the
first trigger after the scheduler starts. A due time in the past means a run was
missed while no scheduler ran: it runs once at once (missed runs coalesce).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Task(StrEnum):
    RETRAIN = "retrain"  # weekly retraining of every active series
    DRIFT = "drift"  # data-drift check of every production model
    ROLLOUT = "rollout"  # the running canaries' and shadows' steps
    HEALING = "healing"  # the self-healing rules (`services.healing`)
    WAVE = "wave"  # the weekly retraining's versions out (`services.waves`)
    ARCHIVE = "archive"  # old readings to the cold history (`services.cold_history`)
    REPORT = "report"  # last week's reports stored and sent (`services.reports`)
    BACKUP = "backup"  # a backup of the platform, then retention (`services.backup`)

    @property
    def audit_action(self) -> str:
        """The audit-log action of a completed run, from which the next is timed."""
        return f"scheduler.{self.value}"


@dataclass(frozen=True, slots=True)
class Every:
    """A fixed interval of `hours` between runs.

    >>> Every(6).next_after(datetime(2026, 12, 1, 23, 0, tzinfo=UTC)).isoformat()
    '2026-12-02T05:00:00+00:00'
    """

    hours: float

    def __post_init__(self) -> None:
        if not self.hours > 0:
            raise ValueError(f"an interval must be positive, not {self.hours} h")

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(hours=self.hours)

    def describe(self) -> str:
        if self.hours < 1:
            return f"every {self.hours * 60:g} min"
        return f"every {self.hours:g} h"


@dataclass(frozen=True, slots=True)
class Weekly:
    """Once a week, at the start of `hour` (UTC) on `weekday` (0 is Monday).

    >>> sunday_2am = Weekly(weekday=6, hour=2)
    >>> sunday_2am.next_after(datetime(2026, 12, 1, 13, 0, tzinfo=UTC)).isoformat()
    '2026-12-06T02:00:00+00:00'
    """

    weekday: int
    hour: int

    def __post_init__(self) -> None:
        if not (0 <= self.weekday <= 6 and 0 <= self.hour <= 23):
            raise ValueError(f"no such weekly slot: day {self.weekday}, {self.hour} h")

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after `moment`."""
        moment = moment.astimezone(UTC)
        days = (self.weekday - moment.weekday()) % 7
        slot = moment.replace(hour=self.hour, minute=0, second=0, microsecond=0)
        slot += timedelta(days=days)
        return slot if slot > moment else slot + timedelta(days=7)

    def describe(self) -> str:
        return f"weekly, {WEEKDAYS[self.weekday]} {self.hour:02d}:00 UTC"


Trigger = Every | Weekly


@dataclass(frozen=True, slots=True)
class ScheduledTask:
    task: Task
    trigger: Trigger

    def due(self, *, last_run: datetime | None, now: datetime) -> datetime:
        """When the task runs next (in the past: overdue, run at once)."""
        return self.trigger.next_after(last_run if last_run is not None else now)


def fleet_schedule(
    *,
    retrain_weekday: str,
    retrain_hour: int,
    drift_every_hours: float,
    rollout_every_minutes: float = 4.0,
) -> tuple[ScheduledTask, ...]:
    """The platform's schedule: weekly fleet retraining, periodic drift checks,
    and the rollouts' steps every few minutes (a failing canary is rolled back
    within that much of its figures reaching the database).

    >>> [s.trigger.describe() for s in fleet_schedule(
    ...     retrain_weekday="sun", retrain_hour=2, drift_every_hours=6)]
    ['weekly, sun 02:00 UTC', 'every 6 h', 'every 4 min']
    """
    return (
        ScheduledTask(
            Task.RETRAIN, Weekly(WEEKDAYS.index(retrain_weekday), retrain_hour)
        ),
        ScheduledTask(Task.DRIFT, Every(drift_every_hours)),
        ScheduledTask(Task.ROLLOUT, Every(rollout_every_minutes / 60.0)),
    )


def wave_schedule(*, every_minutes: float) -> ScheduledTask:
    """The weekly wave's looks for retraining batches that have ended.

    >>> wave_schedule(every_minutes=4).trigger.describe()
    'every 4 min'
    """
    return ScheduledTask(Task.WAVE, Every(every_minutes / 60.0))


def archive_schedule(*, every_hours: float) -> ScheduledTask:
    """The cold history's runs.

    >>> archive_schedule(every_hours=24).trigger.describe()
    'every 24 h'
    """
    return ScheduledTask(Task.ARCHIVE, Every(every_hours))


def backup_schedule(*, every_hours: float) -> ScheduledTask:
    """The scheduled backups.

    >>> backup_schedule(every_hours=6).trigger.describe()
    'every 6 h'
    """
    return ScheduledTask(Task.BACKUP, Every(every_hours))


def healing_schedule(*, every_minutes: float) -> ScheduledTask:
    """The self-healing rules' runs.

    >>> healing_schedule(every_minutes=5).trigger.describe()
    'every 5 min'
    """
    return ScheduledTask(Task.HEALING, Every(every_minutes / 60.0))


def report_schedule(*, weekday: str, hour: int) -> ScheduledTask:
    """The scheduled reports' weekly run.

    >>> report_schedule(weekday="mon", hour=6).trigger.describe()
    'weekly, mon 06:00 UTC'
    """
    return ScheduledTask(Task.REPORT, Weekly(WEEKDAYS.index(weekday), hour))


def last_week(now: datetime) -> tuple[datetime, datetime]:
    """The last whole week (Monday 00:00 to Monday 00:00, UTC) before `now`:
    every run within a week reports the same one.

    >>> [d.isoformat() for d in last_week(datetime(2026, 12, 3, 9, tzinfo=UTC))]
    ['2026-11-23T00:00:00+00:00', '2026-11-30T00:00:00+00:00']
    """
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = day - timedelta(days=day.weekday())
    return end - timedelta(days=7), end
