"""Readings sent to the platform: stored, and scored on the way in.

`POST /series/{series_id}/points` takes one series' readings,
`POST /series/points` many series' at once (columnar). Both store the readings
(idempotent per series and timestamp), score those of series with a
production model through the data plane (advancing their stream state) and
answer the anomalies among them, which also go to the anomaly log in the same
transaction (`services.scored_ingest`). Blocking work: plain `def` routes, run
in the thread pool.
"""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from atalaia.api.common.deps import (
    ResourcesDep,
    SensorWriter,
    SessionDep,
    guard_batch,
)
from atalaia.api.common.explained import AnomalyView
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import SeriesId
from atalaia.api.common.resources import Resources
from atalaia.api.common.state import state_as
from atalaia.api.inference.schemas import (
    BulkIngestView,
    ColumnsBody,
    IngestView,
    PointsBody,
)
from atalaia.api.inference.state import ServingState
from atalaia.core.series import Readings
from atalaia.core.serving import ScoredAnomaly
from atalaia.errors import InvalidSeries
from atalaia.services.scored_ingest import ScoredIngest, ingest_scored

router = APIRouter(prefix="/series", tags=["series"])


@router.post(
    "/{series_id}/points",
    response_model=IngestView,
    responses=error_responses(InvalidSeries),
)
def ingest(
    series_id: SeriesId,
    body: PointsBody,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    _: SensorWriter,
) -> IngestView:
    """Store readings (timestamps already stored are ignored) and, when the
    series has a production model, score them: the anomalies among them."""
    readings = Readings.of(body.timestamps, body.values)
    outcome = _stored_and_scored(request, session, resources, {series_id: readings})
    stored = outcome.stored[series_id]
    return IngestView(
        series_id=series_id,
        received=stored.received,
        inserted=stored.inserted,
        ignored=stored.ignored,
        scored=outcome.scored,
        anomalies=_views(outcome.anomalies),
    )


@router.post(
    "/points",
    response_model=BulkIngestView,
    responses=error_responses(InvalidSeries),
)
def ingest_many(
    body: ColumnsBody,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    principal: SensorWriter,
) -> BulkIngestView:
    """`POST /series/{series_id}/points` for readings of many series at once,
    as three aligned arrays (as `POST /predict/batch` takes them)."""
    by_series: defaultdict[str, tuple[list[float], list[float]]] = defaultdict(
        lambda: ([], [])
    )
    for series_id, timestamp, value in zip(
        body.series_id, body.timestamp, body.value, strict=True
    ):
        times, values = by_series[series_id]
        times.append(timestamp)
        values.append(value)
    guard_batch(resources, principal, by_series)
    batch = {s: Readings.of(t, v) for s, (t, v) in by_series.items()}
    outcome = _stored_and_scored(request, session, resources, batch)
    stored = outcome.stored.values()
    return BulkIngestView(
        series=len(by_series),
        received=sum(r.received for r in stored),
        inserted=sum(r.inserted for r in stored),
        ignored=sum(r.ignored for r in stored),
        scored=outcome.scored,
        anomalies=_views(outcome.anomalies),
    )


def _stored_and_scored(
    request: Request,
    session: Session,
    resources: Resources,
    batch: dict[str, Readings],
) -> ScoredIngest:
    """`ingest_scored` by this service's predictor, committed."""
    predictor = state_as(ServingState, request)["predictor"]
    outcome = ingest_scored(
        session=session,
        serving=predictor,
        batch=batch,
        span=resources.time_range,
        signals=predictor.signals,
    )
    session.commit()
    return outcome


def _views(anomalies: list[ScoredAnomaly]) -> list[AnomalyView]:
    in_order = sorted(anomalies, key=lambda a: (a.series_id, a.timestamp))
    return [AnomalyView.of(a) for a in in_order]
