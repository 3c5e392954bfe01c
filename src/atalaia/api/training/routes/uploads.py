"""Uploads: a file of readings (CSV, Parquet, Excel) streamed in, then ingested
a chunk at a time by the service's upload runner, its progress readable."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from atalaia.api.common.auth import Principal
from atalaia.api.common.deps import (
    DataScientist,
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Text
from atalaia.api.common.resources import Resources
from atalaia.api.training.quality_schemas import SeriesQualityView
from atalaia.api.training.spool import spool_body
from atalaia.api.training.upload_schemas import (
    PARAMETERS,
    UploadPage,
    UploadQualityView,
    UploadSeriesPage,
    UploadSeriesView,
    UploadView,
    upload_request,
)
from atalaia.core.access import SeriesScope
from atalaia.errors import InvalidInput, NotFound
from atalaia.services import data_quality, uploads

router = APIRouter(prefix="/uploads", tags=["uploads"])

SPOOL_FOLDER = "uploads"  # under the service's home
ALL = 1_000_000  # an upload's series read at once to check them
_FILE = {"type": "string", "format": "binary"}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the file: its bytes as the body, or a multipart form's "
        "`file` part (text fields: the query parameters' names)",
        "content": {
            "text/csv": {"schema": _FILE},
            "application/vnd.apache.parquet": {"schema": _FILE},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": _FILE
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": _FILE},
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=202,
    response_model=UploadView,
    responses=error_responses(InvalidInput),
    openapi_extra=_BODY,
)
async def create_upload(
    request: Request,
    resources: ResourcesDep,
    principal: DataScientist,
    form: Annotated[Text | None, Query(description=PARAMETERS["form"])] = None,
    timestamp_column: Annotated[
        Text | None, Query(description=PARAMETERS["timestamp_column"])
    ] = None,
    series_column: Annotated[
        Text | None, Query(description=PARAMETERS["series_column"])
    ] = None,
    value_column: Annotated[
        Text | None, Query(description=PARAMETERS["value_column"])
    ] = None,
    mapping: Annotated[Text | None, Query(description=PARAMETERS["mapping"])] = None,
    sensor: Annotated[Text | None, Query(description=PARAMETERS["sensor"])] = None,
    timezone: Annotated[Text | None, Query(description=PARAMETERS["timezone"])] = None,
    timestamp_unit: Annotated[
        Text | None, Query(description=PARAMETERS["timestamp_unit"])
    ] = None,
) -> UploadView:
    """Take a file of readings (streamed to disk) and queue its ingest (202)."""
    asked = {
        "form": form, "timestamp_column": timestamp_column,
        "series_column": series_column, "value_column": value_column,
        "mapping": mapping, "sensor": sensor, "timezone": timezone,
        "timestamp_unit": timestamp_unit,
    }  # fmt: skip
    upload_id = uploads.new_upload_id()
    spool = resources.settings.home / SPOOL_FOLDER / f"{upload_id}.part"
    file_name, fields = await spool_body(request, spool)
    try:
        settings = upload_request(
            {**{k: v for k, v in asked.items() if v is not None}, **fields}
        )
    except InvalidInput:
        spool.unlink(missing_ok=True)
        raise

    def submit() -> UploadView:
        with resources.sessions() as session:
            upload = uploads.submit_upload(
                session=session, upload_id=upload_id, spool=spool,
                artifacts=resources.artifacts, file_name=file_name or "upload",
                request=settings, actor=principal.subject,
                access=scope_of(resources, principal),
            )  # fmt: skip
            session.commit()
        return UploadView.of(upload)

    try:
        return await run_in_threadpool(submit)
    except BaseException:  # refused, or the database down: no spool left behind
        for left in spool.parent.glob(f"{upload_id}.*"):
            left.unlink(missing_ok=True)
        raise


@router.get("", response_model=UploadPage)
def list_uploads(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    cursor: Annotated[
        Text | None, Query(description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> UploadPage:
    """Uploads, newest first."""
    found = uploads.list_uploads(session=session, before=cursor, limit=limit)
    next_cursor = found[-1].id if len(found) == limit else None
    if (scope := scope_of(resources, principal)) is not None:
        found = [u for u in found if _covered(session, scope, u.id)]
    return UploadPage(
        uploads=[UploadView.of(u) for u in found], next_cursor=next_cursor
    )


def _covered(session: Session, scope: SeriesScope, upload_id: str) -> bool:
    """Whether the caller's groups cover every series the upload brought."""
    figures = uploads.upload_series(session=session, upload_id=upload_id, limit=ALL)
    return not scope.outside(sid for sid, *_ in figures)


def _visible(
    session: Session, resources: Resources, principal: Principal, upload_id: str
) -> None:
    """NotFound, as for an unknown upload, when it brought a series outside
    the caller's groups."""
    scope = scope_of(resources, principal)
    if scope is not None and not _covered(session, scope, upload_id):
        raise NotFound(f"upload {upload_id!r} does not exist", rule="upload_exists")


@router.get(
    "/{upload_id}", response_model=UploadView, responses=error_responses(NotFound)
)
def get_upload(
    upload_id: Text, session: SessionDep, resources: ResourcesDep, principal: Viewer
) -> UploadView:
    """An upload's progress: rows read, readings stored, invalid rows and why."""
    _visible(session, resources, principal, upload_id)
    return UploadView.of(uploads.get_upload(session=session, upload_id=upload_id))


@router.get(
    "/{upload_id}/quality",
    response_model=UploadQualityView,
    responses=error_responses(NotFound),
)
def get_upload_quality(
    upload_id: Text,
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> UploadQualityView:
    """Whether the data an upload brought is fit to train on: each series'
    data-quality report over the window it uploaded (the first `limit`
    series, by id)."""
    _visible(session, resources, principal, upload_id)
    found = data_quality.upload_quality(session, upload_id, limit=limit)
    views = [SeriesQualityView.of(q) for q in found]
    return UploadQualityView(
        upload_id=upload_id,
        fit=sum(v.fit_to_train for v in views),
        unfit=sum(not v.fit_to_train for v in views),
        series=views,
    )


@router.get(
    "/{upload_id}/series",
    response_model=UploadSeriesPage,
    responses=error_responses(NotFound),
)
def get_upload_series(
    upload_id: Text,
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> UploadSeriesPage:
    """Per series of an upload: its readings, those newly stored, time range."""
    _visible(session, resources, principal, upload_id)
    figures = uploads.upload_series(session=session, upload_id=upload_id, limit=limit)
    return UploadSeriesPage(
        series=[
            UploadSeriesView(
                series_id=sid, readings=n, stored=s, first_ts=first, last_ts=last
            )
            for sid, n, s, first, last in figures
        ]
    )
