"""Series data: query readings, list series, a window's chart for the console
(readings are sent to the inference service, which stores and scores them)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from atalaia.adapters.db.repositories import ReadingStore, SeriesSummary
from atalaia.api.common.compression import CompressedRoute, json_response
from atalaia.api.common.deps import (
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import (
    EPOCH_SECONDS,
    Moment,
    SeriesId,
    Text,
    VersionNumber,
)
from atalaia.api.training.chart_schemas import ChartView
from atalaia.api.training.schemas import (
    PointsPage,
    SeriesPage,
    SeriesView,
)
from atalaia.errors import (
    DependencyUnavailable,
    InvalidInput,
    SeriesNotFound,
    VersionNotFound,
)
from atalaia.services.chart import (
    DEFAULT_BUCKETS,
    MAX_BUCKETS,
    MIN_BUCKETS,
    ChartQuery,
    build_chart,
)
from atalaia.services.plotting import epoch_seconds

router = APIRouter(prefix="/series", tags=["series"], route_class=CompressedRoute)

MAX_PAGE = 100_000
# The page's `next_cursor`: the last timestamp given, as a number.
PointsCursor = Annotated[
    Text | None,
    Query(
        description="`next_cursor` of the previous page",
        json_schema_extra={"pattern": r"^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$"},
    ),
]


@router.get(
    "/{series_id}/points",
    response_model=PointsPage,
    responses=error_responses(SeriesNotFound),
)
def query_points(
    series_id: SeriesId,
    session: SessionDep,
    resources: ResourcesDep,
    _: Viewer,
    start: Annotated[float | None, Query(json_schema_extra=EPOCH_SECONDS)] = None,
    end: Annotated[float | None, Query(json_schema_extra=EPOCH_SECONDS)] = None,
    cursor: PointsCursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10_000,
) -> PointsPage:
    """Readings with start ≤ timestamp < end, oldest first, a page at a time."""
    for name, bound in (("start", start), ("end", end)):
        if bound is not None:
            resources.time_range.check_one(bound, name=name)
    store = ReadingStore(session)
    if store.get_series(series_id) is None:
        raise SeriesNotFound(series_id)
    page = store.window(
        series_id, start=start, end=end, after=_parse_cursor(cursor), limit=limit + 1
    )
    more = len(page) > limit
    ts, vs = page.timestamps[:limit], page.values[:limit]
    next_cursor = repr(float(ts[-1])) if more and ts.size else None
    return PointsPage(
        series_id=series_id,
        timestamps=ts.tolist(),
        values=vs.tolist(),
        next_cursor=next_cursor,
    )


_TIME_HELP = "ISO 8601 (UTC when no offset) or epoch seconds"


@router.get(
    "/{series_id}/chart",
    response_class=Response,
    responses={
        200: {"model": ChartView, "description": "The chart's data"},
        **error_responses(SeriesNotFound, VersionNotFound, DependencyUnavailable),
    },
)
def chart(
    series_id: SeriesId,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    _: Viewer,
    start: Annotated[
        Moment | None, Query(description=f"{_TIME_HELP}; default: 7 days before end")
    ] = None,
    end: Annotated[
        Moment | None,
        Query(description=f"{_TIME_HELP}, exclusive; default: the newest reading"),
    ] = None,
    points: Annotated[
        int,
        Query(
            ge=MIN_BUCKETS,
            le=MAX_BUCKETS,
            description="Time buckets across the window (the chart's width in "
            "pixels): at most 4 readings each are sent",
        ),
    ] = DEFAULT_BUCKETS,
    version: Annotated[
        VersionNumber | None, Query(description="default: Production, else the newest")
    ] = None,
) -> Response:
    """A window of the series for an interactive chart: readings decimated per
    time bucket (M4), the model's band at their times, anomalies, change points,
    incidents and the training window; zstd or gzip when the client takes it.

    At most 2,000,000 readings per window.
    """
    span = resources.time_range
    query = ChartQuery(
        series_id,
        epoch_seconds(start, name="start", span=span),
        epoch_seconds(end, name="end", span=span),
        points,
        version,
    )
    body = build_chart(session, query, artifacts=resources.artifacts)
    return json_response(request, body)


def _parse_cursor(cursor: str | None) -> float | None:
    """The timestamp a `next_cursor` holds (always a finite number)."""
    if cursor is None:
        return None
    try:
        after = float(cursor)
    except ValueError:
        after = math.nan
    if not math.isfinite(after):
        raise InvalidInput(f"cursor {cursor!r} is not one this API gave", rule="cursor")
    return after


def _series_view(s: SeriesSummary) -> SeriesView:
    return SeriesView(
        series_id=s.series_id,
        sensor_id=s.sensor_id,
        axis=s.axis,
        points=s.n_points,
        mean=s.mean,
        std=s.std,
        first_timestamp=s.first_ts,
        last_timestamp=s.last_ts,
    )


@router.get("", response_model=SeriesPage)
def list_series(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    prefix: Text | None = None,
    cursor: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SeriesPage:
    """Series with stored readings, by id; pass `next_cursor` back as `cursor`."""
    series = ReadingStore(session).list_series(prefix=prefix, after=cursor, limit=limit)
    next_cursor = series[-1].series_id if len(series) == limit else None
    if (scope := scope_of(resources, principal)) is not None:
        series = [s for s in series if scope.covers(s.series_id)]
    return SeriesPage(series=[_series_view(s) for s in series], next_cursor=next_cursor)
