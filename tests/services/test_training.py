"""Running training jobs, alone or in chunks: idempotent per job, numbered per
series, failures kept per job."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import JobStore, ModelStore, ReadingStore
from atalaia.adapters.db.tables import JobRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.detectors import fit
from atalaia.core.detectors.stuck import MIN_STUCK_AFTER, stuck_after
from atalaia.core.drift import reference_profile
from atalaia.core.fitting import Fit, fit_series
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.registry import ModelVersion, Stage, StageChange
from atalaia.core.series import Readings
from atalaia.errors import JobNotCancellable, TrainingRateLimited
from atalaia.services import training
from atalaia.services.training_chunk import fail_jobs
from fixtures.readings import sensor_readings, sensor_series

Sessions = sessionmaker[Session]
SERIES = "sensor_010_axial"


def submit(
    sessions: Sessions,
    artifacts: LocalArtifactStore,
    *,
    seed: int = 0,
    interval: int = 0,
) -> TrainingJob:
    timestamps, values = sensor_series(seed=seed)
    request = training.TrainingRequest(
        SERIES, "robust", {}, readings=Readings(timestamps, values)
    )
    with sessions() as session:
        job = training.submit_training(
            session=session, artifacts=artifacts, request=request,
            actor="test", min_interval_s=interval,
        )  # fmt: skip
        session.commit()
    return job


def run(
    sessions: Sessions, artifacts: LocalArtifactStore, job_id: str
) -> ModelVersion | None:
    return training.run_training_job(job_id, sessions=sessions, artifacts=artifacts)


def versions(sessions: Sessions) -> list[int]:
    with sessions() as session:
        return sorted(v.version for v in ModelStore(session).versions(SERIES))


class TestRunTrainingJob:
    def test_registers_version_one_in_staging(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)

        model = run(sessions, artifacts, job.job_id)

        assert model is not None
        assert (model.version, model.stage, model.algorithm) == (
            1,
            Stage.STAGING,
            "robust",
        )
        with sessions() as session:
            assert JobStore(session).get(job.job_id).status is JobStatus.SUCCEEDED

    def test_an_auto_version_keeps_its_stuck_guard(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        timestamps, values = sensor_series()
        quantised = np.round(values, 2)  # repeats by chance: a limit above 2
        request = training.TrainingRequest(
            SERIES, "auto", {}, readings=Readings(timestamps, quantised)
        )
        with sessions() as session:
            job = training.submit_training(
                session=session, artifacts=artifacts, request=request,
                actor="test", min_interval_s=0,
            )  # fmt: skip
            session.commit()

        model = run(sessions, artifacts, job.job_id)

        assert model is not None
        limit = stuck_after(quantised)
        assert limit > MIN_STUCK_AFTER
        assert model.stuck_after == limit
        assert model.metrics["stuck_after"] == float(limit)
        with sessions() as session:
            assert ModelStore(session).get(SERIES, 1).stuck_after == limit

    def test_a_version_of_another_family_has_no_stuck_guard(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        model = run(sessions, artifacts, submit(sessions, artifacts).job_id)

        assert model is not None
        assert model.stuck_after == 0
        assert "stuck_after" not in model.metrics

    def test_running_a_job_twice_yields_one_version(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)

        first = run(sessions, artifacts, job.job_id)
        second = run(sessions, artifacts, job.job_id)

        assert first is not None
        assert second is not None
        assert first.version == second.version == 1
        assert versions(sessions) == [1]

    def test_a_job_run_by_two_workers_at_once_yields_one_version(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        results: list[ModelVersion | None] = []
        workers = [
            threading.Thread(
                target=lambda: results.append(run(sessions, artifacts, job.job_id))
            )
            for _ in range(2)
        ]

        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        assert versions(sessions) == [1]
        assert {r.version for r in results if r is not None} == {1}

    def test_resumes_a_job_whose_worker_died_while_running_it(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        with sessions() as session:  # as left by a worker killed mid-job
            session.execute(
                update(JobRow)
                .where(JobRow.job_id == job.job_id)
                .values(status="running")
            )
            session.commit()

        model = run(sessions, artifacts, job.job_id)

        assert model is not None
        assert versions(sessions) == [1]

    def test_numbers_versions_per_series(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        jobs = [submit(sessions, artifacts, seed=s) for s in range(3)]

        for job in jobs:
            run(sessions, artifacts, job.job_id)

        assert versions(sessions) == [1, 2, 3]

    def test_a_cancelled_job_does_not_run(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        with sessions() as session:
            training.cancel_job(session=session, job_id=job.job_id, actor="test")
            session.commit()

        assert run(sessions, artifacts, job.job_id) is None
        assert versions(sessions) == []

    def test_records_why_a_stored_window_could_not_train(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        run(sessions, artifacts, job.job_id)
        with sessions() as session:  # a window job whose data vanished since submission
            window_job = TrainingJob(
                job_id=training.new_job_id(), series_id="ghost",
                status=JobStatus.QUEUED,
                algorithm="zscore", hyperparameters={"threshold_sigma": 3.0},
                payload_key=None, window_hours=24, created_at=job.created_at,
                submitted_by="test",
            )  # fmt: skip
            JobStore(session).add(window_job)
            session.commit()

        assert run(sessions, artifacts, window_job.job_id) is None
        with sessions() as session:
            failed = JobStore(session).get(window_job.job_id)
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None
        assert failed.error["rule"] == "min_points"


class TestPayload:
    def test_inline_data_is_dropped_once_stored_as_readings(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        assert job.payload_key is not None
        assert artifacts.exists(job.payload_key)

        run(sessions, artifacts, job.job_id)

        assert not artifacts.exists(job.payload_key)
        with sessions() as session:
            assert ReadingStore(session).count_last_hours(SERIES, 168) == 10_080


class TestSubmit:
    def test_refuses_a_second_training_within_the_interval(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        submit(sessions, artifacts, interval=300)

        with pytest.raises(TrainingRateLimited) as caught:
            submit(sessions, artifacts, interval=300)

        assert 290 <= caught.value.retry_after <= 300

    def test_a_finished_job_cannot_be_cancelled(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        run(sessions, artifacts, job.job_id)

        with sessions() as session, pytest.raises(JobNotCancellable):
            training.cancel_job(session=session, job_id=job.job_id, actor="test")


FLEET = [f"sensor_{n:03d}_{axis}" for n in (1, 2) for axis in ("axial", "radial")]
FIT_SERIES = "atalaia.services.training_chunk.fit_series"


def store_weeks(sessions: Sessions, ids: list[str]) -> dict[str, Readings]:
    weeks = {sid: sensor_readings(seed=i) for i, sid in enumerate(ids)}
    with sessions() as session:
        ReadingStore(session).append_many(weeks)
        session.commit()
    return weeks


def submit_weeks(
    sessions: Sessions,
    ids: list[str],
    algorithm: str = "robust",
    hyperparameters: dict[str, object] | None = None,
) -> list[str]:
    with sessions() as session:
        submission = training.submit_batch(
            session=session, series_ids=ids, algorithm=algorithm,
            hyperparameters=hyperparameters or {}, window_hours=168, actor="test",
            min_interval_s=0,
        )  # fmt: skip
        session.commit()
    return [job.job_id for job in submission.accepted]


def run_chunk(
    sessions: Sessions, artifacts: LocalArtifactStore, job_ids: list[str]
) -> dict[str, ModelVersion | None]:
    return training.run_training_chunk(job_ids, sessions=sessions, artifacts=artifacts)


def failed_jobs_counted(sessions: Sessions) -> int:
    with sessions() as session:
        return JobStore(session).failed_count()


def jobs_by_status(sessions: Sessions, job_ids: list[str]) -> dict[str, JobStatus]:
    with sessions() as session:
        return {j.job_id: j.status for j in JobStore(session).get_many(job_ids)}


class TestRunTrainingChunk:
    def test_registers_a_version_per_job_as_if_trained_alone(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        weeks = store_weeks(sessions, FLEET)
        job_ids = submit_weeks(sessions, FLEET)

        outcome = run_chunk(sessions, artifacts, job_ids)

        assert set(outcome) == set(job_ids)
        for job_id, model in outcome.items():
            assert model is not None
            week = weeks[model.series_id]
            assert (model.version, model.stage) == (1, Stage.STAGING)
            assert model.params == fit("robust", week.values, {})
            assert model.reference == reference_profile(week.values)
            assert model.lineage.job_id == job_id
            assert model.lineage.data_points == 10_080
            assert model.lineage.data_end == week.timestamps[-1]
        with sessions() as session:
            stored = ModelStore(session).by_jobs(job_ids)
            ledger = ModelStore(session).ledger(FLEET[0])
        assert stored == outcome
        assert [entry.to_stage for entry in ledger] == [Stage.STAGING]
        assert set(jobs_by_status(sessions, job_ids).values()) == {JobStatus.SUCCEEDED}

    def test_running_a_chunk_twice_yields_one_version_per_job(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        store_weeks(sessions, FLEET)
        job_ids = submit_weeks(sessions, FLEET)

        first = run_chunk(sessions, artifacts, job_ids)
        again = run_chunk(sessions, artifacts, job_ids)

        assert again == first
        with sessions() as session:
            assert ModelStore(session).latest_versions(FLEET) == dict.fromkeys(FLEET, 1)

    def test_heavy_jobs_train_a_piece_at_a_time_the_others_kept_fresh(
        self,
        sessions: Sessions,
        artifacts: LocalArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(training, "HEAVY_PIECE", 1)
        store_weeks(sessions, FLEET[:3])
        forests = submit_weeks(sessions, FLEET[:2], "isolation_forest", {"trees": 10.0})
        light = submit_weeks(sessions, FLEET[2:3])
        job_ids = [forests[0], light[0], forests[1]]

        outcome = run_chunk(sessions, artifacts, job_ids)

        with sessions() as session:
            jobs = {j.job_id: j for j in JobStore(session).get_many(job_ids)}
        assert all(model is not None for model in outcome.values())
        assert {j.status for j in jobs.values()} == {JobStatus.SUCCEEDED}
        # The light job first, then a forest a piece: the clock of the jobs
        # left was restarted after each piece.
        started = [jobs[job_id].started_at for job_id in (*light, *forests)]
        assert None not in started
        assert sorted(started) == started  # type: ignore[type-var]
        assert len(set(started)) == 3
        forest = outcome[forests[0]]
        assert forest is not None
        assert forest.artifact is not None

    def test_numbers_jobs_of_one_series_in_turn(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        store_weeks(sessions, [SERIES])
        job_ids = submit_weeks(sessions, [SERIES]) + submit_weeks(sessions, [SERIES])

        outcome = run_chunk(sessions, artifacts, job_ids)

        models = [outcome[job_id] for job_id in job_ids]
        assert [m.version for m in models if m is not None] == [1, 2]

    def test_fails_only_the_job_whose_data_breaks_a_rule(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        store_weeks(sessions, FLEET)
        week = sensor_readings()
        with sessions() as session:  # a stuck sensor: one value all week
            flat = Readings(week.timestamps, week.values * 0 + 0.5)
            ReadingStore(session).append("stuck_sensor", flat)
            session.commit()
        job_ids = submit_weeks(sessions, [*FLEET, "stuck_sensor"])

        outcome = run_chunk(sessions, artifacts, job_ids)

        with sessions() as session:
            failed = [j for j in JobStore(session).get_many(job_ids) if j.error]
        assert [j.series_id for j in failed] == ["stuck_sensor"]
        assert failed[0].status is JobStatus.FAILED
        assert failed[0].error is not None
        assert failed[0].error["rule"] == "non_constant"
        assert outcome[failed[0].job_id] is None
        assert sum(model is not None for model in outcome.values()) == len(FLEET)

    def test_skips_a_job_cancelled_while_the_chunk_trains(
        self,
        sessions: Sessions,
        artifacts: LocalArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        store_weeks(sessions, FLEET)
        job_ids = submit_weeks(sessions, FLEET)

        def fit_then_cancel(*args: object) -> list[Fit]:
            with sessions() as session:
                training.cancel_job(session=session, job_id=job_ids[0], actor="test")
                session.commit()
            return fit_series(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(FIT_SERIES, fit_then_cancel)

        outcome = run_chunk(sessions, artifacts, job_ids)

        assert outcome[job_ids[0]] is None
        assert all(outcome[j] is not None for j in job_ids[1:])
        assert jobs_by_status(sessions, job_ids)[job_ids[0]] is JobStatus.CANCELLED
        with sessions() as session:
            assert ModelStore(session).by_jobs([job_ids[0]]) == {}

    def test_records_a_crash_on_every_job_and_drops_the_payloads(
        self,
        sessions: Sessions,
        artifacts: LocalArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        job = submit(sessions, artifacts)
        store_weeks(sessions, FLEET)
        job_ids = [job.job_id, *submit_weeks(sessions, FLEET)]

        def crash(*_: object) -> list[Fit]:
            raise RuntimeError("out of memory")

        monkeypatch.setattr(FIT_SERIES, crash)

        outcome = run_chunk(sessions, artifacts, job_ids)

        assert set(outcome.values()) == {None}
        with sessions() as session:
            errors = [j.error for j in JobStore(session).get_many(job_ids)]
        assert errors == [{"error": "RuntimeError", "detail": "out of memory"}] * 5
        assert job.payload_key is not None
        assert not artifacts.exists(job.payload_key)

    def test_counts_each_failed_job_once_in_the_default_registry(
        self,
        sessions: Sessions,
        artifacts: LocalArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        store_weeks(sessions, FLEET)
        job_ids = submit_weeks(sessions, FLEET)

        def crash(*_: object) -> list[Fit]:
            raise RuntimeError("out of memory")

        monkeypatch.setattr(FIT_SERIES, crash)
        before = failed_jobs_counted(sessions)

        run_chunk(sessions, artifacts, job_ids)
        error = {"error": "RuntimeError", "detail": "again"}
        fail_jobs(dict.fromkeys(job_ids, error), sessions)  # ended: not again

        assert failed_jobs_counted(sessions) - before == len(FLEET)

    def test_a_streaming_fits_packed_state_is_registered_and_served(
        self,
        sessions: Sessions,
        artifacts: LocalArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        store_weeks(sessions, FLEET[:2])
        job_ids = submit_weeks(sessions, FLEET[:2])
        packed = [bytes([i, 255 - i]) * 150 for i in range(2)]

        def fit_streaming(*args: object) -> list[Fit]:
            fits = fit_series(*args)  # type: ignore[arg-type]
            return [replace(f, stream=s) for f, s in zip(fits, packed, strict=True)]

        monkeypatch.setattr(FIT_SERIES, fit_streaming)

        outcome = run_chunk(sessions, artifacts, job_ids)

        models = [m for m in outcome.values() if m is not None]
        with sessions() as session:
            store = ModelStore(session)
            store.apply(
                [
                    StageChange(m.series_id, m.version, Stage.STAGING, Stage.PRODUCTION)
                    for m in models
                ],
                actor="test",
                reason="",
            )
            session.commit()
            served = store.served_models(FLEET[:2])
        assert sorted(m.stream or b"" for m in models) == packed
        assert {m.series_id: m.stream for m in served} == {
            m.series_id: m.stream for m in models
        }

    def test_stores_inline_data_of_a_chunk_as_readings(
        self, sessions: Sessions, artifacts: LocalArtifactStore
    ) -> None:
        job = submit(sessions, artifacts)
        store_weeks(sessions, FLEET)
        job_ids = [job.job_id, *submit_weeks(sessions, FLEET)]

        outcome = run_chunk(sessions, artifacts, job_ids)

        assert all(model is not None for model in outcome.values())
        with sessions() as session:
            assert ReadingStore(session).count_last_hours(SERIES, 168) == 10_080


class TestSubmitBatch:
    def test_queues_a_job_per_series_and_reports_those_refused(
        self, sessions: Sessions
    ) -> None:
        store_weeks(sessions, FLEET)
        with sessions() as session:
            ReadingStore(session).append("thin", sensor_readings(500))
            session.commit()
        submit_weeks(sessions, [FLEET[0]])
        with sessions() as session:
            submission = training.submit_batch(
                session=session,
                series_ids=[*FLEET, FLEET[1], "thin", "unknown", "bad id"],
                algorithm="zscore", hyperparameters={"threshold_sigma": 4},
                window_hours=168, actor="test", min_interval_s=300,
            )  # fmt: skip
            session.commit()
        refused = {r["series_id"]: r["error"] for r in submission.rejected}
        assert [job.series_id for job in submission.accepted] == FLEET[1:]
        assert refused == {
            FLEET[0]: "TrainingRateLimited",
            "thin": "InvalidSeries",
            "unknown": "InvalidSeries",
            "bad id": "InvalidSeriesId",
        }
        with sessions() as session:
            queued = JobStore(session).page(batch_id=submission.batch_id)
        assert {job.job_id for job in queued} == {
            job.job_id for job in submission.accepted
        }
        assert {job.hyperparameters["threshold_sigma"] for job in queued} == {4.0}
