"""Lifecycle events for the alerter to route (`core.alerting`, rules with
`events`): a promotion, a rollback, a training that failed, a drift found, an
alert of the self-healing engine.

Each is logged in the transaction of the change it tells of, once per key, so
an event exists exactly when its change was committed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import SignalLogs
from atalaia.core.registry import StageChange

SHOWN = 20  # series named in an event's text; its document lists up to MAX_LISTED
MAX_LISTED = 1_000


def stage_changed(
    session: Session, action: str, changes: Sequence[StageChange], actor: str,
    reason: str,
) -> None:  # fmt: skip
    """A promotion (`model.promoted`) or rollback (`model.rolled_back`)."""
    target = changes[-1]
    verb = "promoted" if action == "model.promoted" else "rolled back"
    moves = ", ".join(f"v{c.version} {c.from_stage}→{c.to_stage}" for c in changes)
    title = f"{target.series_id}: v{target.version} {verb} by {actor}"
    text = f"{title} ({moves})." + (f" Reason: {reason}" if reason else "")
    document = {
        "series_id": target.series_id,
        "version": target.version,
        "actor": actor,
        "reason": reason,
        "changes": [
            {"version": c.version, "from": c.from_stage, "to": c.to_stage}
            for c in changes
        ],
    }
    key = f"{action}.{target.series_id}.{moves}.{time.time_ns()}"
    _log(session, action, key, target.series_id, title, text, document)


def training_failed(session: Session, failures: Mapping[str, tuple[str, str]]) -> None:
    """Jobs that failed: job id → (series id, why)."""
    if not failures:
        return
    series = sorted({sid for sid, _ in failures.values()})
    reasons = sorted({why for _, why in failures.values()})
    if len(failures) == 1:
        ((job_id, (sid, why)),) = failures.items()
        title, text = f"training of {sid} failed", f"Job {job_id}: {why}"
    else:
        title = f"training failed for {len(series)} series"
        text = f"{_named(series)}. Reasons: {'; '.join(reasons[:5])}"
    document = {
        "jobs": [
            {"job_id": job, "series_id": sid, "error": why}
            for job, (sid, why) in sorted(failures.items())[:MAX_LISTED]
        ],
        "count": len(failures),
    }
    key = "training.failed." + _digest(sorted(failures))
    only = series[0] if len(series) == 1 else None
    _log(session, "training.failed", key, only, title, text, document)


def drift_detected(session: Session, series_ids: Sequence[str], run: str) -> None:
    """A drift check (`run`: its time) found these series drifted."""
    if not series_ids:
        return
    series = sorted(series_ids)
    title = (
        f"drift detected on {series[0]}"
        if len(series) == 1
        else f"drift detected on {len(series)} series"
    )
    text = f"{_named(series)}: their recent readings left their training data's."
    document = {"series": series[:MAX_LISTED], "count": len(series), "run": run}
    only = series[0] if len(series) == 1 else None
    _log(session, "model.drift", f"model.drift.{run}", only, title, text, document)


def healing_alert(
    session: Session, key: str, title: str, text: str, document: Mapping[str, Any]
) -> None:
    """An alert the self-healing engine raised (a training backlog, trainings
    failing again and again), once per `key`: a `platform.alert`, routed like
    Alertmanager's, `major` unless its document says otherwise."""
    alert = {"severity": "major", "source": "healing", **document}
    _log(session, "platform.alert", f"healing.{key}", None, title, text, alert)


def _named(series: Sequence[str]) -> str:
    shown = ", ".join(series[:SHOWN])
    return shown + (f" and {len(series) - SHOWN} more" if len(series) > SHOWN else "")


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _log(
    session: Session, event: str, key: str, series_id: str | None, title: str,
    text: str, document: dict[str, Any],
) -> None:  # fmt: skip
    SignalLogs(session).add_event(
        key, event, series_id, title, text, document, time.time()
    )


def report_ready(
    session: Session, key: str, title: str, text: str, document: Mapping[str, Any]
) -> None:
    """A scheduled report's files were stored (`services.reports.scheduled`),
    once per `key` (its subscription and period)."""
    _log(session, "report.ready", key, None, title, text, dict(document))
