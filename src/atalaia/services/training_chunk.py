"""Training a chunk of claimed jobs: data read in bulk, one vectorized fit, one
registration transaction, each job keeping every guarantee it has alone.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import cast

import structlog
from sqlalchemy.orm import Session

from atalaia import __version__
from atalaia.adapters import training_snapshots
from atalaia.adapters.db.repositories import (
    AuditLog,
    JobStore,
    ModelStore,
    ReadingStore,
)
from atalaia.core.detectors.catalog import SENSOR_FAMILIES
from atalaia.core.fitting import Fit, fit_sensors, fit_series
from atalaia.core.jobs import TrainingJob
from atalaia.core.ports import ArtifactStore
from atalaia.core.quality import check_training_data
from atalaia.core.registry import Lineage, ModelVersion, Stage
from atalaia.core.sensors import SensorData, align_axes
from atalaia.core.series import Readings, validate_training_data
from atalaia.errors import (
    AtalaiaError,
    ConcurrentChange,
    DependencyUnavailable,
    InvalidInput,
)
from atalaia.services import platform_events, sensor_groups
from atalaia.services._payload import decode_payload

log = structlog.get_logger()

SessionFactory = Callable[[], AbstractContextManager[Session]]
Outcome = dict[str, ModelVersion | None]
TrainingData = Readings | SensorData  # a series', or a sensor's axes
Errors = dict[str, dict[str, str]]

# Inline data is stored as readings a slice per transaction, so that a job never
# holds the database's one write turn for long (SQLite: the API waits for it).
STORE_SLICE = 2_000
REGISTER_ATTEMPTS = 3


def train_claimed(
    jobs: list[TrainingJob], sessions: SessionFactory, artifacts: ArtifactStore
) -> Outcome:
    """Train and register running jobs; returns the version of each that has one."""
    data, errors = _training_data(jobs, sessions, artifacts)
    if errors:
        fail_jobs(errors, sessions)
    groups: dict[tuple[str, str], list[TrainingJob]] = defaultdict(list)
    for job in jobs:
        if job.job_id in data:
            groups[job.algorithm, repr(sorted(job.hyperparameters.items()))].append(job)
    fitted: list[tuple[TrainingJob, Fit]] = []
    for group in groups.values():
        first = group[0]
        if first.algorithm in SENSOR_FAMILIES:
            sensors = [cast(SensorData, data[job.job_id]) for job in group]
            fits = fit_sensors(first.hyperparameters, sensors)
        else:
            series = [cast(Readings, data[job.job_id]) for job in group]
            fits = fit_series(first.algorithm, first.hyperparameters, series)
        fitted += zip(group, fits, strict=True)
    keys = _store_artifacts(fitted, artifacts)
    snapshot = _store_snapshot(fitted, data, artifacts)
    outcome = _register(fitted, data, keys, snapshot, sessions)
    log.info(
        "training.chunk_finished",
        jobs=len(jobs),
        registered=sum(1 for job, _ in fitted if outcome.get(job.job_id)),
        failed=len(errors),
    )
    return outcome


def _training_data(
    jobs: list[TrainingJob], sessions: SessionFactory, artifacts: ArtifactStore
) -> tuple[dict[str, TrainingData], Errors]:
    """Each job's validated training data, and why the others cannot train."""
    data: dict[str, TrainingData] = {}
    errors: Errors = {}
    by_window: dict[float, list[TrainingJob]] = defaultdict(list)
    for job in jobs:
        if job.algorithm in SENSOR_FAMILIES:
            try:
                data[job.job_id] = _sensor_data(job, sessions)
            except AtalaiaError as exc:
                errors[job.job_id] = _error(exc)
            continue
        if job.payload_key is None:
            by_window[job.window_hours or 0.0].append(job)
            continue
        try:
            inline = decode_payload(artifacts.get(job.payload_key))
        except DependencyUnavailable:
            raise  # the store is down, not the data wrong: the job waits for a retry
        except AtalaiaError as exc:
            errors[job.job_id] = _error(exc)
        else:  # inline training data becomes the series' stored data
            data[job.job_id] = inline
            _store(job.series_id, inline, sessions)
    for hours, group in by_window.items():
        with sessions() as session:
            store = ReadingStore(session)
            windows = store.last_windows(sorted({j.series_id for j in group}), hours)
        data |= {job.job_id: windows[job.series_id] for job in group}
    stored = {job.job_id: job.quality_ignored for job in jobs if not job.payload_key}
    for job_id, readings in list(data.items()):
        try:
            if isinstance(readings, Readings):
                validate_training_data(readings)
            if isinstance(readings, Readings) and job_id in stored:
                check_training_data(readings, stored[job_id])  # inline: at submit
        except InvalidInput as exc:
            errors[job_id] = _error(exc)
            del data[job_id]
    return data, errors


def _sensor_data(job: TrainingJob, sessions: SessionFactory) -> SensorData:
    """The sensor's axes over their stored windows, at the timestamps shared;
    UnfitData when an axis' data is unfit to train on."""
    with sessions() as session:
        store = ReadingStore(session)
        axes = sensor_groups.axes_of(session, job.series_id)
        windows = store.last_windows(sorted(axes.values()), job.window_hours or 0.0)
    data = align_axes(job.series_id, {a: windows[s] for a, s in axes.items()})
    for i, axis in enumerate(data.axes):
        readings = Readings(data.timestamps, data.values[:, i])
        check_training_data(readings, job.quality_ignored, what=f"{axis} axis' data")
    return data


