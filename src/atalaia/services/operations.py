"""Fleet operations: promote or roll back many series as one operation.

`create_operation` freezes the series a selector names, in chunks of
CHUNK_SERIES, and queues the operation. An `OperationRunner` (a thread of the
training service, or driven a chunk at a time with `run_chunk`) claims it
from the database and runs its chunks, each in one transaction: hold the
lease (the operation's row), plan the chunk's stage changes in the core
(`core.operations`) from its versions, write them and their ledger entries
one statement per kind of move (`FleetRegistry.apply`), one audit entry, the
progress. Between two chunks it looks for a cancel.

A runner that dies leaves its lease to run out (LEASE_S); another one then
goes on from the chunks still to handle. A chunk is forgotten in its own
transaction, so no series is moved twice.

Inference replicas see the changes through the ledger, their change feed; the
shared model cache forgets the chunk's series, which replicas read again from
the database (no Redis notice per series). An operation's end is one platform
event.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.cache import ModelCache
from atalaia.adapters.db.repositories import (
    AuditLog,
    FleetRegistry,
    OperationStore,
    SignalLogs,
)
from atalaia.adapters.db.repositories.operations import slices
from atalaia.core.operations import (
    Action,
    ChunkPlan,
    Condition,
    Operation,
    OperationRequest,
    OperationStatus,
    Selector,
    kept_errors,
    plan_promotions,
    plan_rollbacks,
)
from atalaia.core.registry import Stage
from atalaia.errors import (
    ConcurrentChange,
    Conflict,
    DependencyUnavailable,
    NotFound,
)
from atalaia.services.registry import committed
from atalaia.services.training import new_job_id
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

CHUNK_SERIES = 10_000
LEASE_S = 60.0  # a runner silent this long has died: another takes over
IDLE_S = 0.5  # a runner with nothing to run looks again after this long
NO_VERSION = "no model version"

Clock = Callable[[], datetime]


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
) -> Operation:
    """Freeze the selected series in chunks of `chunk_series`, queue the
    operation and commit.

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
    )  # fmt: skip
    missing = set(unknown)
    OperationStore(session).add(
        operation,
        [s for s in selected if s not in missing],
        chunk_series=chunk_series,
    )
    AuditLog(session).record(
        actor=actor, action="operation.created", target=_target(operation),
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
            archive_existing=request.archive_existing,
        )  # fmt: skip
        eligible += len(plan.moved)
        skipped += plan.skipped
        failed += plan.failed
    errors = kept_errors([], [(sid, error) for sid, error in failed])
    return DryRun(len(selected), eligible, dict(skipped), len(failed), errors)


def plan_chunk(
    fleet: FleetRegistry,
    series: Sequence[str],
    *,
    action: Action,
    condition: Condition | None,
    archive_existing: bool,
) -> ChunkPlan:
    """The stage changes of `action` for `series`, from the registry now."""
    if action is Action.PROMOTE:
        versions = fleet.live_versions(series, metrics=condition is not None)
        return plan_promotions(
            series, versions, archive_existing=archive_existing, condition=condition
        )
    production = [
        v
        for v in fleet.live_versions(series, metrics=False)
        if v.stage is Stage.PRODUCTION
    ]
    return plan_rollbacks(series, production, fleet.past_production(series))


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
        actor=actor, action="operation.cancelled", target=_target(operation)
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


def _target(operation: Operation) -> str:
    return f"operation/{operation.id}"


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """After a chunk: whether the operation goes on, the series it moved, and
    the operation as it ended (None while it goes on)."""

    more: bool
    moved: list[str] = field(default_factory=list)
    ended: Operation | None = None


STOPPED = ChunkOutcome(more=False)


