"""The healing monitor: the `Signals` snapshot the rules read, from the
database, and which targets' earlier actions still stand."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    HealingAction,
    HealingLog,
    IncidentStore,
    JobStore,
    ModelStore,
    PlatformSignals,
    ReadingStore,
    RollupStore,
)
from atalaia.core.drift import MIN_FEEDBACK_LABELS
from atalaia.core.healing import (
    CIRCUIT_RULE,
    ConceptSignal,
    Dependency,
    Outcome,
    PromotedSignal,
    QueueSignal,
    Signals,
    Silence,
)
from atalaia.core.registry import ModelVersion, served_band
from atalaia.services.healing.rules import MIN_RATE, SensorQuality
from atalaia.services.training_chunk import SessionFactory
from atalaia.settings import Settings

MIN_POINTS = 10  # a series with fewer readings has no usual interval yet
CHANNEL_FAILURES = 3  # failed attempts in a row that make a channel's circuit open
CHANNEL = "channel:"
CHUNK = 1_000


def snapshot(
    sessions: SessionFactory, settings: Settings, *, now: float, concept: bool = True
) -> Signals:
    """What the rules read at `now` (epoch seconds), but data drift (the drift
    check's own); without the concept signals unless `concept` (they read a
    day of every series' rollups)."""
    horizon = now - settings.healing_silent_horizon_hours * 3600.0
    window_s = settings.healing_failures_window_hours * 3600.0
    with sessions() as session:
        platform = PlatformSignals(session)
        silent = platform.silent_series(
            now=now, factor=settings.healing_silent_factor, since=horizon,
            min_points=MIN_POINTS,
        )  # fmt: skip
        state = platform.queue(failed_since=_at(now - window_s))
        oldest = state.oldest_at.timestamp() if state.oldest_at else now
        queue = QueueSignal(
            state.queued, state.oldest_job, max(now - oldest, 0.0), state.failures,
            window_s, state.latest_errors,
        )  # fmt: skip
        return Signals(
            at=now,
            concept=tuple(
                concept_signals(session, settings, now=now) if concept else ()
            ),
            promoted=tuple(promoted_signals(session, settings, now=now)),
            silent=tuple(silent),
            silences=tuple(_silences(session, since=horizon)),
            queue=queue,
            dependencies=tuple(_channels(session)),
        )


def concept_signals(
    session: Session, settings: Settings, *, now: float
) -> list[ConceptSignal]:
    """The production series whose anomaly rate is off its baseline over the
    window, or with enough feedback labels in it to judge."""
    since = _at(now - settings.healing_concept_window_hours * 3600.0)
    platform = PlatformSignals(session)
    off = {
        r.series_id: r
        for r in platform.rates_off_baseline(
            since=since,
            min_predictions=settings.healing_concept_min_predictions,
            margin=settings.healing_concept_margin,
            min_rate=MIN_RATE,
        )  # fmt: skip
    }
    labels = platform.feedback_counts(since=since, min_labels=MIN_FEEDBACK_LABELS)
    candidates = sorted(set(off) | set(labels))
    pending = platform.newer_staging(candidates)
    found = []
    for version in _production(session, candidates):
        sid = version.series_id
        n, k = labels.get(sid, (0, 0))
        rate = off.get(sid)
        if rate is not None:
            predictions, anomalies = rate.predictions, rate.anomalies
        else:
            summary = RollupStore(session).summary(sid, since=since)
            predictions, anomalies = int(summary["count"]), int(summary["anomalies"])
        scores: tuple[float, ...] = ()
        labelled: tuple[bool, ...] = ()
        if n >= settings.healing_recalibrate_min_labels and _recalibratable(version):
            scores, labelled = _labelled_scores(platform, version, since)
        baseline = version.metrics.get("training_anomaly_rate")
        found.append(ConceptSignal(
            sid, version.version, version.lineage.algorithm,
            version.lineage.hyperparameters, predictions, anomalies,
            float(baseline) if baseline is not None else None, n, k, scores,
            labelled, pending.get(sid),
        ))  # fmt: skip
    return found


HOUR = timedelta(hours=1)


def promoted_signals(
    session: Session, settings: Settings, *, now: float
) -> list[PromotedSignal]:
    """The production versions promoted in the last
    `healing_rollback_window_hours`, each against the version it replaced:
    the hours since its promotion's (left out: both answered in it) and as
    many hours before it."""
    platform = PlatformSignals(session)
    promoted = platform.recent_promotions(
        since=_at(now - settings.healing_rollback_window_hours * 3600.0)
    )
    labels = platform.version_labels(promoted)
    by_hour: dict[datetime, list[tuple[str, int, datetime]]] = {}
    for found in promoted:
        by_hour.setdefault(
            found[2].replace(minute=0, second=0, microsecond=0), []
        ).append(found)
    signals = []
    for hour, group in sorted(by_hour.items()):
        cut = hour + HOUR
        span = max(_at(now) - cut, HOUR)
        windows = platform.rollup_windows(
            [sid for sid, _, _ in group], cut=cut, start=hour - span
        )
        for sid, version, at in group:
            before_n, before_k, after_n, after_k = windows.get(sid, (0, 0, 0, 0))
            n, k = labels.get(sid, (0, 0))
            signals.append(PromotedSignal(
                sid, version, at.timestamp(), (after_n, after_k),
                (before_n, before_k), n, k,
            ))  # fmt: skip
    return signals


def _production(session: Session, series_ids: Sequence[str]) -> list[ModelVersion]:
    versions: list[ModelVersion] = []
    for start in range(0, len(series_ids), CHUNK):
        piece = list(series_ids[start : start + CHUNK])
        versions += ModelStore(session).production_versions(piece)
    return [v for v in versions if v.sensor is None]


def _recalibratable(version: ModelVersion) -> bool:
    """A model scored by its band alone (no state, no trees)."""
    return version.stream is None and version.artifact is None


def _labelled_scores(
    platform: PlatformSignals, version: ModelVersion, since: datetime
) -> tuple[tuple[float, ...], tuple[bool, ...]]:
    """The labelled readings' scores against `version`'s band, and their labels."""
    rows = platform.labelled_readings(version.series_id, since=since)
    if not rows:
        return (), ()
    timestamps = np.array([t for t, _, _ in rows])
    values = np.array([x for _, x, _ in rows])
    expected, half = served_band(version).at(timestamps)
    scores = np.abs(values - expected) / half
    return tuple(scores.tolist()), tuple(y for _, _, y in rows)


def _silences(session: Session, *, since: float) -> list[Silence]:
    """The sensors whose silence the engine opened an incident for (and did
    not close since), with their series back to reporting."""
    latest = _last_per_target(
        HealingLog(session).latest(SensorQuality.name, since=_at(since))
    )
    opened = [
        row for row in latest.values()
        if row.action == "open_incident" and row.outcome is Outcome.DONE
    ]  # fmt: skip
    seen: dict[str, Any] = {}
    for row in opened:
        seen |= row.evidence["series"]
    summaries = ReadingStore(session).summaries(sorted(seen))
    silences = []
    for row in opened:
        series = tuple(row.evidence["series"])
        resumed = tuple(
            sid for sid in series
            if (s := summaries.get(sid)) is not None and s.last_ts is not None
            and s.last_ts > float(seen[sid]["last_ts"])
        )  # fmt: skip
        silences.append(Silence(row.target, row.episode, series, resumed))
    return silences


def _channels(session: Session) -> list[Dependency]:
    """The notification channels failing now, and those whose circuit the
    engine recorded open."""
    failing = {
        CHANNEL + c.name: c
        for c in PlatformSignals(session).failing_channels(
            min_attempts=CHANNEL_FAILURES
        )
    }
    latest = _last_per_target(HealingLog(session).latest(CIRCUIT_RULE))
    opened = {
        target
        for target, row in latest.items()
        if target.startswith(CHANNEL) and row.action == "open_circuit"
        and row.outcome is Outcome.DONE
    }  # fmt: skip
    found = [
        Dependency(name, True, c.attempts, c.last_error, name in opened, c.retry_at)
        for name, c in sorted(failing.items())
    ]
    return found + [
        Dependency(name, False, 0, "", True) for name in sorted(opened - set(failing))
    ]


def _last_per_target(rows: Iterable[HealingAction]) -> dict[str, HealingAction]:
    latest: dict[str, HealingAction] = {}
    for row in rows:
        if row.target not in latest or row.id > latest[row.target].id:
            latest[row.target] = row
    return latest


def standing(
    session: Session, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Of these (action, target) pairs, those whose earlier action still
    stands, and how: a training of the series queued or running, a version
    waiting in Staging, a data-quality incident of the sensor live."""
    keys = set(keys)
    series = sorted({t for a, t in keys if a in ("retrain", "recalibrate")})
    busy: set[str] = set()
    for start in range(0, len(series), CHUNK):
        busy |= JobStore(session).busy_series(series[start : start + CHUNK])
    waiting = PlatformSignals(session).newer_staging(
        sorted({t for a, t in keys if a == "recalibrate"})
    )
    sensors = {t for a, t in keys if a == "open_incident"}
    live = {
        i.sensor_id: i.id
        for i in IncidentStore(session).live(sensors)
        if i.kind == "data_quality"
    }
    found: dict[tuple[str, str], str] = {}
    for action, target in keys:
        if action in ("retrain", "recalibrate") and target in busy:
            found[action, target] = "a training of it is queued or running"
        elif action == "recalibrate" and target in waiting:
            found[action, target] = f"v{waiting[target]} waits in Staging"
        elif action == "open_incident" and target in live:
            found[action, target] = f"data-quality incident {live[target]} is live"
    return found


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
