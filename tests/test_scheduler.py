"""The scheduler loop: what runs at which step, as the one instance holding the
lock; its metrics; and its thread inside the embedded platform.

Steps are given their time: nothing here waits for a clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.lock import instance_lock
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.tables import AuditRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Role
from atalaia.core.schedule import Every, ScheduledTask, Task, Weekly
from atalaia.embedded import create_embedded_app
from atalaia.scheduler import (
    LOCK_NAME,
    MAX_SLEEP_S,
    RETRY_AFTER_S,
    STANDBY_POLL_S,
    Scheduler,
    SchedulerMetrics,
    build_scheduler,
)
from atalaia.services.scheduler import ACTOR, InProcessSubmitter, RunReport
from atalaia.settings import ReportSubscription, Settings
from fixtures.api import bearer, wait_for
from fixtures.fleet import add_day, serve_series
from fixtures.scheduling import RecordingQueue

NOW = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)  # a Tuesday
HOUR = timedelta(hours=1)
DRIFT = ScheduledTask(Task.DRIFT, Every(6))
RETRAIN = ScheduledTask(Task.RETRAIN, Weekly(6, 2))


class Recorder:
    """A task run that notes when it ran and reports `error`."""

    def __init__(self, task: Task, error: str | None = None) -> None:
        self.task = task
        self.error = error
        self.runs: list[datetime] = []

    def __call__(self, now: datetime) -> RunReport:
        self.runs.append(now)
        return RunReport(
            self.task.value, considered=1, selected=["s"], retrain_window_hours=168,
            error=self.error,
        )  # fmt: skip


SchedulerFactory = Callable[..., tuple[Scheduler, Recorder, Recorder]]


@pytest.fixture
def make_scheduler(database_url: str) -> Iterator[SchedulerFactory]:
    """Schedulers on `database_url`, each with its own engine and lock (as
    separate processes would have), their last runs as given."""
    engines, schedulers = [], []

    def make(
        last: Mapping[Task, datetime] | None = None, *, error: str | None = None
    ) -> tuple[Scheduler, Recorder, Recorder]:
        engines.append(make_engine(database_url))
        drift, retrain = Recorder(Task.DRIFT, error), Recorder(Task.RETRAIN)
        scheduler = Scheduler(
            [(DRIFT, drift), (RETRAIN, retrain)],
            lock=instance_lock(engines[-1], LOCK_NAME),
            last_runs=lambda: dict(last or {}),
        )
        schedulers.append(scheduler)
        return scheduler, drift, retrain

    try:
        yield make
    finally:
        for scheduler in schedulers:
            scheduler.close()
        for engine in engines:
            engine.dispose()


class TestStep:
    def test_runs_what_is_due_and_times_it_from_that_run(
        self, make_scheduler: SchedulerFactory
    ) -> None:
        scheduler, drift, retrain = make_scheduler({Task.DRIFT: NOW - 7 * HOUR})

        assert scheduler.step(NOW) == MAX_SLEEP_S
        assert scheduler.step(NOW + 5 * HOUR) == MAX_SLEEP_S
        scheduler.step(NOW + 6 * HOUR)

        assert drift.runs == [NOW, NOW + 6 * HOUR]
        assert retrain.runs == []  # never ran: waits for Sunday 02:00

    def test_a_task_that_never_ran_runs_at_its_first_trigger(
        self, make_scheduler: SchedulerFactory
    ) -> None:
        scheduler, _, retrain = make_scheduler()
        sunday = datetime(2026, 12, 6, 2, tzinfo=UTC)

        scheduler.step(NOW)
        scheduler.step(sunday - timedelta(seconds=1))
        assert scheduler.step(sunday) == MAX_SLEEP_S

        assert retrain.runs == [sunday]

    def test_waits_until_the_next_due_task_when_that_is_sooner(
        self, make_scheduler: SchedulerFactory
    ) -> None:
        soon = timedelta(seconds=30)
        scheduler, _, _ = make_scheduler({Task.DRIFT: NOW - 6 * HOUR + soon})

        assert scheduler.step(NOW) == soon.total_seconds()

    def test_a_failed_run_is_tried_again_after_a_while(
        self, make_scheduler: SchedulerFactory
    ) -> None:
        scheduler, drift, _ = make_scheduler({Task.DRIFT: NOW - 7 * HOUR}, error="down")
        retry = NOW + timedelta(seconds=RETRY_AFTER_S)

        scheduler.step(NOW)
        scheduler.step(retry - timedelta(seconds=1))
        scheduler.step(retry)

        assert drift.runs == [NOW, retry]


class TestOneInstance:
    def test_a_second_instance_stays_idle_until_the_first_stops(
        self, make_scheduler: SchedulerFactory
    ) -> None:
        overdue = {Task.DRIFT: NOW - 7 * HOUR}
        first, first_drift, _ = make_scheduler(overdue)
        second, second_drift, _ = make_scheduler(overdue)

        first.step(NOW)
        assert second.step(NOW) == STANDBY_POLL_S
        assert (first.leading, second.leading) == (True, False)
        assert (first_drift.runs, second_drift.runs) == ([NOW], [])

        stop = _stopped()
        first.run(stop, clock=lambda: NOW)  # returns at once: it lets the lock go
        second.step(NOW + HOUR)

        assert second.leading
        assert second_drift.runs == [NOW + HOUR]  # as its audit log said: overdue


def _stopped() -> threading.Event:
    stop = threading.Event()
    stop.set()
    return stop


def test_metrics_count_runs_and_drifted_models() -> None:
    registry = CollectorRegistry()
    metrics = SchedulerMetrics(registry)
    drift = metrics.observed(Task.DRIFT, Recorder(Task.DRIFT))
    failing = metrics.observed(Task.RETRAIN, Recorder(Task.RETRAIN, error="down"))

    drift(NOW)
    drift(NOW)
    failing(NOW)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("model_drift_detected_total") == 2
    assert value("scheduler_runs_total", task="drift", outcome="ok") == 2
    assert value("scheduler_runs_total", task="retrain", outcome="failed") == 1


@pytest.mark.parametrize(
    ("update", "task", "scheduled"),
    [
        ({"weekly_wave": "never"}, Task.WAVE, False),
        ({"weekly_wave": "canary_if_healthy"}, Task.WAVE, True),
        ({"hot_days": None}, Task.ARCHIVE, False),
        ({"hot_days": 30.0}, Task.ARCHIVE, True),
        ({"backup_dir": None}, Task.BACKUP, False),
        ({"backup_dir": Path("backups")}, Task.BACKUP, True),
    ],
)
def test_the_optional_tasks_run_when_their_settings_ask_for_them(
    settings: Settings, update: dict[str, object], task: Task, scheduled: bool
) -> None:
    upgrade_database(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    scheduler = build_scheduler(
        settings.model_copy(update=update),
        engine=engine, sessions=sessions,
        submitter=InProcessSubmitter(sessions, RecordingQueue(), min_interval_s=0),
        registry=CollectorRegistry(),
    )  # fmt: skip
    try:
        assert (task in scheduler.tasks) is scheduled
        assert {Task.RETRAIN, Task.DRIFT, Task.ROLLOUT} <= set(scheduler.tasks)
    finally:
        scheduler.close()
        engine.dispose()


def test_the_reports_run_when_subscriptions_ask_for_them(settings: Settings) -> None:
    upgrade_database(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    weekly = ReportSubscription(name="weekly", formats=["xlsx"], channels=["mail"])
    build = partial(
        build_scheduler, engine=engine, sessions=sessions,
        submitter=InProcessSubmitter(sessions, RecordingQueue(), min_interval_s=0),
    )  # fmt: skip
    off = build(settings, registry=CollectorRegistry())
    on = build(
        settings.model_copy(update={"report_subscriptions": [weekly]}),
        registry=CollectorRegistry(),
    )
    try:
        report = on.run_once(Task.REPORT, datetime.now(UTC))

        assert Task.REPORT not in off.tasks
        assert Task.REPORT in on.tasks
        assert report.error is None
        (stored,) = (settings.artifacts_path / "reports" / "weekly").iterdir()
        assert stored.suffix == ".xlsx"
    finally:
        off.close()
        on.close()
        engine.dispose()


class TestEmbedded:
    def test_runs_the_scheduler_in_a_thread_of_the_platform(
        self, settings: Settings
    ) -> None:
        with TestClient(create_embedded_app(settings)) as client:
            ready = client.get("/ready").json()
            metrics = client.get("/metrics").text

        assert ready["checks"]["scheduler"]["ok"]
        assert "model_drift_detected_total 0.0" in metrics
        assert "scheduler_leader" in metrics

    def test_an_overdue_drift_check_runs_at_start_and_its_job_runs_here(
        self, settings: Settings
    ) -> None:
        settings = settings.model_copy(update={"training_min_interval_s": 0})
        upgrade_database(settings.database_url)
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        artifacts = LocalArtifactStore(settings.artifacts_path)
        try:
            serve_series(sessions, artifacts, "sensor_001_radial", end=NOW.timestamp())
            add_day(
                sessions, "sensor_001_radial", after=NOW.timestamp(), seed=0, drift=True
            )
            with sessions() as session:  # the last drift check was 7 hours ago
                at = datetime.now(UTC) - 7 * HOUR
                session.add(
                    AuditRow(
                        at=at, actor=ACTOR, action="scheduler.drift", target="fleet"
                    )
                )
                session.commit()

            with TestClient(create_embedded_app(settings)) as client:
                headers = bearer(settings, Role.ADMIN)  # admins are not rate-limited

                def retrained() -> dict[str, Any] | None:
                    jobs = client.get("/api/v1/training/jobs", headers=headers)
                    done = [j for j in jobs.json()["jobs"] if j["model_version"] == 2]
                    return done[0] if done else None

                job = wait_for(retrained)
                metrics = client.get("/metrics").text
        finally:
            engine.dispose()

        assert (job["series_id"], job["source"]) == (
            "sensor_001_radial", {"kind": "stored", "window_hours": 168},
        )  # fmt: skip
        assert "model_drift_detected_total 1.0" in metrics

    def test_can_leave_the_tasks_to_a_scheduler_process(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        apart = settings.model_copy(update={"scheduler_in_process": False})

        with TestClient(create_embedded_app(apart)) as client:
            ready = client.get("/ready").json()

        assert "scheduler" not in ready["checks"]
        assert not list(tmp_path.glob("*.lock"))
