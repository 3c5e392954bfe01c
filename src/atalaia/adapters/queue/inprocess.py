"""The embedded job executor: threads of this process working off the jobs table.

Jobs are committed as rows before they are dispatched, so a restart loses none:
the owner re-dispatches the unfinished ones at start, and a sweeper re-dispatches
jobs left unfinished by a run that died (for example on a database outage).
Jobs dispatched together run in chunks: the run function gets a chunk's ids at
once and fits them in one pass, in the context of the call that dispatched them
(its trace, when tracing is on).
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence

import structlog

from atalaia.adapters.queue.sweeper import Sweeper

log = structlog.get_logger()

CHUNK_SIZE = 500
_STOP: tuple[list[str], contextvars.Context] = ([], contextvars.Context())


class InProcessExecutor:
    def __init__(
        self,
        run: Callable[[list[str]], object],
        *,
        threads: int = 1,
        chunk_size: int = CHUNK_SIZE,
        niceness: int = 0,
        find_orphans: Callable[[], Iterable[str]] = tuple,
        sweep_every_s: float = 60.0,
    ) -> None:
        self._run = run
        self._chunk_size = chunk_size
        self._niceness = niceness
        self._find_orphans = find_orphans
        self._queue: queue.Queue[tuple[list[str], contextvars.Context]] = queue.Queue()
        self._known: set[str] = set()  # dispatched here and not finished yet
        self._waiting = 0  # jobs dispatched and not started
        self._known_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"atalaia-job-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        self._sweeper = Sweeper(self.sweep_once, every_s=sweep_every_s)

    def start(self, pending: Sequence[str] = ()) -> None:
        self.dispatch_many(pending)
        for thread in self._threads:
            thread.start()
        self._sweeper.start()

    def dispatch(self, job_id: str) -> None:
        self.dispatch_many([job_id])

    def dispatch_many(self, job_ids: Sequence[str]) -> None:
        """Queue the jobs not already held here, `chunk_size` to a chunk."""
        with self._known_lock:
            fresh = [j for j in dict.fromkeys(job_ids) if j not in self._known]
            self._known.update(fresh)
            self._waiting += len(fresh)
        for start in range(0, len(fresh), self._chunk_size):
            chunk = fresh[start : start + self._chunk_size]
            self._queue.put((chunk, contextvars.copy_context()))

    def depth(self) -> int:
        """Jobs waiting for a thread."""
        return self._waiting

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._sweeper.stop(timeout_s)
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout_s)

    def sweep_once(self) -> int:
        """Dispatch the orphaned jobs not already known here; return how many."""
        orphans = [
            job_id for job_id in self._find_orphans() if job_id not in self._known
        ]
        self.dispatch_many(orphans)
        if orphans:
            log.info("executor.redispatched", jobs=len(orphans))
        return len(orphans)

    def _work(self) -> None:
        if self._niceness:  # this thread only (Linux threads have their own)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._niceness)
        while (item := self._queue.get()) is not _STOP:
            chunk, dispatched_in = item
            with self._known_lock:
                self._waiting -= len(chunk)
            try:
                dispatched_in.run(self._run, chunk)
            except Exception:  # the run function records failures; a last guard
                log.error("executor.chunk_crashed", jobs=chunk, exc_info=True)
            finally:
                with self._known_lock:
                    self._known.difference_update(chunk)
