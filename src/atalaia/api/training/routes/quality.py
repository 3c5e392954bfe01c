"""Data quality: whether a stored window is fit to train on, before training."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from atalaia.api.common.deps import ResourcesDep, SessionDep, Viewer
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Moment, SeriesId
from atalaia.api.common.resources import Resources
from atalaia.api.training.quality_schemas import SensorQualityView, SeriesQualityView
from atalaia.errors import InvalidInput, SensorNotFound, SeriesNotFound
from atalaia.services import data_quality
from atalaia.services.data_quality import QualityQuery
from atalaia.services.plotting import epoch_seconds

series_router = APIRouter(prefix="/series", tags=["data quality"])
sensors_router = APIRouter(prefix="/sensors", tags=["data quality"])

_TIME_HELP = "ISO 8601 (UTC when no offset) or epoch seconds"
Start = Annotated[
    Moment | None, Query(description=f"{_TIME_HELP}; default: 7 days before end")
]
End = Annotated[
    Moment | None,
    Query(
        description=f"{_TIME_HELP}, exclusive; default: just after the newest reading"
    ),
]
Bound = Annotated[
    float | None,
    Query(allow_inf_nan=False, description="The values' physical range (both or none)"),
]


def _query(
    resources: Resources,
    start: float | datetime | None,
    end: float | datetime | None,
    low: float | None,
    high: float | None,
) -> QualityQuery:
    span = resources.time_range
    if (low is None) != (high is None):
        raise InvalidInput(
            "give both min_value and max_value, or neither", rule="physical_range"
        )
    return QualityQuery(
        start=epoch_seconds(start, name="start", span=span),
        end=epoch_seconds(end, name="end", span=span),
        physical_range=(low, high) if low is not None and high is not None else None,
    )


@series_router.get(
    "/{series_id}/quality",
    response_model=SeriesQualityView,
    responses=error_responses(SeriesNotFound, InvalidInput),
)
def series_quality(
    series_id: SeriesId,
    session: SessionDep,
    resources: ResourcesDep,
    _: Viewer,
    start: Start = None,
    end: End = None,
    min_value: Bound = None,
    max_value: Bound = None,
) -> SeriesQualityView:
    """The data-quality report of a window of the series, and its verdict."""
    query = _query(resources, start, end, min_value, max_value)
    return SeriesQualityView.of(data_quality.series_quality(session, series_id, query))


@sensors_router.get(
    "/{sensor_id}/quality",
    response_model=SensorQualityView,
    responses=error_responses(SensorNotFound, InvalidInput),
)
def sensor_quality(
    sensor_id: SeriesId,
    session: SessionDep,
    resources: ResourcesDep,
    _: Viewer,
    start: Start = None,
    end: End = None,
    min_value: Bound = None,
    max_value: Bound = None,
) -> SensorQualityView:
    """The data-quality reports of a sensor's axes over one window, and one
    verdict (fit when every axis is)."""
    query = _query(resources, start, end, min_value, max_value)
    return SensorQualityView.of(data_quality.sensor_quality(session, sensor_id, query))
