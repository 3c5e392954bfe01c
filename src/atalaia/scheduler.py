"""The scheduler: run each task of the fleet schedule (weekly retraining, drift
checks, the rollouts' steps, the self-healing rules of `services.healing`, the
weekly wave of `services.waves`, the cold history's moves of
`services.cold_history`, the scheduled reports of `services.reports.scheduled`,
the backups of `services.backup`)
when it is due, as the
one instance holding the scheduler lock; and beside it the alerter
(`services.alerter`: incidents and notifications), one instance too.

`atalaia scheduler` runs it in its own process, queueing jobs through the
training service's API; the embedded `atalaia serve` runs it in a thread,
queueing jobs on its own job queue (`with_scheduler`). A second instance finds
the lock taken and stays idle, polling it, until the first one ends.

A task is timed from its last completed run in the audit log, so a restart
neither repeats nor skips a run. A run that fails is tried again after
`RETRY_AFTER_S` (or at its next trigger, if sooner).
"""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

import structlog
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Engine

from atalaia.adapters.backup import database_backup_for
from atalaia.adapters.cache import RedisLink
from atalaia.adapters.db.lock import InstanceLock, instance_lock
from atalaia.adapters.notify import ChannelSender
from atalaia.adapters.storage import artifact_store_for
from atalaia.api.common.resources import Resources
from atalaia.api.training.state import JobsPart, JobsState
from atalaia.core.history import ColdPolicy
from atalaia.core.incidents import IncidentPolicy
from atalaia.core.operations import WavePolicy
from atalaia.core.ports import BatchSubmitter
from atalaia.core.schedule import (
    ScheduledTask,
    Task,
    archive_schedule,
    backup_schedule,
    fleet_schedule,
    healing_schedule,
    report_schedule,
    wave_schedule,
)
from atalaia.services import backup, cold_history, reports, rollouts
from atalaia.services.alerter import Alerter, AlerterThreads, load_rules_file
from atalaia.services.healing import Healer, HealingMetrics
from atalaia.services.scheduler import (
    InProcessSubmitter,
    RunReport,
    check_drift,
    last_runs,
    retrain_fleet,
)
from atalaia.services.training_chunk import SessionFactory
from atalaia.services.waves import launch_waves
from atalaia.settings import Settings

log = structlog.get_logger()

LOCK_NAME = "atalaia.scheduler"
ALERTER_LOCK = "atalaia.alerter"
MAX_SLEEP_S = 60.0  # the leader makes sure of its lock at least this often
STANDBY_POLL_S = 30.0  # an idle instance tries the lock this often
RETRY_AFTER_S = 300.0
STOP_TIMEOUT_S = 10.0


class TaskReport(Protocol):
    """What a task's run says: whether it failed, and its detail."""

    @property
    def error(self) -> str | None: ...

    def detail(self) -> dict[str, object]: ...


TaskRun = Callable[[datetime], TaskReport]


