"""The weekly wave: the Staging versions the weekly retraining made go out by
the wave policy (`core.operations.WavePolicy`), a training batch at a time.

The weekly retraining (`services.scheduler.retrain_fleet`) queues its series
in batches and names them in its audit entry. Each run of the wave task looks
at the batches of the last week's retraining runs: one that has ended (no job
of it queued or running) and has no wave yet gets one — a fleet operation
selecting the batch (`services.operations`), marked as the batch's wave, which
the database keeps unique: two schedulers never launch a batch's wave twice.
A batch still training waits for a later run. Every run is audited
(`scheduler.wave`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AuditLog, JobStore, OperationStore
from atalaia.core.operations import WavePolicy, wave_request
from atalaia.core.schedule import Task
from atalaia.errors import AtalaiaError, Conflict
from atalaia.services import operations
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

ACTOR = "scheduler"
LOOKBACK = timedelta(days=7)  # the retraining runs whose batches are looked at


@dataclass(slots=True)
class WaveReport:
    """What a run did: the waves it launched (batch → operation), the batches
    still training, and why launching one failed."""

    policy: str
    launched: dict[str, str] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    error: str | None = None

    def detail(self) -> dict[str, object]:
        return {"task": Task.WAVE.value} | asdict(self)


def launch_waves(
    *,
    sessions: SessionFactory,
    policy: WavePolicy,
    max_false_alarm_rate: float,
    now: datetime,
) -> WaveReport:
    """Launch the wave of each weekly retraining batch that has ended without
    one, and audit the run."""
    report = WaveReport(policy.value)
    with sessions() as session:
        ended = _ended_without_wave(session, now - LOOKBACK, report)
    for batch_id in ended:
        request = wave_request(
            policy, batch_id, max_false_alarm_rate=max_false_alarm_rate
        )
        if request is None:
            break
        try:
            with sessions() as session:
                operation = operations.create_operation(
                    session=session, request=request, actor=ACTOR, now=now,
                    wave_of=batch_id,
                )  # fmt: skip
        except Conflict:
            continue  # another scheduler launched it meanwhile
        except AtalaiaError as exc:
            report.error = f"batch {batch_id}: {exc.detail}"
            break
        report.launched[batch_id] = operation.id
    with sessions() as session:
        AuditLog(session).record(
            actor=ACTOR, action=Task.WAVE.audit_action, target="fleet",
            **report.detail(),
        )  # fmt: skip
        session.commit()
    if report.launched:
        log.info("waves.launched", policy=policy, launched=report.launched)
    return report


def _ended_without_wave(
    session: Session, since: datetime, report: WaveReport
) -> list[str]:
    """The retraining batches since `since` that have ended and have no wave;
    those still training go to `report.waiting`."""
    audit = AuditLog(session)
    batches: list[str] = []
    for action in (Task.RETRAIN.audit_action, f"{Task.RETRAIN.audit_action}_failed"):
        for detail in audit.details(action, since=since):
            batches += [str(b) for b in detail.get("batches", [])]
    waved = OperationStore(session).waves_of(batches)
    jobs, ended = JobStore(session), []
    for batch_id in (b for b in batches if b not in waved):
        counts = jobs.batch(batch_id)
        if counts is None:
            continue
        if any(n for status, n in counts.by_status.items() if not status.terminal):
            report.waiting.append(batch_id)
        else:
            ended.append(batch_id)
    return ended
