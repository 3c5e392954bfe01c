"""Whether the database answers inference, and when to try it again."""

from __future__ import annotations

import threading
import time

import structlog

from atalaia.errors import DependencyUnavailable

log = structlog.get_logger()


class DatabaseHealth:
    """The database as the predictor last found it: up, or down until `retry_s`
    after its last failure.

    Every thread that calls the database reports here (the change feed, the
    counts, a request's lookup, a reload); reports are serialized by a lock and
    logged when the state changes. `ok` is a plain flag, read without the lock.
    """

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self.ok = False  # not until a first call succeeded
        self._failed = False  # a failure was reported, and no success since
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def up(self) -> None:
        """A call succeeded."""
        with self._lock:
            if self._failed:
                log.info("inference.database_back")
            self.ok, self._failed = True, False

    def down(self, exc: DependencyUnavailable) -> None:
        """A call found the database unavailable: leave it alone for `retry_s`."""
        with self._lock:
            if self.ok or not self._failed:
                log.warning("inference.database_down", error=exc.origin)
            self.ok, self._failed = False, True
            self._retry_at = time.monotonic() + self.retry_s

    def retry_due(self) -> bool:
        """Whether to call the database now: it is up, or was left alone enough."""
        return self.ok or time.monotonic() >= self._retry_at
