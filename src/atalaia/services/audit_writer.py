"""Audit entries written off the request path, on a thread of their own.

The HTTP edge hands its entries (state-changing calls, admin calls, sign-ins)
to an `AuditWriter` instead of writing them on the event loop: they are
written a batch per transaction; while the database is down they wait, up to
`capacity`, and are written once it is back.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AuditEntry, AuditLog
from atalaia.errors import DependencyUnavailable

log = structlog.get_logger(__name__)

CAPACITY = 10_000  # entries waiting; past it an entry is dropped (and counted)
BATCH = 500  # entries per transaction
RETRY_S = 1.0  # after a failed write


@dataclass(frozen=True, slots=True)
class _Pending:
    entry: AuditEntry
    once_key: str | None  # written at most once per key (`AuditLog.append_once`)


class AuditWriter:
    """Writes the entries `put` to it, in order, on a thread of its own."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        capacity: int = CAPACITY,
        retry_s: float = RETRY_S,
    ) -> None:
        self.sessions = sessions
        self.retry_s = retry_s
        self.dropped = 0
        self._queue: queue.Queue[_Pending | None] = queue.Queue(capacity)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="atalaia-audit", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def put(self, entry: AuditEntry, *, once_key: str | None = None) -> None:
        """Queue `entry` (never blocks: when the queue is full it is dropped)."""
        try:
            self._queue.put_nowait(_Pending(entry, once_key))
        except queue.Full:
            self.dropped += 1
            log.warning("audit.dropped", action=entry.action, dropped=self.dropped)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (one attempt while stopping), then end the thread."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            batch, last = self._next_batch()
            if batch:
                self._write(batch)
            if last:
                return

    def _next_batch(self) -> tuple[list[_Pending], bool]:
        """Up to BATCH entries (waiting for the first); whether the queue ended."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[_Pending]) -> None:
        """Write `batch` in one transaction, retried while the database is
        unavailable (but once stopping); what cannot be written is said lost."""
        while True:
            try:
                self._write_once(batch)
                return
            except DependencyUnavailable as exc:
                if self._stopping.is_set():
                    self._lost(batch, exc)
                    return
                log.warning("audit.write_failed", entries=len(batch), error=str(exc))
                time.sleep(self.retry_s)
            except Exception as exc:  # a thread's last resort: it must go on
                self._lost(batch, exc)
                return

    def _write_once(self, batch: list[_Pending]) -> None:
        with self.sessions() as session:
            audit = AuditLog(session)
            for pending in batch:
                if pending.once_key is None:
                    audit.append(pending.entry)
                else:
                    audit.append_once(pending.entry, pending.once_key)
            session.commit()

    @staticmethod
    def _lost(batch: list[_Pending], exc: Exception) -> None:
        actions = sorted({p.entry.action for p in batch})
        log.error("audit.lost", entries=len(batch), actions=actions, error=repr(exc))