class Scheduler:
    """Runs `plan` (each task with what runs it) while holding `lock`."""

    def __init__(
        self,
        plan: Sequence[tuple[ScheduledTask, TaskRun]],
        *,
        lock: InstanceLock,
        last_runs: Callable[[], Mapping[Task, datetime]],
    ) -> None:
        self._plan = {scheduled.task: (scheduled, run) for scheduled, run in plan}
        self._lock = lock
        self._last_runs = last_runs
        self._due: dict[Task, datetime] | None = None  # read when taking the lead
        self._said: bool | None = None  # which of leading / standby was logged
        self.leading = False

    @property
    def tasks(self) -> tuple[Task, ...]:
        """The tasks it runs."""
        return tuple(self._plan)

    def step(self, now: datetime) -> float:
        """Run the tasks due at `now` if this instance holds the lock; return the
        seconds to wait before the next step."""
        if not self._lead():
            return STANDBY_POLL_S
        if self._due is None:
            last = self._last_runs()
            self._due = {
                task: scheduled.due(last_run=last.get(task), now=now)
                for task, (scheduled, _) in self._plan.items()
            }
            log.info(
                "scheduler.planned", **{t: d.isoformat() for t, d in self._due.items()}
            )
        for task, due in sorted(self._due.items(), key=lambda item: item[1]):
            if due <= now:
                self._due[task] = self._run(task, now)
        wait = (min(self._due.values()) - now).total_seconds()
        return min(max(wait, 0.0), MAX_SLEEP_S)

    def run_once(self, task: Task, now: datetime) -> TaskReport:
        """Run `task` now, whatever its schedule, with or without the lock."""
        return self._plan[task][1](now)

    def run(self, stop: threading.Event, clock: Callable[[], datetime]) -> None:
        """Step until `stop` is set, then let the lock go."""
        try:
            while not stop.is_set():
                try:
                    wait = self.step(clock())
                except Exception:  # the database may be down: try again later
                    log.error("scheduler.step_failed", exc_info=True)
                    wait = STANDBY_POLL_S
                stop.wait(wait)
        finally:
            self.close()

    def close(self) -> None:
        """Let the lock go (another instance takes over)."""
        self._lock.release()
        self._said = self.leading = False

    def _lead(self) -> bool:
        leading = self._lock.acquire()
        if leading is not self._said:
            log.info("scheduler.leading" if leading else "scheduler.standby")
            self._due = None  # another instance may have run tasks meanwhile
        self._said = self.leading = leading
        return leading

    def _run(self, task: Task, now: datetime) -> datetime:
        """Run `task`; return when it is due next."""
        scheduled, run = self._plan[task]
        following = scheduled.trigger.next_after(now)
        try:
            report = run(now)
        except Exception:
            log.error("scheduler.task_failed", task=task.value, exc_info=True)
            report = None
        if report is None or report.error:
            return min(following, now + timedelta(seconds=RETRY_AFTER_S))
        return following


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.drift_detected = Counter(
            "model_drift_detected",
            "Production models whose recent data drifted from their training data",
            registry=registry,
        )
        self.runs = Counter(
            "scheduler_runs",
            "Scheduler task runs by task and outcome",
            ["task", "outcome"],
            registry=registry,
        )
        self.leader = Gauge(
            "scheduler_leader",
            "1 while this scheduler instance holds the scheduler lock",
            registry=registry,
        )

    def observed(self, task: Task, run: TaskRun) -> TaskRun:
        """`run`, counted by outcome; a drift check counts the drifted series."""

        def observed_run(now: datetime) -> TaskReport:
            try:
                report = run(now)
            except Exception:
                self.runs.labels(task.value, "failed").inc()
                raise
            self.runs.labels(task.value, "failed" if report.error else "ok").inc()
            if isinstance(report, RunReport) and task is Task.DRIFT:
                self.drift_detected.inc(len(report.selected))
            return report

        return observed_run


def build_scheduler(
    settings: Settings,
    *,
    engine: Engine,
    sessions: SessionFactory,
    submitter: BatchSubmitter,
    registry: CollectorRegistry,
    redis: RedisLink | None = None,
) -> Scheduler:
    """The fleet schedule of `settings`, run against `engine`'s database, with
    the self-healing engine's runs."""
    healer = Healer(sessions, settings, submitter, HealingMetrics(registry))
    runs: dict[Task, TaskRun] = {
        Task.RETRAIN: lambda now: retrain_fleet(
            sessions=sessions,
            submitter=submitter,
            window_hours=settings.scheduler_retrain_window_hours,
            now=now,
        ),
        Task.DRIFT: lambda _now: check_drift(
            sessions=sessions,
            healer=healer,
            window_hours=settings.scheduler_drift_window_hours,
            retrain_window_hours=settings.scheduler_retrain_window_hours,
        ),
        Task.ROLLOUT: lambda now: rollouts.run_steps(
            sessions=sessions, now=now, redis=redis
        ),
        Task.HEALING: healer.run_task,
        Task.WAVE: lambda now: launch_waves(
            sessions=sessions,
            policy=WavePolicy(settings.weekly_wave),
            max_false_alarm_rate=settings.weekly_wave_max_false_alarm_rate,
            now=now,
        ),
        Task.ARCHIVE: lambda now: cold_history.archive(
            sessions=sessions,
            policy=ColdPolicy(hot_days=settings.hot_days or math.inf),
            folder=settings.cold_path,
            now=now.timestamp(),
        ),
        Task.REPORT: lambda now: reports.send_scheduled_reports(
            sessions=sessions,
            subscriptions=settings.report_subscriptions,
            delivery=report_delivery(settings),
            now=now,
        ),
        Task.BACKUP: lambda now: backup.scheduled_backup(
            backup_platform(settings),
            sessions=sessions,
            folder=settings.backup_dir or settings.home / "backups",
            keep=settings.backup_keep,
            now=now,
        ),
    }
    waves = WavePolicy(settings.weekly_wave) is not WavePolicy.NEVER
    schedule = (
        *fleet_schedule(
            retrain_weekday=settings.scheduler_retrain_weekday,
            retrain_hour=settings.scheduler_retrain_hour,
            drift_every_hours=settings.scheduler_drift_every_hours,
            rollout_every_minutes=settings.scheduler_rollout_every_minutes,
        ),
        healing_schedule(every_minutes=settings.healing_every_minutes),
        *(
            [wave_schedule(every_minutes=settings.scheduler_rollout_every_minutes)]
            if waves
            else []
        ),
        *(
            [archive_schedule(every_hours=settings.archive_every_hours)]
            if settings.hot_days is not None
            else []
        ),
        *(
            [
                report_schedule(
                    weekday=settings.report_weekday, hour=settings.report_hour
                )
            ]
            if settings.report_subscriptions
            else []
        ),
        *(
            [backup_schedule(every_hours=settings.backup_every_hours)]
            if settings.backup_dir is not None
            else []
        ),
    )
    metrics = SchedulerMetrics(registry)
    scheduler = Scheduler(
        [(s, metrics.observed(s.task, runs[s.task])) for s in schedule],
        lock=instance_lock(engine, LOCK_NAME),
        last_runs=partial(last_runs, sessions),
    )
    metrics.leader.set_function(lambda: float(scheduler.leading))
    for scheduled in schedule:
        log.info(
            "scheduler.task",
            task=scheduled.task.value,
            when=scheduled.trigger.describe(),
        )
    return scheduler


