"""GET /plot: a series with its model's band and anomalies, as PNG, SVG or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from atalaia.api.common.deps import ResourcesDep, SessionDep, Viewer
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Moment, SeriesId, VersionNumber
from atalaia.core.series import TimeRange
from atalaia.errors import DependencyUnavailable, SeriesNotFound, VersionNotFound
from atalaia.services.plotting import (
    PlotQuery,
    build_plot_data,
    render_png,
    render_svg,
    to_json,
)


class PlotFormat(StrEnum):
    PNG = "png"
    SVG = "svg"
    JSON = "json"


MEDIA_TYPES = {
    PlotFormat.PNG: "image/png",
    PlotFormat.SVG: "image/svg+xml",
    PlotFormat.JSON: "application/json",
}

_TIME_HELP = "ISO 8601 (UTC when no offset) or epoch seconds"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The plot in the asked format.",
        "content": {media: {} for media in MEDIA_TYPES.values()},
    }
}

router = APIRouter(tags=["plot"])


@router.get(
    "/plot",
    response_class=Response,
    responses={
        **_RESPONSES,
        **error_responses(SeriesNotFound, VersionNotFound, DependencyUnavailable),
    },
)
def plot(
    session: SessionDep,
    resources: ResourcesDep,
    _viewer: Viewer,
    series_id: Annotated[SeriesId, Query(description="e.g. sensor_001_radial")],
    start: Annotated[
        Moment | None, Query(description=f"{_TIME_HELP}; default: 7 days before end")
    ] = None,
    end: Annotated[
        Moment | None,
        Query(description=f"{_TIME_HELP}, exclusive; default: the newest reading"),
    ] = None,
    format_: Annotated[PlotFormat, Query(alias="format")] = PlotFormat.PNG,
    version: Annotated[
        VersionNumber | None,
        Query(description="default: Production, else the newest"),
    ] = None,
) -> Response:
    """Readings of a window, the model's normal band, anomalies and training window.

    At most 2,000,000 readings per window; figures draw a min/max envelope of
    at most 5,000 points plus every anomaly.
    """
    query = PlotQuery(
        series_id,
        _epoch(start, "start", resources.time_range),
        _epoch(end, "end", resources.time_range),
        version,
    )
    data = build_plot_data(session, query, artifacts=resources.artifacts)
    if format_ is PlotFormat.JSON:
        body = orjson.dumps(to_json(data))  # NaN and ±Inf become null
    elif format_ is PlotFormat.PNG:
        body = render_png(data)
    else:
        body = render_svg(data)
    return Response(body, media_type=MEDIA_TYPES[format_])


def _epoch(moment: float | datetime | None, name: str, span: TimeRange) -> float | None:
    if moment is None:
        return None
    if isinstance(moment, float):
        seconds = moment
    elif moment.tzinfo is None:
        seconds = moment.replace(tzinfo=UTC).timestamp()
    else:
        seconds = moment.timestamp()
    span.check_one(seconds, name=name)
    return seconds
