"""Scoring on ingest: readings stored, and those of series with a production
model scored on the way in, their anomalies logged for consumers.

One transaction (the caller commits) stores the readings (idempotent per
series and timestamp, `services.ingest`) and logs the anomalies among them
(`AnomalyLog`): an anomaly is in the log exactly when its reading is stored.
The readings are scored by the inference data plane, so they advance their
series' stream state as predictions do, and count towards their series'
recovery from an incident (`IncidentSignals`); a reading sent again is `stale`, and
logged once. Should the commit fail after scoring, the readings advanced the
state without being stored: sent again, they are scored as stale readings
and logged then.

A streaming model's state is first caught up with its series' stored readings
it has not seen (`catch_up`): those sent to another replica before this one
took the series over, or while its state was cold (then rebuilt here, at
once). So readings sent in get the same answers whichever replica scores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AnomalyLog, IngestResult, ReadingStore
from atalaia.core.series import Readings, TimeRange
from atalaia.core.serving import ScoredAnomaly
from atalaia.services.inference.data_plane import RoutedServing, score_batch
from atalaia.services.inference.signals import IncidentSignals
from atalaia.services.inference.streams import REBUILD_DEPTH
from atalaia.services.ingest import append_many_points
from atalaia.services.model_table import ALGORITHMS, REASONS, Scores, Tier


@dataclass(frozen=True, slots=True)
class ScoredIngest:
    """What was stored, per series; how many readings were scored (those of
    series with a production model) and the anomalies among them."""

    stored: dict[str, IngestResult]
    scored: int
    anomalies: list[ScoredAnomaly]


def ingest_scored(
    *,
    session: Session,
    serving: RoutedServing,
    batch: Mapping[str, Readings],
    span: TimeRange,
    signals: IncidentSignals | None = None,
) -> ScoredIngest:
    """Store readings of many series and score them (see the module's
    docstring), counting them towards their series' recovery in `signals`;
    the caller commits. Readings that break a rule are refused
    before anything is stored or scored."""
    stored = append_many_points(session=session, batch=batch, span=span)
    catch_up(session, serving, batch)
    series_ids = [s for s, readings in batch.items() for _ in range(len(readings))]
    if not series_ids:
        return ScoredIngest(stored, 0, [])
    timestamps = np.concatenate([r.timestamps for r in batch.values()])
    values = np.concatenate([r.values for r in batch.values()])
    # No lookup of the series the table lacks: the table follows the registry,
    # so they have no production model, and a lookup now (their readings not
    # yet committed) would leave them unknown to predictions for a while.
    scores = score_batch(serving, series_ids, timestamps, values, fetch=False).scores
    modelled = scores.tier == Tier.MODEL
    anomalies = _anomalies(series_ids, timestamps, values, scores, modelled)
    AnomalyLog(session).append(anomalies)
    if signals is not None:
        signals.many(series_ids, timestamps, values, scores, logged=True)
    return ScoredIngest(stored, int(modelled.sum()), anomalies)


def catch_up(
    session: Session, serving: RoutedServing, batch: Mapping[str, Readings]
) -> None:
    """Advance the streaming models of `batch`'s series by their readings
    stored in the database (as `session` sees them) and new to their state,
    but not in `batch`; a cold one is rebuilt from them."""
    table = serving.table
    cold, warm = serving.streams.behind(table, list(batch))
    for group in (cold, warm):
        if not group.ids:
            continue
        depth = np.full(len(group.ids), REBUILD_DEPTH)
        stored = ReadingStore(session).newest_after(
            group.ids, np.array(group.until), depth
        )
        missed = {
            sid: _without(readings, batch[sid].timestamps)
            for sid, readings in stored.items()
        }
        if group is cold:
            serving.streams.rebuild(table, cold, missed)
            continue
        series = [s for s, r in missed.items() for _ in range(len(r))]
        if series:
            timestamps = np.concatenate([r.timestamps for r in missed.values()])
            values = np.concatenate([r.values for r in missed.values()])
            score_batch(serving, series, timestamps, values, fetch=False)


def _without(readings: Readings, timestamps: np.ndarray) -> Readings:
    """`readings` but those at `timestamps`."""
    keep = ~np.isin(readings.timestamps, timestamps)
    return Readings(readings.timestamps[keep], readings.values[keep])


def _anomalies(
    series_ids: list[str],
    timestamps: np.ndarray,
    values: np.ndarray,
    scores: Scores,
    modelled: np.ndarray,
) -> list[ScoredAnomaly]:
    """The anomalies among readings scored by a production model, explained."""
    stale = scores.stale if scores.stale is not None else np.zeros(values.size, bool)
    found = []
    for i in np.flatnonzero(modelled & scores.anomaly).tolist():
        expected, width = float(scores.expected[i]), float(scores.width[i])
        value = float(values[i])
        found.append(
            ScoredAnomaly(
                series_ids[i], float(timestamps[i]), value, float(scores.score[i]),
                expected, expected - width, expected + width,
                "above" if value > expected else "below",
                REASONS[scores.reason[i]], int(scores.version[i]),
                ALGORITHMS[scores.algorithm[i]], bool(stale[i]),
            )
        )  # fmt: skip
    return found
