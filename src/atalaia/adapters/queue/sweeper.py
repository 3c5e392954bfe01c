"""A background thread that calls a sweep function every few seconds."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from atalaia.errors import ConcurrentChange, DependencyUnavailable

log = structlog.get_logger()


class Sweeper:
    """Calls `sweep` every `every_s` seconds until stopped; a sweep that finds
    the database unavailable, or loses a race, is tried again next time; any
    other failure is a bug: logged with its traceback, and tried again too."""

    def __init__(self, sweep: Callable[[], object], *, every_s: float) -> None:
        self._sweep = sweep
        self._every_s = every_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="atalaia-sweeper", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stopping.wait(self._every_s):
            try:
                self._sweep()
            except (DependencyUnavailable, ConcurrentChange) as exc:
                log.warning("sweeper.sweep_failed", error=type(exc).__name__)
            except Exception:
                log.error("sweeper.sweep_crashed", exc_info=True)
