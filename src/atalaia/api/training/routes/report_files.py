"""The scheduled reports' stored files: listed with their deliveries, and
downloaded (the link their notifications give)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from atalaia.api.common.deps import (
    FleetViewer,
    ResourcesDep,
    SessionDep,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Text
from atalaia.core.report_files import MEDIA_TYPES
from atalaia.errors import NotFound
from atalaia.services import reports

router = APIRouter(prefix="/reports", tags=["reports"])

MAX_PAGE = 200


class DeliveryView(BaseModel):
    channel: str
    state: str = Field(
        description="pending (retried while it may pass), sent or failed"
    )
    attempts: int
    last_error: str | None
    sent_at: float | None = Field(description="epoch seconds")


class ReportFileView(BaseModel):
    id: str
    subscription: str
    kind: str
    asset: str | None = Field(description="The node it covers; null: the fleet")
    period_start: datetime
    period_end: datetime
    format: str
    file_name: str
    size: int = Field(description="bytes")
    created_at: datetime
    deliveries: list[DeliveryView] = Field(
        description="Its notification to each channel, as the outbox has it"
    )

    @classmethod
    def of(cls, listed: reports.ListedFile) -> ReportFileView:
        f = listed.file
        return cls(
            id=f.id, subscription=f.subscription, kind=f.kind, asset=f.asset,
            period_start=f.period_start, period_end=f.period_end, format=f.format,
            file_name=f.file_name, size=f.size, created_at=f.created_at,
            deliveries=[DeliveryView(**asdict(d)) for d in listed.deliveries],
        )  # fmt: skip


class ReportFilePage(BaseModel):
    files: list[ReportFileView]
    next_cursor: str | None = Field(description="The last id of this page")


@router.get("/files", response_model=ReportFilePage)
def list_report_files(
    session: SessionDep,
    _: FleetViewer,
    cursor: Annotated[
        Text | None, Query(description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
) -> ReportFilePage:
    """The scheduled reports' stored files, newest first, with their deliveries."""
    found = reports.list_report_files(session, before=cursor, limit=limit)
    return ReportFilePage(
        files=[ReportFileView.of(f) for f in found],
        next_cursor=found[-1].file.id if len(found) == limit else None,
    )


@router.get(
    "/files/{file_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The stored report file.",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        },
        **error_responses(NotFound),
    },
)
def download_report_file(
    file_id: Text, session: SessionDep, resources: ResourcesDep, _: FleetViewer
) -> Response:
    """A stored report file, to save."""
    stored, body = reports.read_report_file(session, resources.artifacts, file_id)
    return Response(
        body,
        media_type=stored.media_type,
        headers={"Content-Disposition": f'attachment; filename="{stored.file_name}"'},
    )
