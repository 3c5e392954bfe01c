"""The self-healing engine on SQLite and PostgreSQL, its clock injected: each
rule on real data, acting through the platform's own paths, and every decision
recorded (table, audit log, metric) with its dry run, rate limit and repeats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import (
    ActionFilter,
    FeedbackStore,
    HealingAction,
    HealingLog,
    IncidentFilter,
    IncidentStore,
    JobStore,
    ModelStore,
    Outbox,
    ReadingStore,
    RollupStore,
)
from atalaia.adapters.db.tables import (
    AuditRow,
    JobRow,
    PlatformEventRow,
    RegistryEventRow,
    VersionRow,
)
from atalaia.adapters.notify import ChannelSender
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.healing import Outcome
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.notifications import Notification
from atalaia.core.ports import BatchSubmitter, SubmittedBatch
from atalaia.core.registry import Stage
from atalaia.core.series import Readings
from atalaia.core.serving import Rollups
from atalaia.services.alerter import Alerter
from atalaia.services.healing import Healer, HealingMetrics, HealingReport
from atalaia.services.registry import promote_version
from atalaia.services.scheduler import (
    ACTOR,
    InProcessSubmitter,
    RunReport,
    check_drift,
)
from atalaia.settings import Settings
from fixtures.fleet import add_day, serve_series
from fixtures.readings import DAY_S
from fixtures.scheduling import DownSubmitter, RecordingQueue

Sessions = sessionmaker[Session]

NOW = datetime.now(UTC).replace(microsecond=0)
TRAINED_UNTIL = NOW.timestamp() - DAY_S


class Clock:
    def __init__(self, at: float) -> None:
        self.now = at

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def submitter(sessions: Sessions, queue: RecordingQueue) -> InProcessSubmitter:
    return InProcessSubmitter(sessions, queue, min_interval_s=0)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def healer(
    sessions: Sessions,
    settings: Settings,
    submitter: BatchSubmitter,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    **overrides: Any,
) -> Healer:
    return Healer(
        sessions, settings.model_copy(update=overrides), submitter,
        HealingMetrics(registry) if registry else None,
        clock or Clock(NOW.timestamp()),
    )  # fmt: skip


def drift(engine: Healer) -> RunReport:
    return check_drift(
        sessions=engine.sessions, healer=engine, window_hours=24,
        retrain_window_hours=168,
    )  # fmt: skip


def actions(sessions: Sessions, **where: Any) -> list[HealingAction]:
    with sessions() as session:
        found, _ = HealingLog(session).page(ActionFilter(**where), None, 1_000)
    return found


def jobs_of(sessions: Sessions) -> dict[str, JobRow]:
    """The jobs the engine queued (through the scheduler's submitter)."""
    with sessions() as session:
        stmt = select(JobRow).where(JobRow.submitted_by == ACTOR)
        return {r.series_id: r for r in session.scalars(stmt)}


def decided(registry: CollectorRegistry, **labels: str) -> float:
    value = registry.get_sample_value("healing_decisions_total", labels)
    return value or 0.0


@pytest.fixture
def drifted(sessions: Sessions, artifacts: LocalArtifactStore) -> list[str]:
    """Two series in production whose last day drifted."""
    series = ["sensor_001_radial", "sensor_002_radial"]
    for seed, series_id in enumerate(series):
        serve_series(sessions, artifacts, series_id, end=TRAINED_UNTIL, seed=seed)
        add_day(sessions, series_id, after=TRAINED_UNTIL, seed=seed, drift=True)
    return series


@pytest.mark.usefixtures("drifted")
class TestDataDrift:
    def test_retrains_through_the_engine_and_records_why(
        self,
        sessions: Sessions,
        settings: Settings,
        submitter: InProcessSubmitter,
        registry: CollectorRegistry,
    ) -> None:
        report = drift(healer(sessions, settings, submitter, registry))

        assert report.accepted == 2
        assert sorted(jobs_of(sessions)) == ["sensor_001_radial", "sensor_002_radial"]
        done = actions(sessions, rule="data_drift")
        assert {(a.action, a.outcome.value) for a in done} == {("retrain", "done")}
        assert done[0].evidence["psi"] > 0.2
        assert done[0].reason.startswith("its recent readings left v1's training")
        assert decided(registry, rule="data_drift", action="retrain", outcome="done")
        with sessions() as session:
            audit = session.scalars(
                select(AuditRow).where(AuditRow.action == "healing.retrain")
            ).all()
        assert {a.target for a in audit} == {"sensor_001_radial", "sensor_002_radial"}
        assert audit[0].detail["evidence"]["version"] == 1

    def test_a_dry_run_records_its_decisions_and_queues_nothing(
        self,
        sessions: Sessions,
        settings: Settings,
        submitter: InProcessSubmitter,
        queue: RecordingQueue,
        registry: CollectorRegistry,
    ) -> None:
        engine = healer(
            sessions, settings, submitter, registry, healing_data_drift_dry_run=True
        )

        report = drift(engine)

        assert (report.selected, report.accepted) == (
            ["sensor_001_radial", "sensor_002_radial"], 0,
        )  # fmt: skip
        assert jobs_of(sessions) == {}
        assert queue.dispatched == []
        assert {a.outcome.value for a in actions(sessions)} == {"dry_run"}
        assert (
            decided(registry, rule="data_drift", action="retrain", outcome="dry_run")
            == 2
        )

    def test_decisions_past_the_rate_limit_wait(
        self, sessions: Sessions, settings: Settings, submitter: InProcessSubmitter
    ) -> None:
        engine = healer(
            sessions, settings, submitter, healing_data_drift_max_per_hour=1
        )

        drift(engine)
        again = drift(engine)  # one queued, the other limited: neither decided again

        outcomes = sorted(a.outcome.value for a in actions(sessions))
        assert outcomes == ["done", "rate_limited"]
        assert len(jobs_of(sessions)) == 1
        assert (again.accepted, again.skipped_busy) == (0, 2)

    def test_a_training_service_down_opens_its_circuit(
        self, sessions: Sessions, settings: Settings
    ) -> None:
        down = CountingDown()
        clock = Clock(NOW.timestamp())
        engine = healer(sessions, settings, down, clock=clock)

        first = drift(engine)
        clock.now += 10
        second = drift(engine)  # left alone: no call
        clock.now += 60
        drift(engine)  # a trial call, failing: twice as long

        assert first.error == "training service is unavailable: ConnectError"
        assert down.calls == 2
        assert second.accepted == 0
        circuit = actions(sessions, rule="dependency_circuit")
        assert [a.evidence["backoff_s"] for a in circuit] == [120.0, 60.0]
        assert {a.target for a in circuit} == {"training_service"}
        skipped = actions(sessions, rule="data_drift", outcome=Outcome.SKIPPED)
        assert len(skipped) == 2
        assert "training_service left alone until" in skipped[0].reason


class CountingDown(DownSubmitter):
    def __init__(self) -> None:
        self.calls = 0

    def submit(
        self,
        series_ids: Sequence[str],
        *,
        algorithm: str,
        hyperparameters: Mapping[str, float],
        window_hours: float,
    ) -> SubmittedBatch:
        self.calls += 1
        return super().submit(
            series_ids, algorithm=algorithm, hyperparameters=hyperparameters,
            window_hours=window_hours,
        )  # fmt: skip


SERIES = "sensor_003_radial"
FALSE_SCORES = [round(1.1 + 0.1 * i, 1) for i in range(29)]  # 1.1 … 3.9
TRUE_SCORES = [5.0 + i for i in range(10)]


@pytest.fixture
def served(sessions: Sessions, artifacts: LocalArtifactStore) -> None:
    """SERIES in production (v1, zscore), made three hours ago."""
    serve_series(sessions, artifacts, SERIES, end=TRAINED_UNTIL)
    with sessions() as session:
        session.execute(update(VersionRow).values(created_at=NOW - timedelta(hours=3)))
        session.commit()


def label(
    sessions: Sessions, scores: Sequence[float], is_anomaly: bool, t0: float
) -> None:
    """Readings of SERIES at these scores against v1's band, stored, labelled."""
    with sessions() as session:
        v1 = ModelStore(session).get(SERIES, 1).params
        half = v1.scale * v1.threshold
        timestamps = t0 + 60.0 * np.arange(len(scores), dtype=np.float64)
        values = v1.center + half * np.asarray(scores, np.float64)
        ReadingStore(session).append(SERIES, Readings(timestamps, values))
        feedback = FeedbackStore(session)
        for ts in timestamps.tolist():
            feedback.add(
                series_id=SERIES, ts=ts, is_anomaly=is_anomaly, version=1, note="",
                actor="tester",
            )  # fmt: skip
        session.commit()


@pytest.mark.usefixtures("served")
class TestConceptDrift:
    def test_labels_enough_register_a_recalibrated_staging_version(
        self, sessions: Sessions, settings: Settings, submitter: InProcessSubmitter
    ) -> None:
        label(sessions, FALSE_SCORES, False, TRAINED_UNTIL + 60)
        label(sessions, TRUE_SCORES, True, TRAINED_UNTIL + 3600)
        engine = healer(sessions, settings, submitter)

        engine.run_task(NOW)
        engine.run_task(NOW + timedelta(minutes=5))  # concept signals: hourly
        engine.run_task(NOW + timedelta(hours=1))  # v2 waits: not again

        with sessions() as session:
            models = ModelStore(session)
            v1, v2 = models.get(SERIES, 1), models.get(SERIES, 2)
            assert models.production(SERIES) == v1  # promotion is not its job
            assert sorted(v.version for v in models.versions(SERIES)) == [1, 2]
            job = JobStore(session).get(v2.lineage.job_id)
        # 2 of the 12 labels above 3.7 are false alarms (≤ 20 %); above 3.6, 3.
        assert v2.stage is Stage.STAGING
        assert v2.params.threshold == pytest.approx(v1.params.threshold * 3.7)
        assert (v2.params.center, v2.params.scale) == (
            v1.params.center,
            v1.params.scale,
        )
        assert v2.metrics["recalibration_of"] == "v1"
        assert v2.reference == v1.reference
        assert (job.status, job.submitted_by, job.version) == (
            JobStatus.SUCCEEDED, "healing", 2,
        )  # fmt: skip
        [made] = actions(sessions, rule="concept_drift")
        assert (made.action, made.outcome.value) == ("recalibrate", "done")
        assert made.evidence["cut"] == pytest.approx(3.7)
        assert "29 of 39 labels say false alarm" in made.reason

    def test_an_anomaly_rate_off_its_baseline_retrains(
        self,
        sessions: Sessions,
        settings: Settings,
        submitter: InProcessSubmitter,
        queue: RecordingQueue,
    ) -> None:
        hour = NOW.replace(minute=0, second=0) - timedelta(hours=1)
        with sessions() as session:
            RollupStore(session).add(
                Rollups(hour, [SERIES], [5_000], [1_500], [5_000], [500.0], [1.0])
            )
            session.commit()

        healer(sessions, settings, submitter).run_task(NOW)

        [made] = actions(sessions, rule="concept_drift")
        assert (made.action, made.target, made.outcome.value) == (
            "retrain", SERIES, "done",
        )  # fmt: skip
        assert made.evidence["anomaly_rate"] == 0.3
        assert "anomaly rate 30.00% against" in made.reason
        assert jobs_of(sessions)[SERIES].status == JobStatus.QUEUED.value
        assert len(queue.dispatched) == 1


SILENT_SENSOR = ("sensor_009_radial", "sensor_009_axial")
LAST_READING = NOW.timestamp() - 3600.0


def store_minutes(sessions: Sessions, start: float, n: int) -> None:
    with sessions() as session:
        for series_id in SILENT_SENSOR:
            ts = start + 60.0 * np.arange(n, dtype=np.float64)
            ReadingStore(session).append(series_id, Readings(ts, np.full(n, 0.3)))
        session.commit()


class TestSilentSensor:
    def test_one_incident_while_silent_resolved_once_it_reports(
        self, sessions: Sessions, settings: Settings, submitter: InProcessSubmitter
    ) -> None:
        store_minutes(sessions, LAST_READING - 60.0 * 99, 100)
        clock = Clock(NOW.timestamp())
        engine = healer(sessions, settings, submitter, clock=clock)
        alerter = Alerter(sessions, ChannelSender.from_settings(settings), clock=clock)

        engine.run_task(NOW)  # an hour without a reading: 60 usual intervals
        alerter.step()
        engine.run_task(NOW + timedelta(minutes=5))  # its incident is live

        with sessions() as session:
            (incident,) = IncidentStore(session).page(IncidentFilter(), None, 10)[0]
        assert (incident.sensor_id, incident.kind, incident.state) == (
            "sensor_009", "data_quality", "open",
        )  # fmt: skip
        assert incident.peak["reason"] == "silent"
        assert sorted(incident.series) == sorted(SILENT_SENSOR)
        [opened] = actions(sessions, rule="sensor_quality")
        assert opened.action == "open_incident"
        assert "no reading from sensor_009_axial, sensor_009_radial" in opened.reason

        store_minutes(sessions, NOW.timestamp() + 360.0, 3)
        clock.now = NOW.timestamp() + 600.0
        engine.run_task(NOW + timedelta(minutes=10))
        alerter.step()

        with sessions() as session:
            assert IncidentStore(session).get(incident.id or 0).state == "resolved"
        assert [a.action for a in actions(sessions, rule="sensor_quality")] == [
            "close_incident", "open_incident",
        ]  # fmt: skip


class TestTrainingBacklog:
    def test_a_long_queue_raises_one_alert_with_what_to_scale(
        self, sessions: Sessions, settings: Settings, submitter: InProcessSubmitter
    ) -> None:
        with sessions() as session:
            JobStore(session).add_many([
                TrainingJob(
                    f"job-{i}", f"pump_{i}_x", JobStatus.QUEUED, "zscore", {}, None,
                    168.0, NOW - timedelta(minutes=42), "tester",
                )
                for i in range(3)
            ])  # fmt: skip
            session.commit()
        engine = healer(sessions, settings, submitter)

        report = engine.run_task(NOW)
        engine.run_task(NOW + timedelta(minutes=5))  # the same backlog

        with sessions() as session:
            (event,) = session.scalars(select(PlatformEventRow)).all()
        assert event.event == "platform.alert"
        assert event.text == (
            "3 jobs queued, oldest 42 min: add workers: `atalaia worker` / raise "
            "the HPA max in deploy/k8s"
        )
        assert event.document["severity"] == "major"
        assert event.document["oldest_job"] == "job-0"
        assert report.decisions == {"training_backlog.alert.done": 1}
        assert isinstance(report, HealingReport)


class TestFailingChannel:
    def test_its_circuit_is_recorded_open_then_closed(
        self, sessions: Sessions, settings: Settings, submitter: InProcessSubmitter
    ) -> None:
        at = NOW.timestamp()
        with sessions() as session:
            outbox = Outbox(session)
            outbox.add([("hook", "ops", None, Notification(
                "k1", "platform.alert", "major", "t", "x", at,
            ))])  # fmt: skip
            (head,) = outbox.due(at, 10)["hook"]
            for attempt in range(3):
                outbox.failed(head.id, "POST hook: HTTP 503", retry_at=at + attempt)
            session.commit()
        engine = healer(sessions, settings, submitter)

        engine.run_task(NOW)
        engine.run_task(NOW + timedelta(minutes=5))  # still failing: said once
        with sessions() as session:
            Outbox(session).sent(head.id, at + 400)
            session.commit()
        engine.run_task(NOW + timedelta(minutes=10))

        circuit = actions(sessions, rule="dependency_circuit")
        assert [(a.action, a.target) for a in circuit] == [
            ("close_circuit", "channel:hook"),
            ("open_circuit", "channel:hook"),
        ]
        assert circuit[1].evidence["last_error"] == "POST hook: HTTP 503"
        assert circuit[1].evidence["failures"] == 3


def test_every_rule_off_decides_nothing(
    sessions: Sessions, settings: Settings, submitter: InProcessSubmitter
) -> None:
    store_minutes(sessions, LAST_READING - 60.0 * 99, 100)
    engine = healer(sessions, settings, submitter, healing_sensor_quality_enabled=False)

    report = engine.run_task(NOW)

    assert report.decisions == {}
    assert actions(sessions) == []
    with sessions() as session:
        audit = session.scalars(
            select(AuditRow).where(AuditRow.action == "scheduler.healing")
        ).all()
    assert len(audit) == 1


PROMOTED = "sensor_004_radial"


@pytest.fixture
def promoted(sessions: Sessions, artifacts: LocalArtifactStore) -> datetime:
    """PROMOTED served by v2 since five hours ago, v1 before it; the hour of
    the promotion."""
    serve_series(sessions, artifacts, PROMOTED, end=TRAINED_UNTIL)
    serve_series(sessions, artifacts, PROMOTED, end=TRAINED_UNTIL, promote=False)
    with sessions() as session:
        promote_version(
            session=session, series_id=PROMOTED, version=2, archive_existing=True,
            actor="tester",
        )  # fmt: skip
        at = NOW - timedelta(hours=5)
        session.execute(
            update(RegistryEventRow)
            .where(
                RegistryEventRow.series_id == PROMOTED, RegistryEventRow.version == 2
            )
            .values(at=at)
        )
        session.commit()
    return at.replace(minute=0, second=0)


def hourly(
    sessions: Sessions, first: datetime, hours: int, anomaly_rate: float
) -> None:
    """PROMOTED's rollups: 1,000 answers an hour from `first` on."""
    for h in range(hours):
        with sessions() as session:
            anomalies = round(1_000 * anomaly_rate)
            RollupStore(session).add(Rollups(
                first + timedelta(hours=h), [PROMOTED], [1_000], [anomalies], [1_000],
                [500.0], [1.0],
            ))  # fmt: skip
            session.commit()


class TestProductionGates:
    def test_a_version_whose_anomaly_rate_left_the_replaced_one_s_is_rolled_back(
        self,
        sessions: Sessions,
        settings: Settings,
        submitter: InProcessSubmitter,
        promoted: datetime,
    ) -> None:
        hourly(sessions, promoted - timedelta(hours=6), 6, 0.01)  # v1
        hourly(sessions, promoted + timedelta(hours=1), 4, 0.08)  # v2

        healer(sessions, settings, submitter).run_task(NOW)

        [made] = actions(sessions, rule="production_gates")
        assert (made.action, made.target, made.outcome.value) == (
            "roll_back", PROMOTED, "done",
        )  # fmt: skip
        assert "anomaly rate 8.00% is not within ±20% of production's 1.00%" in (
            made.reason
        )
        assert made.evidence["replaced_anomaly_rate"] == pytest.approx(0.01)
        with sessions() as session:
            models = ModelStore(session)
            assert models.production(PROMOTED).version == 1  # type: ignore[union-attr]
            assert models.get(PROMOTED, 2).stage is Stage.ARCHIVED
            last = models.ledger(PROMOTED)[-1]
            events = session.scalars(
                select(PlatformEventRow.event).where(
                    PlatformEventRow.series_id == PROMOTED
                )
            ).all()
        assert (last.actor, last.version) == ("healing", 1)
        assert last.evidence is not None
        assert last.evidence["anomaly_rate"] == 0.08
        assert "model.rolled_back" in events

    def test_a_dry_run_says_so_and_leaves_it(
        self,
        sessions: Sessions,
        settings: Settings,
        submitter: InProcessSubmitter,
        promoted: datetime,
    ) -> None:
        hourly(sessions, promoted - timedelta(hours=6), 6, 0.01)
        hourly(sessions, promoted + timedelta(hours=1), 4, 0.08)

        healer(
            sessions, settings, submitter, healing_production_gates_dry_run=True
        ).run_task(NOW)

        [made] = actions(sessions, rule="production_gates")
        assert made.outcome is Outcome.DRY_RUN
        with sessions() as session:
            assert ModelStore(session).production(PROMOTED).version == 2  # type: ignore[union-attr]

    def test_a_version_answering_like_the_replaced_one_stays(
        self,
        sessions: Sessions,
        settings: Settings,
        submitter: InProcessSubmitter,
        promoted: datetime,
    ) -> None:
        hourly(sessions, promoted - timedelta(hours=6), 6, 0.01)
        hourly(sessions, promoted + timedelta(hours=1), 4, 0.011)

        healer(sessions, settings, submitter).run_task(NOW)

        assert actions(sessions, rule="production_gates") == []