class OperationRunner:
    """Claims unfinished operations from the database and runs them a chunk at
    a time (`step`), on a thread of its own between `start` and `stop`."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        cache: ModelCache | None = None,
        clock: Clock = utcnow,
        lease_s: float = LEASE_S,
        idle_s: float = IDLE_S,
        name: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.cache = cache
        self.clock = clock
        self.lease = timedelta(seconds=lease_s)
        self.idle_s = idle_s
        host = socket.gethostname()[:40]
        self.name = name or f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held: str | None = None  # the operation being run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self) -> str | None:
        """Take the oldest unfinished operation no live runner holds."""
        now = self.clock()
        with self.sessions() as session:
            store = OperationStore(session)
            for operation_id in store.claimable(now=now):
                taken = store.claim(
                    operation_id, runner=self.name, now=now,
                    lease_until=now + self.lease,
                )  # fmt: skip
                session.commit()
                if taken:
                    log.info("operations.claimed", operation_id=operation_id)
                    self.held = operation_id
                    return operation_id
        return None

    def run_chunk(self, operation_id: str) -> bool:
        """Run the next chunk of an operation this runner holds; False once the
        operation has ended, or when another runner took it over."""
        with self.sessions() as session:
            outcome = committed(
                session,
                lambda: self._chunk(session, operation_id),
                what=f"chunk of operation {operation_id}",
            )
        if outcome.moved and self.cache is not None:
            self.cache.forget(outcome.moved)  # replicas read them again
        if not outcome.more and self.held == operation_id:
            self.held = None
        if outcome.ended is not None:
            ended = outcome.ended
            log.info(
                "operations.ended", operation_id=ended.id, status=ended.status,
                done=ended.done, failed=ended.failed, skipped=ended.skipped,
            )  # fmt: skip
        return outcome.more

    def step(self) -> bool:
        """Run a chunk of the operation held, or of one claimed now; False when
        there is none to run."""
        operation_id = self.held or self.claim()
        if operation_id is None:
            return False
        self.run_chunk(operation_id)
        return True

    def fail(self, operation_id: str, error: str) -> None:
        """End an operation this runner holds as failed (`error`: why)."""
        with self.sessions() as session:
            store = OperationStore(session)
            operation = store.hold(
                operation_id, runner=self.name, lease_until=self.clock() + self.lease
            )
            if operation is not None:
                self._end(session, operation, OperationStatus.FAILED, error=error)
            session.commit()
        self.held = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="atalaia-operations", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the chunk running, and let another runner take over the
        operation held at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.held is not None:
            with self.sessions() as session:
                OperationStore(session).release(self.held, runner=self.name)
                session.commit()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except (DependencyUnavailable, ConcurrentChange) as exc:
                log.warning("operations.chunk_retried", error=exc.detail)
                busy = False  # the lease keeps the operation ours meanwhile
            except Exception as exc:  # a bug: end the operation, not a loop of it
                log.error("operations.chunk_crashed", exc_info=True)
                if self.held is not None:
                    self.fail(self.held, f"{type(exc).__name__}: {exc}"[:500])
                busy = False
            if not busy:
                self._stop.wait(self.idle_s)

    def _chunk(self, session: Session, operation_id: str) -> ChunkOutcome:
        now = self.clock()
        store = OperationStore(session)
        operation = store.hold(
            operation_id, runner=self.name, lease_until=now + self.lease
        )
        if operation is None:
            return STOPPED
        if operation.cancel_requested:
            status = OperationStatus.CANCELLED
            return ChunkOutcome(False, ended=self._end(session, operation, status))
        chunk = store.next_chunk(operation_id)
        if chunk is None:
            status = OperationStatus.DONE
            return ChunkOutcome(False, ended=self._end(session, operation, status))
        number, series = chunk
        fleet = FleetRegistry(session)
        plan = plan_chunk(
            fleet, series, action=operation.action,
            condition=Condition(**operation.condition) if operation.condition else None,
            archive_existing=operation.archive_existing,
        )  # fmt: skip
        fleet.apply(
            plan, actor=operation.actor, reason=_ledger_reason(operation), at=now
        )
        operation = store.record_chunk(operation, number=number, plan=plan)
        AuditLog(session).record(
            actor=operation.actor, action=operation.action.event,
            target=_target(operation), series=len(series), first=series[0],
            last=series[-1], moved=len(plan.moved), skipped=dict(plan.skipped),
            failed=len(plan.failed), reason=operation.reason,
        )  # fmt: skip
        if operation.remaining == 0:
            ended = self._end(session, operation, OperationStatus.DONE)
            return ChunkOutcome(False, plan.moved, ended)
        return ChunkOutcome(True, plan.moved)

    def _end(
        self,
        session: Session,
        operation: Operation,
        status: OperationStatus,
        *,
        error: str | None = None,
    ) -> Operation:
        ended = OperationStore(session).finish(
            operation, status=status, at=self.clock(), error=error
        )
        operation_finished(session, ended)
        return ended


def _ledger_reason(operation: Operation) -> str:
    said = f": {operation.reason}" if operation.reason else ""
    return f"operation {operation.id}{said}"


def operation_finished(session: Session, operation: Operation) -> None:
    """The platform event of an operation's end (`model.promoted` or
    `model.rolled_back`, of no one series), for the alert rules to route."""
    verb = "promotion" if operation.action is Action.PROMOTE else "rollback"
    title = (
        f"fleet {verb} {operation.status}: {operation.done} of {operation.total} "
        f"series by {operation.actor}"
    )
    text = (
        f"Operation {operation.id} {operation.status}: {operation.done} moved, "
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
