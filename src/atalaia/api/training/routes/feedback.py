"""Feedback labels: was this reading really an anomaly?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AuditLog, FeedbackStore, ModelStore
from atalaia.api.common.deps import (
    DataScientist,
    ResourcesDep,
    SessionDep,
    Viewer,
)
from atalaia.api.common.params import SeriesId
from atalaia.api.training.schemas import FeedbackBody
from atalaia.errors import InvalidInput, VersionNotFound

router = APIRouter(prefix="/feedback", tags=["feedback"])


@router.post("/{series_id}", status_code=201)
def add_feedback(
    series_id: SeriesId,
    body: FeedbackBody,
    session: SessionDep,
    resources: ResourcesDep,
    principal: DataScientist,
) -> dict[str, Any]:
    """Label a reading as a true or a false anomaly."""
    resources.time_range.check_one(body.timestamp)
    if body.version is not None:
        _check_version(session, series_id, body.version)
    feedback_id = FeedbackStore(session).add(
        series_id=series_id,
        ts=body.timestamp,
        is_anomaly=body.is_anomaly,
        version=body.version,
        note=body.note,
        actor=principal.subject,
    )
    AuditLog(session).record(
        actor=principal.subject,
        action="feedback.added",
        target=series_id,
        timestamp=body.timestamp,
        is_anomaly=body.is_anomaly,
    )
    session.commit()
    return {"id": feedback_id, "series_id": series_id, **body.model_dump()}


def _check_version(session: Session, series_id: str, version: int) -> None:
    try:
        ModelStore(session).get(series_id, version)
    except VersionNotFound as missing:
        raise InvalidInput(
            f"{missing.detail}: label a version that exists, or none",
            rule="version_exists",
        ) from None


@router.get("/{series_id}")
def list_feedback(
    series_id: SeriesId, session: SessionDep, _: Viewer
) -> dict[str, Any]:
    """Labels given for a series, newest reading first."""
    return {
        "series_id": series_id,
        "feedback": FeedbackStore(session).for_series(series_id),
    }
