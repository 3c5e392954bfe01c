"""The runner of fleet operations (`services.operations`): a thread of the
training service, or driven a chunk at a time with `run_chunk`.

It claims an unfinished operation from the database (`OperationStore.claim`:
a lease of LEASE_S), then runs its chunks, each in one transaction: hold the
lease (the operation's row), plan the chunk's stage changes in the core from
its versions, write them and their ledger entries one statement per kind of
move (`FleetRegistry.apply`), one audit entry, the progress. Between two
chunks it looks for a cancel.

A runner that dies leaves its lease to run out; another one then goes on from
the chunks still to handle. A chunk is forgotten in its own transaction, so no
series is moved twice. After each chunk the shared model cache forgets the
chunk's series, which inference replicas read again from the database (they
see the changes through the ledger, their change feed: no Redis notice per
series).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.cache import ModelCache
from atalaia.adapters.db.repositories import AuditLog, FleetRegistry, OperationStore
from atalaia.core.operations import (
    CanaryStart,
    Condition,
    Operation,
    OperationStatus,
)
from atalaia.services.leased_runner import LeasedRunner
from atalaia.services.operations import operation_finished, plan_chunk, target, utcnow
from atalaia.services.registry import committed
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

LEASE_S = 60.0  # a runner silent this long has died: another takes over
IDLE_S = 0.5  # a runner with nothing to run looks again after this long

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """After a chunk: whether the operation goes on, the series it moved, and
    the operation as it ended (None while it goes on)."""

    more: bool
    moved: list[str] = field(default_factory=list)
    ended: Operation | None = None


STOPPED = ChunkOutcome(more=False)


class OperationRunner(LeasedRunner):
    """Claims unfinished operations from the database and runs them a chunk at
    a time (`step`), on a thread of its own between `start` and `stop`."""

    kind = "operations"

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
        super().__init__(idle_s=idle_s, name=name)
        self.sessions = sessions
        self.cache = cache
        self.clock = clock
        self.lease = timedelta(seconds=lease_s)

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

    def release(self, held: str) -> None:
        with self.sessions() as session:
            OperationStore(session).release(held, runner=self.name)
            session.commit()

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
            condition=Condition.of(operation.condition),
            archive_existing=operation.archive_existing,
            canary=CanaryStart.of(operation.canary),
        )  # fmt: skip
        fleet.apply(
            plan, actor=operation.actor, reason=_ledger_reason(operation), at=now
        )
        operation = store.record_chunk(operation, number=number, plan=plan)
        AuditLog(session).record(
            actor=operation.actor, action=operation.action.event,
            target=target(operation), series=len(series), first=series[0],
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