def report_delivery(settings: Settings) -> reports.Delivery:
    """Where the scheduled reports of `settings` are stored, laid out from and
    linked to."""
    return reports.Delivery(
        artifacts=artifact_store_for(settings),
        templates_dir=settings.report_templates_dir,
        public_url=settings.public_url or settings.training_url,
    )


def backup_platform(settings: Settings) -> backup.Platform:
    """The database and artifact store a backup of `settings` holds."""
    return backup.Platform(
        database_backup_for(settings.database_url), artifact_store_for(settings)
    )


def build_alerter(
    settings: Settings, *, engine: Engine, sessions: SessionFactory
) -> AlerterThreads:
    """The alerter of `settings` against `engine`'s database, its rules file
    read (not started)."""
    if settings.alert_rules_file is not None:
        load_rules_file(sessions, settings.alert_rules_file)
    policy = IncidentPolicy(
        settings.incident_gap_s, settings.incident_resolve_after,
        settings.incident_major_score, settings.incident_critical_score,
    )  # fmt: skip
    alerter = Alerter(
        sessions, ChannelSender.from_settings(settings), policy,
        retention_s=settings.anomaly_log_retention_days * 86_400.0,
    )  # fmt: skip
    lock = instance_lock(engine, ALERTER_LOCK)
    return AlerterThreads(
        alerter=alerter, poll_s=settings.alerter_poll_s,
        sweep_s=settings.alerter_sweep_s, leads=lock.acquire, release=lock.release,
    )  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC)


def with_scheduler(part: JobsPart) -> JobsPart:
    """`part`, which yields a `job_queue`, with the scheduler in a thread beside
    it, queueing its jobs there (the embedded platform; off unless
    `scheduler_in_process`)."""

    @asynccontextmanager
    async def with_tasks(
        resources: Resources, registry: CollectorRegistry
    ) -> AsyncIterator[JobsState]:
        async with part(resources, registry) as state:
            if not resources.settings.scheduler_in_process:
                yield state
                return
            turns = state["write_turns"]
            sessions = (
                turns.background_sessions(resources.engine)
                if turns
                else resources.sessions
            )
            submitter = InProcessSubmitter(
                sessions,
                state["job_queue"],
                min_interval_s=resources.settings.training_min_interval_s,
            )
            scheduler = build_scheduler(
                resources.settings,
                engine=resources.engine,
                sessions=sessions,
                submitter=submitter,
                registry=registry,
                redis=resources.redis,
            )
            alerter = build_alerter(
                resources.settings, engine=resources.engine, sessions=sessions
            )
            stop = threading.Event()
            thread = threading.Thread(
                target=scheduler.run,
                args=(stop, utcnow),
                name="atalaia-scheduler",
                daemon=True,
            )
            thread.start()
            alerter.start()
            resources.ready_checks["scheduler"] = lambda: (
                thread.is_alive(),
                "leading" if scheduler.leading else "standby",
            )
            try:
                yield state
            finally:
                stop.set()
                await run_in_threadpool(alerter.stop)
                await run_in_threadpool(thread.join, STOP_TIMEOUT_S)

    return with_tasks
