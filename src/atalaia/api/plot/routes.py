"""GET /plot: a series with its model's band and anomalies; GET /plot/sensors/{id}:
a sensor's axes with its multivariate model; as PNG, SVG or JSON."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from atalaia.api.common.compression import CompressedRoute
from atalaia.api.common.deps import (
    ResourcesDep,
    SessionDep,
    Viewer,
    guard_path,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Moment, SeriesId, VersionNumber
from atalaia.errors import (
    DependencyUnavailable,
    SensorModelNotFound,
    SeriesNotFound,
    VersionNotFound,
)
from atalaia.services.plotting import (
    PlotData,
    PlotQuery,
    build_plot_data,
    epoch_seconds,
    render_png,
    render_svg,
    to_json,
)
from atalaia.services.sensor_plotting import (
    SensorPlotData,
    SensorPlotQuery,
    build_sensor_plot_data,
    render_sensor_png,
    render_sensor_svg,
    sensor_to_json,
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

# Each format's body; orjson writes NaN and ±Inf (an axis a sensor model
# leaves out has NaN bands) as null.
_SERIES_BODIES: dict[PlotFormat, Callable[[PlotData], bytes]] = {
    PlotFormat.PNG: render_png,
    PlotFormat.SVG: render_svg,
    PlotFormat.JSON: lambda data: orjson.dumps(to_json(data)),
}
_SENSOR_BODIES: dict[PlotFormat, Callable[[SensorPlotData], bytes]] = {
    PlotFormat.PNG: render_sensor_png,
    PlotFormat.SVG: render_sensor_svg,
    PlotFormat.JSON: lambda data: orjson.dumps(sensor_to_json(data)),
}

_TIME_HELP = "ISO 8601 (UTC when no offset) or epoch seconds"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The plot in the asked format.",
        "content": {media: {} for media in MEDIA_TYPES.values()},
    }
}

Start = Annotated[
    Moment | None, Query(description=f"{_TIME_HELP}; default: 7 days before end")
]
End = Annotated[
    Moment | None,
    Query(description=f"{_TIME_HELP}, exclusive; default: the newest reading"),
]
Format = Annotated[PlotFormat, Query(alias="format")]
Version = Annotated[
    VersionNumber | None, Query(description="default: Production, else the newest")
]
SensorId = SeriesId  # the same rule: e.g. sensor_001

router = APIRouter(tags=["plot"], route_class=CompressedRoute)


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
    viewer: Viewer,
    series_id: Annotated[SeriesId, Query(description="e.g. sensor_001_radial")],
    start: Start = None,
    end: End = None,
    format_: Format = PlotFormat.PNG,
    version: Version = None,
) -> Response:
    """Readings of a window, the model's normal band, anomalies and training window.

    At most 2,000,000 readings per window; figures draw a min/max envelope of
    at most 5,000 points plus every anomaly.
    """
    guard_path(scope_of(resources, viewer), {"series_id": series_id})
    query = PlotQuery(
        series_id,
        epoch_seconds(start, name="start", span=resources.time_range),
        epoch_seconds(end, name="end", span=resources.time_range),
        version,
    )
    data = build_plot_data(session, query, artifacts=resources.artifacts)
    body = _SERIES_BODIES[format_](data)
    return Response(body, media_type=MEDIA_TYPES[format_])


@router.get(
    "/plot/sensors/{sensor_id}",
    response_class=Response,
    responses={
        **_RESPONSES,
        **error_responses(SensorModelNotFound, SeriesNotFound, VersionNotFound),
    },
)
def plot_sensor(
    session: SessionDep,
    resources: ResourcesDep,
    _viewer: Viewer,
    sensor_id: SensorId,
    start: Start = None,
    end: End = None,
    format_: Format = PlotFormat.PNG,
    version: Version = None,
) -> Response:
    """A sensor's axes scored together by its multivariate model: per axis its
    readings, expected value, band and the sensor's anomalies; then the score.

    Readings at the timestamps every axis has; at most 2,000,000 of them per
    window (over all axes); figures draw a min/max envelope of at most 5,000
    points per axis plus every anomaly.
    """
    query = SensorPlotQuery(
        sensor_id,
        epoch_seconds(start, name="start", span=resources.time_range),
        epoch_seconds(end, name="end", span=resources.time_range),
        version,
    )
    body = _SENSOR_BODIES[format_](build_sensor_plot_data(session, query))
    return Response(body, media_type=MEDIA_TYPES[format_])
