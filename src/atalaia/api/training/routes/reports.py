"""Reports of a period as a file: a fleet's (or a site's) and a sensor's, in
PDF or Excel."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from atalaia.api.common.deps import (
    FleetViewer,
    ResourcesDep,
    SessionDep,
    Viewer,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Moment, SeriesId, Text
from atalaia.api.common.resources import Resources
from atalaia.core.report_files import MEDIA_TYPES as REPORT_MEDIA_TYPES
from atalaia.errors import InvalidInput, NotFound
from atalaia.services import reports
from atalaia.services.plotting import epoch_seconds

router = APIRouter(prefix="/reports", tags=["reports"])


class ReportFormat(StrEnum):
    PDF = "pdf"
    XLSX = "xlsx"


MEDIA_TYPES = {form: REPORT_MEDIA_TYPES[form.value] for form in ReportFormat}
_TIME_HELP = "ISO 8601 (UTC when no offset) or epoch seconds"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report as a file to save.",
        "content": {media: {} for media in MEDIA_TYPES.values()},
    }
}
Start = Annotated[
    Moment | None, Query(description=f"{_TIME_HELP}; default: 7 days before end")
]
End = Annotated[Moment | None, Query(description=f"{_TIME_HELP}; default: now")]
Format = Annotated[ReportFormat, Query(alias="format")]


@router.get(
    "/fleet",
    response_class=Response,
    responses={**_RESPONSES, **error_responses(NotFound, InvalidInput)},
)
def fleet_report(
    session: SessionDep,
    resources: ResourcesDep,
    _: FleetViewer,
    start: Start = None,
    end: End = None,
    asset: Annotated[
        Text | None, Query(description="Only the sensors under this node (a site…)")
    ] = None,
    format_: Format = ReportFormat.PDF,
) -> Response:
    """The fleet's report of a period: incidents and their explanations, anomaly
    rates, top sensors, versions, promotions, drift; charts included."""
    period = _period(resources, start, end)
    reports.check_fleet_size(
        session, asset=asset,
        max_series=resources.settings.report_on_demand_max_series,
    )  # fmt: skip
    report = reports.fleet_report(session, period, asset=asset)
    return _file(report, format_, resources)


@router.get(
    "/sensors/{sensor_id}",
    response_class=Response,
    responses={**_RESPONSES, **error_responses(reports.SensorNotFound)},
)
def sensor_report(
    sensor_id: SeriesId,
    session: SessionDep,
    resources: ResourcesDep,
    _: Viewer,
    start: Start = None,
    end: End = None,
    format_: Format = ReportFormat.PDF,
) -> Response:
    """A sensor's report of a period: its axes with their model's band, its
    incidents, versions and promotions."""
    period = _period(resources, start, end)
    report = reports.sensor_report(
        session, period, sensor_id, artifacts=resources.artifacts
    )
    return _file(report, format_, resources)


def _period(
    resources: Resources, start: float | Any | None, end: float | Any | None
) -> reports.Period:
    span = resources.time_range
    return reports.Period.of(
        epoch_seconds(start, name="start", span=span),
        epoch_seconds(end, name="end", span=span),
        now=time.time(),
    )


def _file(
    report: reports.Report, format_: ReportFormat, resources: Resources
) -> Response:
    if format_ is ReportFormat.PDF:
        templates = resources.settings.report_templates_dir
        body = reports.render_pdf(report, templates_dir=templates)
    else:
        body = reports.render_xlsx(report)
    filename = f"{report.filename_stem}.{format_.value}"
    return Response(
        body,
        media_type=MEDIA_TYPES[format_],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
