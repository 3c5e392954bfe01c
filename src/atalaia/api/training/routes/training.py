"""Training jobs: submit (one series or a batch), inspect, list, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AssetStore, JobStore, ReadingStore
from atalaia.adapters.db.write_turns import WriteTurns
from atalaia.api.common.auth import Principal
from atalaia.api.common.compression import CompressedRoute
from atalaia.api.common.deps import (
    DataScientist,
    FleetViewer,
    ResourcesDep,
    SessionDep,
    Viewer,
    hide_outside,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import SeriesId, Text
from atalaia.api.common.resources import Resources
from atalaia.api.common.state import state_as
from atalaia.api.training.schemas import (
    BatchAccepted,
    BatchPage,
    BatchTrainingBody,
    BatchView,
    JobPage,
    JobView,
    RetriedJobView,
    TrainingBody,
)
from atalaia.api.training.state import JobsState
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.ports import JobQueue
from atalaia.core.series import Readings
from atalaia.errors import (
    Conflict,
    InvalidHyperparameters,
    InvalidSeries,
    JobNotCancellable,
    JobNotFound,
    NotFound,
    TrainingRateLimited,
    UnknownAlgorithm,
)
from atalaia.services import assets, training, training_batches, training_retry

router = APIRouter(prefix="/training", tags=["training"], route_class=CompressedRoute)

SCHEMA_REF = "#/components/schemas/{model}"


def get_job_queue(request: Request) -> JobQueue:
    return state_as(JobsState, request)["job_queue"]


JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]


def _write_turns(request: Request) -> WriteTurns | None:
    """The embedded platform's write turns (SQLite); None elsewhere."""
    return state_as(JobsState, request)["write_turns"]


def served_before_jobs(request: Request) -> Iterator[None]:
    """Background jobs start no write transaction while this request is served
    (embedded, SQLite)."""
    turns = _write_turns(request)
    if turns is None:
        yield
        return
    with turns.serving():
        yield


# Declared on the route, not as a parameter: FastAPI solves a route's own
# dependencies before its parameters', so jobs defer their writes from the
# request's first dependency (body, authentication, session) to its answer.
SERVED_BEFORE_JOBS = Depends(served_before_jobs)


def write_turn(request: Request) -> AbstractContextManager[None]:
    """The request's turn to write, before background jobs (embedded, SQLite):
    hold it from the request's first write to its commit."""
    turns = _write_turns(request)
    return turns.foreground() if turns is not None else nullcontext()


WriteTurnDep = Annotated[AbstractContextManager[None], Depends(write_turn)]


async def raw_body(request: Request) -> bytes:
    return await request.body()


def parse_training_body(raw: bytes) -> TrainingBody:
    """Parse and check a body in one pass of pydantic's JSON parser.

    FastAPI would parse the JSON with the standard library first: five times
    slower on the 10⁴–10⁵ numbers of inline training data.
    """
    try:
        return TrainingBody.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


def _documented_body() -> dict[str, Any]:
    """OpenAPI's requestBody for TrainingBody, which the route parses itself."""
    schema = TrainingBody.model_json_schema(ref_template=SCHEMA_REF)
    schema.pop("$defs", None)  # TrainingConfig: in the components (batch route)
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchAccepted,
    responses=error_responses(UnknownAlgorithm, InvalidHyperparameters, NotFound),
    dependencies=[SERVED_BEFORE_JOBS],
)
def train_batch(
    body: BatchTrainingBody,
    session: SessionDep,
    resources: ResourcesDep,
    job_queue: JobQueueDep,
    principal: DataScientist,
    turn: WriteTurnDep,
) -> BatchAccepted:
    """Queue one training job per selected series, from each one's stored window.

    Refused whole (422, or 429 when the interval refused every series) when no
    series can be trained.
    """
    scope = scope_of(resources, principal)
    if scope is not None and body.asset is not None:
        assets.visible_to(
            session=session, shown=scope.covers_sensor, including=body.asset
        )
    series_ids = _select_series(session, body)
    if scope is not None and body.series_ids is not None:
        scope.require_all(series_ids)  # a list naming a series outside: refused
    elif scope is not None:  # a selection: the caller's series of it
        series_ids = [s for s in series_ids if scope.covers(s)]
    with turn:  # from the series' claims (writes) to the commit
        submission = training.submit_batch(
            session=session,
            series_ids=series_ids,
            algorithm=body.config.algorithm,
            hyperparameters=body.config.hyperparameters,
            window_hours=body.window_hours,
            actor=principal.subject,
            min_interval_s=resources.settings.training_min_interval_s,
            quality_ignored=body.data_quality.ignored(),
        )
        training.check_batch_accepted(submission)
        session.commit()
    job_queue.dispatch_many([job.job_id for job in submission.accepted])
    return BatchAccepted(
        batch_id=submission.batch_id,
        accepted=len(submission.accepted),
        rejected=submission.rejected,
        jobs=[JobView.of(job) for job in submission.accepted],
    )


def _select_series(session: SessionDep, body: BatchTrainingBody) -> list[str]:
    if body.series_ids is not None:
        return body.series_ids
    store = ReadingStore(session)
    if body.sensor_id is not None:
        return store.series_ids(prefix=f"{body.sensor_id}_")
    if body.asset is not None:
        under = AssetStore(session).series_under(body.asset)
        return sorted(session.scalars(under))
    return store.series_ids(prefix=body.prefix)


