"""Heavy models (isolation forests) in memory under a byte budget, and the
recent readings their windows need.

A forest is about 1 MB (300 trees), so the fleet's do not all fit in memory:
those read most recently stay, up to `budget_bytes` in all; the least recently
used is evicted to make room, and read again from the artifact store when a
reading of its series comes (a model bigger than the whole budget is used, not
kept).

A forest scores a reading on the readings before it (its window), so each
series keeps its last `window − 1` readings, in time order, and a series read
one reading at a time is scored as the library scores its readings in a row. A
reading older than the newest kept is scored but not kept. A new version starts
with no readings kept. The readings kept are a few numbers per series, outside
the budget, and live as long as the process (they are not in the snapshot).

When a forest cannot be read (the artifact store is down, the artifact missing
or damaged), `score` answers None: the caller answers with the version's band.
Its key is then left alone for RETRY_S: readings of its series do not wait on
a store that just failed, nor log a warning each.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import structlog

from atalaia.core.detectors.forest import Forest, Verdicts
from atalaia.core.series import FloatArray

log = structlog.get_logger()

Load = Callable[[str], bytes]  # an artifact's bytes by key (ArtifactStore.get)
RETRY_S = 30.0  # after a failed read, how long a forest is not read again


@dataclass(slots=True)
class CacheCounts:
    """What the cache did since the process started, and what it holds."""

    hits: int = 0
    misses: int = 0  # reads from the artifact store
    evictions: int = 0
    failures: int = 0  # reads that failed: answered with the band
    bytes: int = 0
    models: int = 0


@dataclass(slots=True)
class _Recent:
    """A series' last readings, oldest first, for one version of its model."""

    version: int
    timestamps: FloatArray
    values: FloatArray


@dataclass
class HeavyModels:
    """Forests by artifact key (least recently used first) and each forest
    series' recent readings. `load` is None when there is no artifact store:
    every heavy model is then answered by its band."""

    load: Load | None
    budget_bytes: int
    counts: CacheCounts = field(default_factory=CacheCounts)
    _forests: OrderedDict[str, Forest] = field(default_factory=OrderedDict)
    _recent: dict[str, _Recent] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # A lock per forest being read: concurrent misses of one forest read it once.
    _reading: dict[str, threading.Lock] = field(default_factory=dict)
    _failed: dict[str, float] = field(default_factory=dict)  # key → when (monotonic)
    clock: Callable[[], float] = time.monotonic

    def resident(self, key: str) -> bool:
        """Is this forest in memory (scoring it reads nothing)?"""
        return key in self._forests

    def score(
        self,
        series_id: str,
        version: int,
        key: str,
        timestamps: FloatArray,
        values: FloatArray,
    ) -> Verdicts | None:
        """Score readings of one series (in any order: they are scored in time
        order after the readings kept); None when its forest cannot be read."""
        forest = self._forest(key)
        if forest is None:
            return None
        order = np.argsort(timestamps, kind="stable")
        kept = self._advance(series_id, version, forest.window, timestamps[order],
                             values[order])  # fmt: skip
        verdicts = forest.score(
            np.concatenate([kept.timestamps, timestamps[order]]),
            np.concatenate([kept.values, values[order]]),
        )
        back = np.empty_like(order)
        back[order] = np.arange(order.size) + kept.values.size
        return Verdicts(
            verdicts.score[back],
            verdicts.expected[back],
            verdicts.half_width[back],
            verdicts.isolated[back],
        )

    def _advance(
        self,
        series_id: str,
        version: int,
        window: int,
        timestamps: FloatArray,
        values: FloatArray,
    ) -> _Recent:
        """The readings kept before these (sorted) ones; keeps the newest."""
        empty = np.empty(0)
        with self._lock:
            before = self._recent.get(series_id)
            if before is None or before.version != version:
                before = _Recent(version, empty, empty)
            last = before.timestamps[-1] if before.timestamps.size else -np.inf
            newer = timestamps > last
            keep = window - 1
            self._recent[series_id] = _Recent(
                version,
                np.concatenate([before.timestamps, timestamps[newer]])[-keep:],
                np.concatenate([before.values, values[newer]])[-keep:],
            )
        return before

    def _forest(self, key: str) -> Forest | None:
        forest = self._resident(key)
        if forest is not None:
            return forest
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:  # outside the cache's lock: the store may be slow
            forest = self._resident(key)  # read meanwhile by another request
            if forest is None:
                forest = self._read(key)
                if forest is not None:
                    self._keep(key, forest)
        with self._lock:
            self._reading.pop(key, None)
        return forest

    def _resident(self, key: str) -> Forest | None:
        """The forest if in memory (a hit: now the most recently used)."""
        with self._lock:
            forest = self._forests.get(key)
            if forest is not None:
                self._forests.move_to_end(key)
                self.counts.hits += 1
            return forest

    def _read(self, key: str) -> Forest | None:
        if self.load is None:
            return None
        failed = self._failed.get(key)
        if failed is not None and self.clock() - failed < RETRY_S:
            return None
        with self._lock:
            self.counts.misses += 1
        try:
            forest = Forest.from_bytes(self.load(key))
        except Exception as exc:  # any failure of the store: answer with the band
            with self._lock:
                self.counts.failures += 1
                self._failed[key] = self.clock()
            log.warning("inference.heavy_model_unreadable", key=key, error=str(exc))
            return None
        self._failed.pop(key, None)
        return forest

    def _keep(self, key: str, forest: Forest) -> None:
        size = forest.nbytes
        if size > self.budget_bytes:
            return
        with self._lock:
            counts = self.counts
            while self._forests and counts.bytes + size > self.budget_bytes:
                _, evicted = self._forests.popitem(last=False)
                counts.bytes -= evicted.nbytes
                counts.evictions += 1
            self._forests[key] = forest
            counts.bytes += size
            counts.models = len(self._forests)
