"""Training use cases: accept a job, and run one (the same code for every executor)."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from atalaia import __version__
from atalaia.adapters.db.repositories import (
    AuditLog,
    JobStore,
    ModelStore,
    ReadingStore,
)
from atalaia.core.detectors import (
    ModelParams,
    fit,
    resolve_hyperparameters,
    score_columns,
)
from atalaia.core.drift import reference_profile
from atalaia.core.jobs import JobStatus, TrainingJob, check_cancellable
from atalaia.core.ports import ArtifactStore
from atalaia.core.registry import Lineage, ModelVersion, Stage
from atalaia.core.series import (
    MIN_TRAINING_POINTS,
    Readings,
    check_series_id,
    validate_training_data,
)
from atalaia.errors import (
    AtalaiaError,
    InvalidInput,
    InvalidSeries,
    JobNotCancellable,
    TrainingRateLimited,
)

log = structlog.get_logger()

SessionFactory = Callable[[], Session]


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    """Inline `readings`, or the last `window_hours` of stored readings."""

    series_id: str
    algorithm: str
    hyperparameters: dict[str, object]
    readings: Readings | None = None
    window_hours: float | None = None


def new_job_id() -> str:
    """A UUID whose first 48 bits are the time in ms, so ids sort by submission."""
    ms = time.time_ns() // 1_000_000
    return str(uuid.UUID(int=(ms << 80) | uuid.uuid4().int >> 48))


def submit_training(
    *,
    session: Session,
    artifacts: ArtifactStore,
    request: TrainingRequest,
    actor: str,
    min_interval_s: int,
    batch_id: str | None = None,
) -> TrainingJob:
    """Validate a training request and store it as a queued job (caller commits).

    Inline data is validated here, in full, so that bad data never becomes a job.
    """
    series_id = check_series_id(request.series_id)
    hyperparameters = resolve_hyperparameters(
        request.algorithm, request.hyperparameters
    )
    check_training_interval(session, series_id, min_interval_s)
    job_id = new_job_id()
    payload_key = None
    if request.readings is not None:
        validate_training_data(request.readings)
        payload_key = f"jobs/{job_id}/readings.npy"
        artifacts.put(payload_key, _encode(request.readings))
    else:
        _check_stored_window(session, series_id, request.window_hours or 0.0)
    job = TrainingJob(
        job_id=job_id,
        series_id=series_id,
        status=JobStatus.QUEUED,
        algorithm=request.algorithm,
        hyperparameters=hyperparameters,
        payload_key=payload_key,
        window_hours=request.window_hours,
        created_at=datetime.now(UTC),
        submitted_by=actor,
    )
    JobStore(session).add(job, batch_id=batch_id)
    log.info("training.job_accepted", job_id=job_id, series_id=series_id)
    return job


def check_training_interval(
    session: Session, series_id: str, min_interval_s: int
) -> None:
    """Raise TrainingRateLimited if the series got a job less than the interval ago."""
    last = JobStore(session).last_submission(series_id)
    if last is None:
        return
    wait = last + timedelta(seconds=min_interval_s) - datetime.now(UTC)
    if wait.total_seconds() > 0:
        raise TrainingRateLimited(
            series_id,
            retry_after=max(1, int(np.ceil(wait.total_seconds()))),
            interval_s=min_interval_s,
        )


def _check_stored_window(session: Session, series_id: str, hours: float) -> None:
    stored = ReadingStore(session).count_last_hours(series_id, hours)
    if stored < MIN_TRAINING_POINTS:
        raise InvalidSeries(
            f"training needs at least {MIN_TRAINING_POINTS} points; series "
            f"{series_id!r} has {stored} in its last {hours:g} hours",
            rule="min_points",
        )


def _encode(readings: Readings) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.stack([readings.timestamps, readings.values]))
    return buffer.getvalue()


def _decode(data: bytes) -> Readings:
    pair = np.load(io.BytesIO(data))
    return Readings(pair[0], pair[1])


def run_training_job(
    job_id: str, *, sessions: SessionFactory, artifacts: ArtifactStore
) -> ModelVersion | None:
    """Train and register the model of one job; idempotent per job id.

    Returns the registered version (the existing one when the job already ran), or
    None when the job was cancelled or failed.
    """
    with sessions() as session:
        if (existing := ModelStore(session).by_job(job_id)) is not None:
            return existing
        if not JobStore(session).claim(job_id):
            return None
        session.commit()
        job = JobStore(session).get(job_id)
    log.info("training.job_started", job_id=job_id, series_id=job.series_id)
    try:
        return _train_and_register(job, sessions=sessions, artifacts=artifacts)
    except AtalaiaError as exc:
        error = {"error": type(exc).__name__, "detail": exc.detail}
        if isinstance(exc, InvalidInput):
            error["rule"] = exc.rule
        _fail(job, sessions, artifacts, error)
    except Exception as exc:
        log.error("training.job_crashed", job_id=job_id, exc_info=True)
        error = {"error": type(exc).__name__, "detail": str(exc)}
        _fail(job, sessions, artifacts, error)
    return None


def _fail(
    job: TrainingJob,
    sessions: SessionFactory,
    artifacts: ArtifactStore,
    error: dict[str, str],
) -> None:
    with sessions() as session:
        JobStore(session).fail(job.job_id, error=error)
        session.commit()
    _discard_payload(job, artifacts)
    log.info("training.job_failed", job_id=job.job_id, **error)


def _train_and_register(
    job: TrainingJob, *, sessions: SessionFactory, artifacts: ArtifactStore
) -> ModelVersion | None:
    with sessions() as session:
        readings = _training_data(job, session, artifacts)
        session.commit()
    validate_training_data(readings)
    started = time.perf_counter()
    params = fit(job.algorithm, readings.values, job.hyperparameters)
    fit_seconds = time.perf_counter() - started
    for _attempt in range(3):  # a concurrent job of the same series may take the number
        with sessions() as session:
            if JobStore(session).status_of(job.job_id) is not JobStatus.RUNNING:
                _discard_payload(job, artifacts)
                return None  # cancelled while training
            model = _new_version(job, session, readings, params, fit_seconds)
            ModelStore(session).add(model, actor=job.submitted_by)
            if not JobStore(session).finish(job.job_id, version=model.version):
                session.rollback()
                _discard_payload(job, artifacts)
                return None  # cancelled since the check above
            AuditLog(session).record(
                actor=job.submitted_by, action="model.registered",
                target=f"{model.series_id}/v{model.version}", job_id=job.job_id,
            )  # fmt: skip
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                if (existing := ModelStore(session).by_job(job.job_id)) is not None:
                    return existing
                continue
        log.info("training.job_succeeded", job_id=job.job_id, version=model.version)
        _discard_payload(job, artifacts)
        return model
    raise RuntimeError(f"could not number a version for job {job.job_id}")


def _discard_payload(job: TrainingJob, artifacts: ArtifactStore) -> None:
    """Drop inline data once its job has ended: it is stored as readings by then."""
    if job.payload_key is not None:
        artifacts.delete(job.payload_key)


def _training_data(
    job: TrainingJob, session: Session, artifacts: ArtifactStore
) -> Readings:
    if job.payload_key is None:
        return ReadingStore(session).last_hours(job.series_id, job.window_hours or 0.0)
    readings = _decode(artifacts.get(job.payload_key))
    # Inline training data becomes the series' stored data (for plots and drift).
    ReadingStore(session).append(job.series_id, readings)
    return readings


def _new_version(
    job: TrainingJob,
    session: Session,
    readings: Readings,
    params: ModelParams,
    fit_seconds: float,
) -> ModelVersion:
    values = readings.values
    one = np.ones(1)
    _, flagged = score_columns(
        params.center * one, params.scale * one, params.threshold * one, values
    )
    digest = hashlib.sha256(readings.timestamps.tobytes() + values.tobytes())
    return ModelVersion(
        series_id=job.series_id,
        version=ModelStore(session).next_version(job.series_id),
        stage=Stage.STAGING,
        algorithm=job.algorithm,
        params=params,
        lineage=Lineage(
            job_id=job.job_id,
            algorithm=job.algorithm,
            hyperparameters=job.hyperparameters,
            data_start=float(readings.timestamps[0]),
            data_end=float(readings.timestamps[-1]),
            data_points=len(readings),
            data_hash=f"sha256:{digest.hexdigest()}",
            package_version=__version__,
        ),
        created_at=datetime.now(UTC),
        metrics={
            "training_points": float(len(readings)),
            "training_anomaly_rate": float(flagged.mean()),
            "fit_seconds": fit_seconds,
        },
        reference=reference_profile(values),
    )


@dataclass(frozen=True, slots=True)
class BatchSubmission:
    batch_id: str
    accepted: list[TrainingJob]
    rejected: list[dict[str, object]]


def submit_batch(
    *,
    session: Session,
    artifacts: ArtifactStore,
    series_ids: list[str],
    algorithm: str,
    hyperparameters: dict[str, object],
    window_hours: float,
    actor: str,
    min_interval_s: int,
) -> BatchSubmission:
    """Queue one job per series from its stored window; report the series refused."""
    resolve_hyperparameters(algorithm, hyperparameters)  # fail the batch, not each job
    batch_id = new_job_id()
    accepted: list[TrainingJob] = []
    rejected: list[dict[str, object]] = []
    for series_id in dict.fromkeys(series_ids):
        request = TrainingRequest(
            series_id, algorithm, hyperparameters, window_hours=window_hours
        )
        try:
            accepted.append(
                submit_training(
                    session=session,
                    artifacts=artifacts,
                    request=request,
                    actor=actor,
                    min_interval_s=min_interval_s,
                    batch_id=batch_id,
                )  # fmt: skip
            )
        except AtalaiaError as exc:
            rejected.append(
                {
                    "series_id": series_id,
                    "error": type(exc).__name__,
                    "detail": exc.detail,
                }
            )
    return BatchSubmission(batch_id, accepted, rejected)


def cancel_job(*, session: Session, job_id: str, actor: str) -> TrainingJob:
    """Cancel a queued or running job (caller commits); a running fit is discarded."""
    jobs = JobStore(session)
    job = jobs.get(job_id)
    check_cancellable(job)
    if not jobs.cancel(job_id):
        raise JobNotCancellable(f"job {job_id} ended while being cancelled")
    AuditLog(session).record(actor=actor, action="job.cancelled", target=job_id)
    return jobs.get(job_id)
