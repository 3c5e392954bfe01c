"""Per-series model metrics: what was predicted, and whether the data drifted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    FeedbackStore,
    ModelStore,
    ReadingStore,
    RollupStore,
)
from atalaia.core.drift import detect_concept_drift, detect_data_drift
from atalaia.errors import VersionNotFound


def series_metrics(
    *, session: Session, series_id: str, window_s: float, now: datetime | None = None
) -> dict[str, Any]:
    """Predictions of the last `window_s` seconds and drift of the newest readings.

    Data drift compares the readings of the last `window_s` seconds of the series
    (ending at its newest reading) with the production version's training data.
    """
    models = ModelStore(session)
    if not models.versions(series_id):
        raise VersionNotFound(series_id)
    since = (now or datetime.now(UTC)) - timedelta(seconds=window_s)
    production = models.production(series_id)
    recent = ReadingStore(session).last_hours(series_id, window_s / 3600)
    concept = detect_concept_drift(
        *FeedbackStore(session).false_alarms(series_id, since=since)
    )
    drift: dict[str, Any] = {
        "data_drift_detected": False,
        "concept_drift_detected": concept.detected,
        "reference_version": production.version if production else None,
        "recent_points": len(recent),
        "psi": None,
        "mean_shift_sigma": None,
        "feedback_labels": concept.labels,
        "false_alarms": concept.false_alarms,
    }
    if production is not None:
        data = detect_data_drift(production.reference, recent.values)
        drift |= {
            "data_drift_detected": data.detected,
            "psi": round(data.psi, 6),
            "mean_shift_sigma": round(data.mean_shift_sigma, 6),
        }
    return {
        "series_id": series_id,
        "window_seconds": window_s,
        "production_version": production.version if production else None,
        "predictions": RollupStore(session).summary(series_id, since=since),
        "drift_detection": drift,
    }
