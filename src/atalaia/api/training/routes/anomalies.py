"""The anomaly log: the anomalies scored on ingest, read in order from a cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from atalaia.adapters.db.repositories import AnomalyLog
from atalaia.api.common.deps import ResourcesDep, SessionDep, Viewer, scope_of
from atalaia.api.common.explained import AnomalyView
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Text, id_cursor
from atalaia.api.training.schemas import AnomalyPage
from atalaia.errors import InvalidInput

router = APIRouter(prefix="/anomalies", tags=["anomalies"])

MAX_PAGE = 10_000


@router.get("", response_model=AnomalyPage, responses=error_responses(InvalidInput))
def read_log(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    after: Annotated[Text | None, id_cursor("from the first")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1_000,
) -> AnomalyPage:
    """The anomalies logged after `after`, oldest first. Read again from
    `next_cursor` (the same cursor when none came): nothing logged is missed,
    nothing is given twice."""
    found, cursor = AnomalyLog(session).after(after, limit)
    if (scope := scope_of(resources, principal)) is not None:
        found = [a for a in found if scope.covers(a.series_id)]
    return AnomalyPage(anomalies=[AnomalyView.of(a) for a in found], next_cursor=cursor)
