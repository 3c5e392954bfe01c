"""Training use cases: accept jobs (one series or a batch), run them, cancel them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    AuditLog,
    JobStore,
    ModelStore,
    ReadingStore,
    SeriesSummary,
    TrainingClaims,
)
from atalaia.core.detectors import resolve_hyperparameters
from atalaia.core.detectors.catalog import SENSOR_FAMILIES
from atalaia.core.detectors.forest import NAME as FOREST
from atalaia.core.jobs import JobStatus, TrainingJob, check_cancellable
from atalaia.core.ports import ArtifactStore
from atalaia.core.quality import QualityRule, check_training_data
from atalaia.core.registry import ModelVersion
from atalaia.core.series import (
    MIN_TRAINING_POINTS,
    Readings,
    check_series_id,
    validate_training_data,
)
from atalaia.errors import (
    AtalaiaError,
    BatchRateLimited,
    BatchRefused,
    DependencyUnavailable,
    InvalidInput,
    InvalidSeries,
    JobNotCancellable,
    RateLimited,
    TrainingRateLimited,
)
from atalaia.services import sensor_groups
from atalaia.services._payload import encode_payload, payload_key
from atalaia.services.training_chunk import (
    Outcome,
    SessionFactory,
    fail_jobs,
    train_claimed,
)

log = structlog.get_logger()

# Series looked up per query when a batch is checked (bound parameters per query).
_LOOKUP = 5_000
# Families that take a second or more a series (isolation_forest), trained
# this many jobs at a time, the clock of the chunk's other jobs restarted after
# each: a chunk of them outlasts `stuck_job_after_s`.
HEAVY_FAMILIES = frozenset({FOREST})
HEAVY_PIECE = 16
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    """Inline `readings`, or the last `window_hours` of stored readings."""

    series_id: str
    algorithm: str
    hyperparameters: dict[str, object]
    readings: Readings | None = None
    window_hours: float | None = None
    quality_ignored: frozenset[QualityRule] = frozenset()


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
) -> TrainingJob:
    """Validate a training request and store it as a queued job (caller commits;
    `discard_payloads` if the commit fails).

    Inline data is validated here, in full, so that bad data never becomes a job.
    The series' interval is claimed last among the checks: the claim holds the
    series (and on SQLite, the database) until the caller's transaction ends.
    """
    series_id = check_series_id(request.series_id)
    hyperparameters = resolve_hyperparameters(
        request.algorithm, request.hyperparameters
    )
    if request.algorithm in SENSOR_FAMILIES:
        _check_sensor(session, series_id, request)
    elif request.readings is not None:
        validate_training_data(request.readings)
        check_training_data(request.readings, request.quality_ignored)
    else:
        _check_stored_window(session, series_id, request.window_hours or 0.0)
    job = TrainingJob(
        job_id=new_job_id(),
        series_id=series_id,
        status=JobStatus.QUEUED,
        algorithm=request.algorithm,
        hyperparameters=hyperparameters,
        payload_key=None,
        window_hours=request.window_hours,
        created_at=datetime.now(UTC),
        submitted_by=actor,
        quality_ignored=request.quality_ignored,
    )
    refused = _claim_intervals(session, [job], min_interval_s)
    if refused:
        raise refused[0]
    if request.readings is not None:
        key = payload_key(job.job_id)
        artifacts.put(key, encode_payload(request.readings))
        job = replace(job, payload_key=key)
    JobStore(session).add(job)
    log.info("training.job_accepted", job_id=job.job_id, series_id=series_id)
    return job


def discard_payloads(artifacts: ArtifactStore, jobs: Iterable[TrainingJob]) -> None:
    """Delete the inline data of jobs that ended, or that were never stored."""
    for job in jobs:
        if job.payload_key is not None:
            artifacts.delete(job.payload_key)


def _claim_intervals(
    session: Session, jobs: Sequence[TrainingJob], min_interval_s: int
) -> list[TrainingRateLimited]:
    """Claim each job's series for it (all jobs share one `created_at`); returns
    the refusals of the series that had a job less than the interval ago."""
    if not jobs:
        return []
    now = jobs[0].created_at
    claims = TrainingClaims(session)
    won = claims.claim(
        {job.series_id: job.job_id for job in jobs}, at=now, interval_s=min_interval_s
    )
    lost = [job.series_id for job in jobs if job.series_id not in won]
    last = claims.last(lost) if lost else {}
    return [
        _rate_limited(series_id, last.get(series_id, now), min_interval_s, now)
        for series_id in lost
    ]


def _rate_limited(
    series_id: str, last: datetime, min_interval_s: int, now: datetime
) -> TrainingRateLimited:
    wait = last + timedelta(seconds=min_interval_s) - now
    return TrainingRateLimited(
        series_id,
        retry_after=max(1, int(np.ceil(wait.total_seconds()))),
        interval_s=min_interval_s,
    )


def _check_sensor(session: Session, sensor_id: str, request: TrainingRequest) -> None:
    """A sensor trains on its axes' stored windows: each must hold enough
    readings (the timestamps they share are counted when the job runs)."""
    if request.readings is not None:
        raise InvalidInput(
            f"{request.algorithm} trains a sensor on its axes' stored readings: "
            "send window_hours, not inline data",
            rule="sensor_window",
        )
    axes = sensor_groups.axes_of(session, sensor_id)
    if not axes:
        raise InvalidSeries(
            f"sensor {sensor_id!r} has no stored series (axes named "
            f"{sensor_id}_<axis>, e.g. {sensor_id}_radial; or, for a machine or "
            "another node of the asset hierarchy, the series of its sensors)",
            rule="sensor_axes",
        )
    for series_id in sorted(axes.values()):
        _check_stored_window(session, series_id, request.window_hours or 0.0)


def _check_stored_window(session: Session, series_id: str, hours: float) -> None:
    stored = ReadingStore(session).count_last_hours(series_id, hours)
    if stored < MIN_TRAINING_POINTS:
        raise _too_few_points(series_id, stored, hours)


def _check_stored_summary(
    series_id: str, summary: SeriesSummary | None, hours: float
) -> None:
    """`_check_stored_window` from the series' statistics, without counting.

    A series' total bounds what its window holds, and is exact when its whole
    history fits in the window; a longer history is checked when the job runs.
    """
    stored = summary.n_points if summary is not None else 0
    if stored < MIN_TRAINING_POINTS:
        raise _too_few_points(series_id, stored, hours)


def _too_few_points(series_id: str, stored: int, hours: float) -> InvalidSeries:
    return InvalidSeries(
        f"training needs at least {MIN_TRAINING_POINTS} points; series "
        f"{series_id!r} has {stored} in its last {hours:g} hours",
        rule="min_points",
    )


@dataclass(frozen=True, slots=True)
class BatchSubmission:
    batch_id: str
    accepted: list[TrainingJob]
    rejected: list[dict[str, Any]]


def submit_batch(
    *,
    session: Session,
    series_ids: list[str],
    algorithm: str,
    hyperparameters: dict[str, object],
    window_hours: float,
    actor: str,
    min_interval_s: int,
    quality_ignored: frozenset[QualityRule] = frozenset(),
) -> BatchSubmission:
    """Queue one job per series from its stored window; report the series refused.

    The same checks as `submit_training`, made for the whole batch a few queries
    at a time, in series order (caller commits).
    """
    resolved = resolve_hyperparameters(algorithm, hyperparameters)  # fail the batch
    if algorithm in SENSOR_FAMILIES:
        raise InvalidInput(
            f"{algorithm} trains sensors one at a time (POST /training/{{sensor_id}})",
            rule="sensor_batch",
        )
    batch_id = new_job_id()
    now = datetime.now(UTC)
    accepted: list[TrainingJob] = []
    rejected: list[dict[str, Any]] = []
    for piece in _pieces(sorted(set(series_ids)), _LOOKUP):
        stored = ReadingStore(session).summaries(piece)
        jobs: list[TrainingJob] = []
        for series_id in piece:
            try:
                check_series_id(series_id)
                _check_stored_summary(series_id, stored.get(series_id), window_hours)
            except AtalaiaError as exc:
                rejected.append(_refusal(series_id, exc))
                continue
            jobs.append(
                TrainingJob(
                    job_id=new_job_id(),
                    series_id=series_id,
                    status=JobStatus.QUEUED,
                    algorithm=algorithm,
                    hyperparameters=resolved,
                    payload_key=None,
                    window_hours=window_hours,
                    created_at=now,
                    submitted_by=actor,
                    quality_ignored=quality_ignored,
                )
            )
        refused = _claim_intervals(session, jobs, min_interval_s)
        rejected.extend(_refusal(exc.series_id, exc) for exc in refused)
        lost = {exc.series_id for exc in refused}
        accepted.extend(job for job in jobs if job.series_id not in lost)
    JobStore(session).add_many(accepted, batch_id=batch_id)
    log.info("training.batch_accepted", batch_id=batch_id, jobs=len(accepted))
    return BatchSubmission(batch_id, accepted, rejected)


def _refusal(series_id: str, exc: AtalaiaError) -> dict[str, Any]:
    """Why a series of a batch was refused: the error body of a request of its own."""
    why: dict[str, Any] = {
        "series_id": series_id, "error": type(exc).__name__, "detail": exc.detail
    }  # fmt: skip
    if isinstance(exc, InvalidInput | RateLimited):
        why["rule"] = exc.rule
    if isinstance(exc, RateLimited):
        why["retry_after"] = exc.retry_after
    return why


def check_batch_accepted(submission: BatchSubmission) -> None:
    """Refuse a batch of which every series was refused, saying why for each:
    rate limited when the interval refused them all, invalid otherwise."""
    if submission.accepted or not submission.rejected:
        return
    if all(r.get("rule") == TrainingRateLimited.rule for r in submission.rejected):
        raise BatchRateLimited(submission.rejected)
    raise BatchRefused(submission.rejected)


def _pieces(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_training_job(
    job_id: str, *, sessions: SessionFactory, artifacts: ArtifactStore
) -> ModelVersion | None:
    """Train and register the model of one job; idempotent per job id.

    Returns the registered version (the existing one when the job already ran), or
    None when the job was cancelled or failed.
    """
    outcome = run_training_chunk([job_id], sessions=sessions, artifacts=artifacts)
    return outcome[job_id]


def run_training_chunk(
    job_ids: Sequence[str], *, sessions: SessionFactory, artifacts: ArtifactStore
) -> Outcome:
    """Train and register the models of many jobs, fitted in one vectorized pass.

    What a worker runs for a chunk of a batch. Each job keeps the guarantees of a
    job run alone: a job that already registered a version gets it back (running
    a chunk twice yields one version per job), a job cancelled meanwhile is
    skipped, and data that breaks a rule fails its own job only. Returns each
    job's version, or None for a job cancelled or failed.
    """
    outcome: Outcome = dict.fromkeys(job_ids)
    jobs, done = _claim(job_ids, sessions)
    outcome.update(done)
    if not jobs:
        return outcome
    try:
        for piece, rest in _by_cost(jobs):
            outcome.update(train_claimed(piece, sessions, artifacts))
            _touch([job.job_id for job in rest], sessions)
    except DependencyUnavailable:
        raise  # no job failed: they stay claimed for a retry once it is back
    except Exception as exc:  # a crash of the training itself fails its jobs
        log.error("training.chunk_crashed", jobs=len(jobs), exc_info=True)
        error = {"error": type(exc).__name__, "detail": str(exc)}
        fail_jobs({job.job_id: error for job in jobs}, sessions)
    # Only once every job has ended: a run that died keeps them for its retry.
    discard_payloads(artifacts, jobs)
    return outcome


def _by_cost(
    jobs: list[TrainingJob],
) -> Iterator[tuple[list[TrainingJob], list[TrainingJob]]]:
    """The jobs to train together, and those left after them: the light ones
    at once, then heavy ones (a second or more each) HEAVY_PIECE at a time."""
    light = [job for job in jobs if job.algorithm not in HEAVY_FAMILIES]
    heavy = [job for job in jobs if job.algorithm in HEAVY_FAMILIES]
    pieces = ([light] if light else []) + list(_pieces(heavy, HEAVY_PIECE))
    for i, piece in enumerate(pieces):
        yield piece, [job for later in pieces[i + 1 :] for job in later]


def _touch(job_ids: list[str], sessions: SessionFactory) -> None:
    """Keep the jobs still to train from looking stuck (a chunk of forests
    takes longer than `stuck_job_after_s`, and would be dispatched again)."""
    if job_ids:
        with sessions() as session:
            JobStore(session).touch(job_ids)
            session.commit()


def _claim(
    job_ids: Sequence[str], sessions: SessionFactory
) -> tuple[list[TrainingJob], dict[str, ModelVersion]]:
    """(the jobs claimed, in the given order; the versions jobs already registered)."""
    with sessions() as session:
        done = ModelStore(session).by_jobs(job_ids)
        todo = [job_id for job_id in job_ids if job_id not in done]
        claimed = JobStore(session).claim(todo) if todo else []
        session.commit()
        jobs = JobStore(session).get_many(claimed) if claimed else []
    order = {job_id: i for i, job_id in enumerate(job_ids)}
    return sorted(jobs, key=lambda job: order[job.job_id]), done


def cancel_job(*, session: Session, job_id: str, actor: str) -> TrainingJob:
    """Cancel a queued or running job (caller commits); a running fit is discarded."""
    jobs = JobStore(session)
    job = jobs.get(job_id)
    check_cancellable(job)
    if not jobs.cancel(job_id):
        raise JobNotCancellable(f"job {job_id} ended while being cancelled")
    TrainingClaims(session).release(job_id)  # the series may train again at once
    AuditLog(session).record(actor=actor, action="job.cancelled", target=job_id)
    return jobs.get(job_id)
