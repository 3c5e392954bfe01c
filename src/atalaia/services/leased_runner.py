"""What the runners of long work share (`services.operation_runner`,
`services.upload_runner`): a name to hold leases by, and a thread that takes
one step after another between `start` and `stop`.

A step runs a chunk of the work held, or claims some; a step that loses a
race or finds a dependency down is tried again after `idle_s` (the lease keeps
the work the runner's meanwhile); one that crashes ends the work held as
failed, never a loop of the same crash. `stop` lets another runner take the
work held over at once.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from abc import ABC, abstractmethod

import structlog

from atalaia.errors import ConcurrentChange, DependencyUnavailable

log = structlog.get_logger()


def runner_name() -> str:
    """This runner's name in the leases it holds: host, process, and a tag."""
    host = socket.gethostname()[:40]
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeasedRunner(ABC):
    """Runs `step` on a thread of its own; `kind` names it in the logs."""

    kind: str

    def __init__(self, *, idle_s: float, name: str | None = None) -> None:
        self.idle_s = idle_s
        self.name = name or runner_name()
        self.held: str | None = None  # the work being run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def step(self) -> bool:
        """Run a chunk of the work held, or of some claimed now; False when
        there is none."""

    @abstractmethod
    def fail(self, held: str, error: str) -> None:
        """End the work held as failed (`error`: why)."""

    @abstractmethod
    def release(self, held: str) -> None:
        """Let another runner take the work held over at once."""

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"atalaia-{self.kind}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the chunk running, and release the work held."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.held is not None:
            self.release(self.held)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except (DependencyUnavailable, ConcurrentChange) as exc:
                log.warning(f"{self.kind}.chunk_retried", error=exc.detail)
                busy = False  # the lease keeps the work ours meanwhile
            except Exception as exc:  # a bug: end the work, not a loop of it
                log.error(f"{self.kind}.chunk_crashed", exc_info=True)
                if self.held is not None:
                    self.fail(self.held, f"{type(exc).__name__}: {exc}"[:500])
                busy = False
            if not busy:
                self._stop.wait(self.idle_s)
