"""A figure read from the database for many answers: kept `ttl_s` seconds,
answered at once and read again after the answer (`refresh`, in the
background); read before answering only when there is none yet, or when it
is older than `max_age_s` (nobody asked for that long)."""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Kept(ABC, Generic[T]):
    """Subclasses say how to read the figure and when it was read."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_age_s: float = math.inf,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_age_s = max_age_s
        self.clock = clock
        self._kept: T | None = None
        self._reading = threading.Lock()

    @abstractmethod
    def read(self) -> T:
        """Read the figure from the database."""

    @abstractmethod
    def read_at(self, figure: T) -> float:
        """When `figure` was read, epoch seconds."""

    def current(self) -> tuple[T, bool]:
        """The figure kept (read first if there is none, or too old), and
        whether it is older than `ttl_s`: `refresh` then, after answering."""
        kept = self._kept
        if kept is None or self._age(kept) > self.max_age_s:
            with self._reading:
                kept = self._kept
                if kept is None or self._age(kept) > self.max_age_s:
                    kept = self._read()
        return kept, self._age(kept) > self.ttl_s

    def refresh(self) -> None:
        """Read the figure again, unless another call is reading it."""
        if self._reading.acquire(blocking=False):
            try:
                self._read()
            finally:
                self._reading.release()

    def _read(self) -> T:
        self._kept = self.read()
        return self._kept

    def _age(self, figure: T) -> float:
        return self.clock() - self.read_at(figure)