@router.post(
    "/{series_id}",
    status_code=202,
    response_model=JobView,
    openapi_extra=_documented_body(),
    responses=error_responses(
        InvalidSeries, UnknownAlgorithm, InvalidHyperparameters, TrainingRateLimited
    ),
    dependencies=[SERVED_BEFORE_JOBS],
)
def train(
    series_id: SeriesId,
    raw: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
    resources: ResourcesDep,
    job_queue: JobQueueDep,
    principal: DataScientist,
    turn: WriteTurnDep,
) -> JobView:
    """Validate a training request and queue it; the job runs in the background."""
    body = parse_training_body(raw)
    readings = None
    if body.timestamps is not None and body.values is not None:
        readings = Readings.of(body.timestamps, body.values)
        resources.time_range.check(readings.timestamps)
    request = training.TrainingRequest(
        series_id=series_id,
        algorithm=body.config.algorithm,
        hyperparameters=body.config.hyperparameters,
        readings=readings,
        window_hours=body.window_hours,
        quality_ignored=body.data_quality.ignored(),
    )
    with turn:  # from the series' claim (a write) to the commit
        job = training.submit_training(
            session=session,
            artifacts=resources.artifacts,
            request=request,
            actor=principal.subject,
            min_interval_s=resources.settings.training_min_interval_s,
        )
        _commit_submitted(session, resources, job)
    job_queue.dispatch(job.job_id)
    return JobView.of(job)


def _commit_submitted(session: Session, resources: Resources, job: TrainingJob) -> None:
    """Commit a submitted job; its stored training data is dropped if that fails."""
    try:
        session.commit()
    except BaseException:
        training.discard_payloads(resources.artifacts, [job])
        raise


@router.get(
    "/jobs/{job_id}", response_model=JobView, responses=error_responses(JobNotFound)
)
def get_job(
    job_id: Text, session: SessionDep, resources: ResourcesDep, principal: Viewer
) -> JobView:
    """One training job."""
    return JobView.of(_visible_job(session, resources, principal, job_id))


def _visible_job(
    session: Session, resources: Resources, principal: Principal, job_id: str
) -> TrainingJob:
    """The job, or JobNotFound when its series is outside the caller's groups."""
    job = JobStore(session).get(job_id)
    hide_outside(resources, principal, [job.series_id], JobNotFound(job_id))
    return job


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    series_id: SeriesId | None = None,
    status: JobStatus | None = None,
    batch_id: Text | None = None,
    cursor: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobPage:
    """Training jobs, newest first; pass `next_cursor` back as `cursor` for more."""
    jobs = JobStore(session).page(
        series_id=series_id,
        status=status,
        batch_id=batch_id,
        before=cursor,
        limit=limit,
    )
    next_cursor = jobs[-1].job_id if len(jobs) == limit else None
    if (scope := scope_of(resources, principal)) is not None:
        jobs = [job for job in jobs if scope.covers(job.series_id)]
    return JobPage(jobs=[JobView.of(job) for job in jobs], next_cursor=next_cursor)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobView,
    responses=error_responses(JobNotFound, JobNotCancellable),
)
def cancel_job(
    job_id: Text, session: SessionDep, resources: ResourcesDep, principal: DataScientist
) -> JobView:
    """Cancel a queued or running job."""
    _visible_job(session, resources, principal, job_id)
    job = training.cancel_job(session=session, job_id=job_id, actor=principal.subject)
    session.commit()
    return JobView.of(job)


@router.post(
    "/jobs/{job_id}/retry",
    status_code=202,
    response_model=RetriedJobView,
    responses=error_responses(
        JobNotFound, Conflict, InvalidSeries, UnknownAlgorithm, TrainingRateLimited
    ),
    dependencies=[SERVED_BEFORE_JOBS],
)
def retry_job(
    job_id: Text,
    session: SessionDep,
    resources: ResourcesDep,
    job_queue: JobQueueDep,
    principal: DataScientist,
    turn: WriteTurnDep,
) -> RetriedJobView:
    """Submit a failed or cancelled job again (same series, algorithm,
    hyperparameters and data); 409 `job_retryable` for another job,
    `job_payload_kept` when its inline data is gone."""
    _visible_job(session, resources, principal, job_id)
    with turn:  # from the series' claim (a write) to the commit
        job = training_retry.retry_job(
            session=session,
            artifacts=resources.artifacts,
            job_id=job_id,
            actor=principal.subject,
            min_interval_s=resources.settings.training_min_interval_s,
        )
        _commit_submitted(session, resources, job)
    job_queue.dispatch(job.job_id)
    return RetriedJobView.retrying(job, job_id)


@router.get("/batches", response_model=BatchPage)
def list_batches(
    session: SessionDep,
    _: FleetViewer,
    cursor: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchPage:
    """Training batches, newest first, with their jobs by status, rate and ETA;
    pass `next_cursor` back as `cursor` for more."""
    batches = training_batches.list_batches(session=session, before=cursor, limit=limit)
    next_cursor = batches[-1].counts.batch_id if len(batches) == limit else None
    return BatchPage(
        batches=[BatchView.of(batch) for batch in batches], next_cursor=next_cursor
    )


@router.get(
    "/batches/{batch_id}", response_model=BatchView, responses=error_responses(NotFound)
)
def get_batch(batch_id: Text, session: SessionDep, _: FleetViewer) -> BatchView:
    """One training batch: its jobs by status, rate and ETA."""
    return BatchView.of(
        training_batches.batch_progress(session=session, batch_id=batch_id)
    )