def _store(series_id: str, readings: Readings, sessions: SessionFactory) -> None:
    for start in range(0, len(readings), STORE_SLICE):
        stop = start + STORE_SLICE
        piece = Readings(readings.timestamps[start:stop], readings.values[start:stop])
        with sessions() as session:
            ReadingStore(session).append(series_id, piece)
            session.commit()


def _store_artifacts(
    fitted: list[tuple[TrainingJob, Fit]], artifacts: ArtifactStore
) -> dict[str, str]:
    """Put each heavy model in the artifact store before its version is
    registered (a version never names an artifact that is not there); by job
    id, its key. A key names the series and the model's digest, so a retried
    job writes the same key and two models never share one."""
    keys = {}
    for job, fit in fitted:
        if fit.artifact is not None:
            digest = hashlib.sha256(fit.artifact).hexdigest()[:32]
            key = keys[job.job_id] = f"models/{job.series_id}/{digest}.npz"
            artifacts.put(key, fit.artifact)
    return keys


def _store_snapshot(
    fitted: list[tuple[TrainingJob, Fit]],
    data: dict[str, TrainingData],
    artifacts: ArtifactStore,
) -> str | None:
    """Put the data the chunk's models were fitted on in the artifact store
    before they are registered; its key (None: nothing was fitted)."""
    if not fitted:
        return None
    key, body = training_snapshots.encode({j.job_id: data[j.job_id] for j, _ in fitted})
    artifacts.put(key, body)
    return key


def _register(
    fitted: list[tuple[TrainingJob, Fit]],
    data: dict[str, TrainingData],
    keys: dict[str, str],
    snapshot: str | None,
    sessions: SessionFactory,
) -> Outcome:
    if not fitted:
        return {}
    for _attempt in range(REGISTER_ATTEMPTS):
        try:
            with sessions() as session:
                outcome = _register_once(session, fitted, data, keys, snapshot)
                session.commit()
        except ConcurrentChange:  # a concurrent job of a series took its number
            continue
        return outcome
    raise RuntimeError(f"could not number the versions of {len(fitted)} jobs")


def _register_once(
    session: Session,
    fitted: list[tuple[TrainingJob, Fit]],
    data: dict[str, TrainingData],
    keys: dict[str, str],
    snapshot: str | None,
) -> Outcome:
    """Register a version per job still running; others are skipped (cancelled)."""
    models, jobs = ModelStore(session), JobStore(session)
    outcome: Outcome = dict(models.by_jobs([job.job_id for job, _ in fitted]))
    pending = [(job, fit) for job, fit in fitted if job.job_id not in outcome]
    finished = (
        set(jobs.finish([job.job_id for job, _ in pending])) if pending else set()
    )
    pending = [(job, fit) for job, fit in pending if job.job_id in finished]
    latest = models.latest_versions(sorted({job.series_id for job, _ in pending}))
    now = datetime.now(UTC)
    registered = []
    for job, fit in pending:
        number = latest[job.series_id] = latest.get(job.series_id, 0) + 1
        artifact = keys.get(job.job_id)
        model = _version(job, fit, data[job.job_id], number, now, artifact, snapshot)
        registered.append((model, job.submitted_by))
        outcome[job.job_id] = model
    jobs.record_versions({m.lineage.job_id: m.version for m, _ in registered})
    models.add_many(registered)
    audit = AuditLog(session)
    for model, actor in registered:
        audit.record(
            actor=actor, action="model.registered",
            target=f"{model.series_id}/v{model.version}", job_id=model.lineage.job_id,
        )  # fmt: skip
    return outcome


def _version(
    job: TrainingJob,
    fit: Fit,
    readings: TrainingData,
    number: int,
    now: datetime,
    artifact: str | None,
    snapshot: str | None,
) -> ModelVersion:
    return ModelVersion(
        series_id=job.series_id,
        version=number,
        stage=Stage.STAGING,
        algorithm=fit.algorithm or job.algorithm,  # what `auto` chose, if it did
        params=fit.params,
        lineage=Lineage(
            job_id=job.job_id,
            algorithm=job.algorithm,
            hyperparameters=job.hyperparameters,
            data_start=float(readings.timestamps[0]),
            data_end=float(readings.timestamps[-1]),
            data_points=len(readings),
            data_hash=fit.data_hash,
            package_version=__version__,
            data_snapshot=snapshot,
        ),
        created_at=now,
        metrics=fit.metrics,
        reference=fit.reference,
        band=fit.band,
        sensor=fit.sensor,
        artifact=artifact,
        stuck_after=fit.stuck_after,
        stream=fit.stream,
    )


def fail_jobs(errors: Errors, sessions: SessionFactory) -> None:
    """Record why jobs failed; jobs that ended meanwhile keep their status."""
    with sessions() as session:
        store = JobStore(session)
        failed = [
            job_id
            for job_id, error in errors.items()
            if store.fail(job_id, error=error)
        ]
        series = {j.job_id: j.series_id for j in store.get_many(failed)}
        platform_events.training_failed(
            session,
            {
                job_id: (series[job_id], errors[job_id].get("detail", ""))
                for job_id in failed
                if job_id in series
            },
        )
        session.commit()
    for job_id, error in errors.items():
        log.info("training.job_failed", job_id=job_id, **error)


def _error(exc: AtalaiaError) -> dict[str, str]:
    error = {"error": type(exc).__name__, "detail": exc.detail}
    if isinstance(exc, InvalidInput):
        error["rule"] = exc.rule
    return error
