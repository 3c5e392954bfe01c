"""The embedded job executor: threads of this process working off the jobs table.

Jobs are committed as rows before they are dispatched, so a restart loses none:
the owner re-dispatches the unfinished ones at start.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable

import structlog

log = structlog.get_logger()

_STOP = ""


class InProcessExecutor:
    def __init__(self, run: Callable[[str], object], *, threads: int = 1) -> None:
        self._run = run
        self._queue: queue.Queue[str] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"atalaia-job-{i}", daemon=True)
            for i in range(max(1, threads))
        ]

    def start(self, pending: Iterable[str] = ()) -> None:
        for job_id in pending:
            self.dispatch(job_id)
        for thread in self._threads:
            thread.start()

    def dispatch(self, job_id: str) -> None:
        self._queue.put(job_id)

    def depth(self) -> int:
        return self._queue.qsize()

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def stop(self, timeout_s: float = 10.0) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout_s)

    def _work(self) -> None:
        while (job_id := self._queue.get()) != _STOP:
            try:
                self._run(job_id)
            except Exception:  # the job function records failures; this is a last guard
                log.error("executor.job_crashed", job_id=job_id, exc_info=True)
