"""Fleet operations: promote, roll back or start canaries of many series as
one operation.

`create_operation` freezes the series a selector names, in chunks of
CHUNK_SERIES, and queues the operation for a runner
(`services.operation_runner`); `dry_run` plans it as its chunks would be,
writing nothing; `cancel_operation` asks it to stop between two chunks. The
end of an operation is one platform event (`operation_finished`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    AuditLog,
    FleetRegistry,
    OperationStore,
    RolloutStore,
    SignalLogs,
)
from atalaia.adapters.db.repositories.operations import slices
from atalaia.core.operations import (
    Action,
    CanaryStart,
    ChunkPlan,
    Condition,
    Operation,
    OperationRequest,
    OperationStatus,
    Selector,
    Skip,
    kept_errors,
    plan_canaries,
    plan_promotions,
    plan_rollbacks,
)
from atalaia.core.registry import Stage
from atalaia.errors import Conflict, NotFound
from atalaia.services.training import new_job_id

log = structlog.get_logger()

CHUNK_SERIES = 10_000
NO_VERSION = "no model version"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DryRun:
    """What an operation would do: series `selected`, those it would move
    (`eligible`), leave alone (`skipped`, by reason) or fail to move."""

    selected: int
    eligible: int
    skipped: dict[str, int]
    failed: int
    errors: list[dict[str, str | None]]


def create_operation(
    *,
    session: Session,
    request: OperationRequest,
    actor: str,
    now: datetime | None = None,
    chunk_series: int = CHUNK_SERIES,
    wave_of: str | None = None,
) -> Operation:
    """Freeze the selected series in chunks of `chunk_series`, queue the
    operation and commit (`wave_of`: the batch whose weekly wave it is).

    A series an explicit list names without any model version is counted
    failed at once. NotFound (`selector_matches`) when nothing is selected.
    """
    fleet = FleetRegistry(session)
    selected = _selected(fleet, request.selector)
    if not selected:
        raise NotFound(
            "the selector matches no series with a model version",
            rule="selector_matches",
        )
    unknown = _unknown(fleet, request.selector, selected)
    operation = Operation(
        id=new_job_id(), action=request.action, status=OperationStatus.QUEUED,
        selector=request.selector.describe(),
        condition=request.condition.describe() if request.condition else {},
        archive_existing=request.archive_existing, reason=request.reason,
        actor=actor, total=len(selected), done=0, failed=len(unknown), skipped=0,
        skipped_by_reason={},
        errors=kept_errors([], [(s, NO_VERSION) for s in unknown]),
        created_at=now or utcnow(), started_at=None, finished_at=None,
        cancel_requested=False,
        canary=request.canary.describe() if request.canary else {},
        wave_of=wave_of,
    )  # fmt: skip
    missing = set(unknown)
    OperationStore(session).add(
        operation,
        [s for s in selected if s not in missing],
        chunk_series=chunk_series,
    )
    AuditLog(session).record(
        actor=actor, action="operation.created", target=target(operation),
        operation=request.action.value, selector=operation.selector,
        total=operation.total, reason=request.reason,
    )  # fmt: skip
    session.commit()
    log.info(
        "operations.created", operation_id=operation.id, action=operation.action,
        total=operation.total,
    )  # fmt: skip
    return operation


def dry_run(*, session: Session, request: OperationRequest) -> DryRun:
    """What `request` would do now, planned as its chunks would be; nothing
    is written."""
    fleet = FleetRegistry(session)
    selected = _selected(fleet, request.selector)
    unknown = _unknown(fleet, request.selector, selected)
    missing = set(unknown)
    eligible, skipped = 0, Counter[str]()
    failed = [(s, NO_VERSION) for s in unknown]
    for chunk in slices([s for s in selected if s not in missing], CHUNK_SERIES):
        plan = plan_chunk(
            fleet, chunk, action=request.action, condition=request.condition,
            archive_existing=request.archive_existing, canary=request.canary,
        )  # fmt: skip
        eligible += len(plan.moved)
        skipped += plan.skipped
        failed += plan.failed
    errors = kept_errors([], failed)
    return DryRun(len(selected), eligible, dict(skipped), len(failed), errors)


def plan_chunk(
    fleet: FleetRegistry,
    series: Sequence[str],
    *,
    action: Action,
    condition: Condition | None,
    archive_existing: bool,
    canary: CanaryStart | None,
) -> ChunkPlan:
    """What `action` does to `series`, from the registry now; a series with a
    rollout running is skipped (the rollout moves it)."""
    busy = RolloutStore(fleet.session).running_among(series)
    free = [s for s in series if s not in busy] if busy else list(series)
    if action is Action.ROLLBACK:
        production = [
            v
            for v in fleet.live_versions(free, metrics=False)
            if v.stage is Stage.PRODUCTION
        ]
        plan = plan_rollbacks(free, production, fleet.past_production(free))
    else:
        versions = fleet.live_versions(free, metrics=condition is not None)
        if action is Action.CANARY:
            canary = canary or CanaryStart()
            plan = plan_canaries(free, versions, condition=condition, canary=canary)
        else:
            plan = plan_promotions(
                free, versions, archive_existing=archive_existing,
                condition=condition,
            )  # fmt: skip
    if busy:
        plan.skipped[Skip.ROLLOUT_RUNNING] += len(busy)
    return plan


def get_operation(*, session: Session, operation_id: str) -> Operation:
    return OperationStore(session).get(operation_id)


def list_operations(
    *, session: Session, before: str | None, limit: int
) -> list[Operation]:
    """Operations newest first, after the one `before` (a cursor)."""
    return OperationStore(session).page(before=before, limit=limit)


def cancel_operation(
    *, session: Session, operation_id: str, actor: str, now: datetime | None = None
) -> Operation:
    """Stop an operation between two chunks (what was done stays done) and
    commit; Conflict (`operation_cancellable`) once it has ended."""
    store = OperationStore(session)
    if not store.request_cancel(operation_id, at=now or utcnow()):
        ended = store.get(operation_id)  # NotFound when there is no such operation
        raise Conflict(
            f"operation {operation_id} is {ended.status}: only a queued or running "
            "one can be cancelled",
            rule="operation_cancellable",
        )
    operation = store.get(operation_id)
    AuditLog(session).record(
        actor=actor, action="operation.cancelled", target=target(operation)
    )
    session.commit()
    return operation


def _selected(fleet: FleetRegistry, selector: Selector) -> list[str]:
    selected = fleet.selected(selector)
    if selector.batch_id is not None and not selected:
        raise NotFound(
            f"training batch {selector.batch_id!r} does not exist", rule="batch_exists"
        )
    return selected


def _unknown(
    fleet: FleetRegistry, selector: Selector, selected: Sequence[str]
) -> list[str]:
    """The series of an explicit list without any model version (the other
    selectors choose among series with one)."""
    if selector.series_ids is None and selector.batch_id is None:
        return []
    return fleet.without_versions(selected)


_WHAT = {
    Action.PROMOTE: "promotion",
    Action.ROLLBACK: "rollback",
    Action.CANARY: "canary start",
}


def target(operation: Operation) -> str:
    """An operation as its audit entries name it."""
    return f"operation/{operation.id}"


def operation_finished(session: Session, operation: Operation) -> None:
    """The platform event of an operation's end (`model.promoted`,
    `model.rolled_back` or `model.canary_started`, of no one series), for the
    alert rules to route."""
    what = _WHAT[operation.action]
    title = (
        f"fleet {what} {operation.status}: {operation.done} of {operation.total} "
        f"series by {operation.actor}"
    )
    moved = "canaries started" if operation.action is Action.CANARY else "moved"
    text = (
        f"Operation {operation.id} {operation.status}: {operation.done} {moved}, "
        f"{operation.skipped} skipped, {operation.failed} failed."
        + (f" Reason: {operation.reason}" if operation.reason else "")
    )
    document = {
        "operation_id": operation.id, "action": operation.action.value,
        "status": operation.status.value, "selector": operation.selector,
        "total": operation.total, "done": operation.done,
        "skipped": operation.skipped, "failed": operation.failed,
        "skipped_by_reason": operation.skipped_by_reason,
        "actor": operation.actor, "reason": operation.reason,
    }  # fmt: skip
    SignalLogs(session).add_event(
        f"{operation.action.event}.operation.{operation.id}",
        operation.action.event, None, title, text, document, time.time(),
    )  # fmt: skip
