"""The embedded job executor: threads of this process working off the jobs table.

Jobs are committed as rows before they are dispatched, so a restart loses none:
the owner re-dispatches the unfinished ones at start, and a sweeper re-dispatches
jobs left unfinished by a run that died (for example on a database outage).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable

import structlog

log = structlog.get_logger()

_STOP = ""


class InProcessExecutor:
    def __init__(
        self,
        run: Callable[[str], object],
        *,
        threads: int = 1,
        find_orphans: Callable[[], Iterable[str]] = tuple,
        sweep_every_s: float = 60.0,
    ) -> None:
        self._run = run
        self._find_orphans = find_orphans
        self._sweep_every_s = sweep_every_s
        self._queue: queue.Queue[str] = queue.Queue()
        self._known: set[str] = set()  # dispatched here and not finished yet
        self._known_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"atalaia-job-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        self._sweeper = threading.Thread(
            target=self._sweep, name="atalaia-job-sweeper", daemon=True
        )

    def start(self, pending: Iterable[str] = ()) -> None:
        for job_id in pending:
            self.dispatch(job_id)
        for thread in self._threads:
            thread.start()
        self._sweeper.start()

    def dispatch(self, job_id: str) -> None:
        with self._known_lock:
            if job_id in self._known:
                return
            self._known.add(job_id)
        self._queue.put(job_id)

    def depth(self) -> int:
        return self._queue.qsize()

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout_s)

    def sweep_once(self) -> int:
        """Dispatch the orphaned jobs not already known here; return how many."""
        orphans = [
            job_id for job_id in self._find_orphans() if job_id not in self._known
        ]
        for job_id in orphans:
            self.dispatch(job_id)
        if orphans:
            log.info("executor.redispatched", jobs=len(orphans))
        return len(orphans)

    def _sweep(self) -> None:
        while not self._stopping.wait(self._sweep_every_s):
            try:
                self.sweep_once()
            except Exception as exc:  # the database may be down: try next time
                log.warning("executor.sweep_failed", error=type(exc).__name__)

    def _work(self) -> None:
        while (job_id := self._queue.get()) != _STOP:
            try:
                self._run(job_id)
            except Exception:  # the job function records failures; this is a last guard
                log.error("executor.job_crashed", job_id=job_id, exc_info=True)
            finally:
                with self._known_lock:
                    self._known.discard(job_id)
