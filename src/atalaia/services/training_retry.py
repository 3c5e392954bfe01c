"""Retry a training job that failed or was cancelled: the same request, again."""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AuditLog, JobStore
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.ports import ArtifactStore
from atalaia.core.series import Readings
from atalaia.errors import Conflict, NotFound
from atalaia.services._payload import decode_payload
from atalaia.services.training import TrainingRequest, submit_training

log = structlog.get_logger()

RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


def retry_job(
    *,
    session: Session,
    artifacts: ArtifactStore,
    job_id: str,
    actor: str,
    min_interval_s: int,
) -> TrainingJob:
    """Submit a failed or cancelled job again: its series, algorithm,
    hyperparameters and data (its inline data, or the last `window_hours` of
    stored readings as they are now), through `submit_training` with its
    checks and the series' training interval (caller commits;
    `discard_payloads` if the commit fails). Returns the new job.

    Conflict `job_retryable` for a job that did not fail and was not
    cancelled; `job_payload_kept` when its inline data was discarded (data is
    deleted once the job has run: a job cancelled before it ran keeps it).
    """
    original = JobStore(session).get(job_id)
    if original.status not in RETRYABLE:
        raise Conflict(
            f"job {job_id} is {original.status}; only a failed or cancelled job "
            "can be retried",
            rule="job_retryable",
        )
    request = TrainingRequest(
        series_id=original.series_id,
        algorithm=original.algorithm,
        hyperparameters=dict(original.hyperparameters),
        readings=_inline_data(original, artifacts),
        window_hours=original.window_hours,
        quality_ignored=original.quality_ignored,
    )
    job = submit_training(
        session=session,
        artifacts=artifacts,
        request=request,
        actor=actor,
        min_interval_s=min_interval_s,
    )
    AuditLog(session).record(
        actor=actor, action="job.retried", target=job.job_id, retry_of=job_id
    )
    log.info("training.job_retried", job_id=job.job_id, retry_of=job_id)
    return job


def _inline_data(job: TrainingJob, artifacts: ArtifactStore) -> Readings | None:
    """The job's inline data, or None for a job of stored readings."""
    if job.payload_key is None:
        return None
    try:
        return decode_payload(artifacts.get(job.payload_key))
    except NotFound:
        raise Conflict(
            f"the inline data of job {job.job_id} was deleted when it ran; send "
            "it again (POST /api/v1/training/{series_id})",
            rule="job_payload_kept",
        ) from None
