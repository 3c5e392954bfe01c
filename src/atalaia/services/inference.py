"""Serving: warm loading, the registry change feed, and the fallback chain.

memory (the model table) → Redis (the shared L2 cache, for a series missing from
memory) → database → on-disk snapshot (at start, when the registry is
unreachable) → z-score on the series' history (low confidence) → a conservative
default (no anomaly, low confidence). Nothing on the scoring path waits for the
database or Redis while it is known to be down, nor touches them for a series in
memory.

Warm loading reads the database only (one bulk query is faster than Redis for
the whole fleet); Redis holds what was read or changed since, for misses and
for replicas that start while the database is down. Registry notices (Redis
pub/sub) reload a series at once; the database's change feed is the fallback
that catches whatever a notice missed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.cache import ModelCache
from atalaia.adapters.db.repositories import ModelStore, ReadingStore
from atalaia.core.registry import RegistryNotice
from atalaia.core.serving import ServedModel
from atalaia.services.model_table import ALGORITHMS, ModelTable, Source
from atalaia.services.prediction_stats import PredictionTally

log = structlog.get_logger()

# A series found with no model in the database is not looked up again for this long.
MISS_TTL_S = 60.0
MAX_MISSES = 100_000
# The change feed re-reads this much of the ledger's recent past, so an entry whose
# transaction committed after a later one is not missed.
FEED_LOOKBACK = timedelta(seconds=5)

_ALGORITHM_CODES = {name: code for code, name in enumerate(ALGORITHMS)}


class Predictor:
    """Owns the model table and keeps it in step with the registry."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        snapshot_path: Path,
        poll_s: float = 0.25,
        retry_s: float = 5.0,
        flush_s: float = 30.0,
        cache: ModelCache | None = None,
    ) -> None:
        self.sessions = sessions
        self.cache = cache  # the shared L2 (Redis), when configured
        self.snapshot_path = snapshot_path
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.flush_s = flush_s  # how often per-series prediction counts are written
        self.table = ModelTable()
        self.loaded_from = "nothing"
        self.database_ok = False
        self._cursor = 0
        self._misses: dict[str, float] = {}
        self._retry_at = 0.0
        self._snapshot_due = False  # a load not yet written to the snapshot
        self._lock = threading.Lock()  # one writer at a time: feed, reloads, misses
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tally = PredictionTally()
        self.on_load: Callable[[str, float], None] = lambda _source, _seconds: None

    # -- loading ---------------------------------------------------------------

    def warm_load(self) -> None:
        """Load every production model; fall back to the snapshot if the DB is down."""
        try:
            self.reload_all()
        except Exception as exc:
            self._mark_down(exc)
            if self.snapshot_path.exists():
                started = time.perf_counter()
                self.table = ModelTable.load(self.snapshot_path)
                self.loaded_from = "snapshot"
                self.on_load("snapshot", time.perf_counter() - started)
                log.warning("inference.loaded_snapshot", models=len(self.table))

    def reload_all(self) -> None:
        """Read every production model and series history into a new table.

        Its snapshot is written afterwards by the change feed's thread, so that
        serving does not wait for the disk.
        """
        started = time.perf_counter()
        with self.sessions() as session:
            cursor = ModelStore(session).latest_seq()
            served = ModelStore(session).served_columns()
            ids, means, stds = ReadingStore(session).all_statistics()
        algorithm = np.fromiter(
            map(_ALGORITHM_CODES.__getitem__, served.algorithm),
            np.int8,
            len(served.algorithm),
        )
        table = ModelTable()
        table.set_history(ids, means, stds)
        table.set_model_columns(
            served.series_ids, served.version, algorithm,
            served.center, served.scale, served.threshold, Source.MEMORY,
        )  # fmt: skip
        with self._lock:
            self.table, self._cursor = table, cursor
            self._misses.clear()
            self._snapshot_due = True
        self.loaded_from = "database"
        self.database_ok = True
        seconds = time.perf_counter() - started
        self.on_load("database", seconds)
        log.info("inference.warm_loaded", models=len(table), seconds=round(seconds, 3))

    def reload_series(
        self, series_ids: Sequence[str], *, overwrite_cache: bool = True
    ) -> None:
        """Read each series' production model and history from the database now.

        The models that changed are written to the L2 cache: over what it holds
        (`overwrite_cache`, after a registry change) or only where it holds none
        (after a miss, see `ModelCache.put_many`).
        """
        # Read and apply under the lock, so that a slower reload never overwrites
        # a newer one with what it read earlier.
        with self._lock, self.sessions() as session:
            cached = self.cache is not None
            before = {s: self.table.model_of(s) for s in series_ids if cached}
            served = ModelStore(session).served_models(series_ids)
            history = list(ReadingStore(session).summaries(series_ids).values())
            cleared = sorted(set(series_ids) - {m.series_id for m in served})
            for series_id in cleared:
                self.table.clear_model(series_id)
            self.table.set_models(served, Source.MEMORY)
            self.table.set_history(
                [s.series_id for s in history],
                np.array([s.mean for s in history]),
                np.array([s.std for s in history]),
            )
        if self.cache is not None:
            changed = [m for m in served if before.get(m.series_id) != m]
            self.cache.put_many(changed, overwrite=overwrite_cache)
            if overwrite_cache:
                self.cache.forget([s for s in cleared if before.get(s) is not None])

    def apply_notice(self, notice: RegistryNotice) -> None:
        """Serve what a registry notice announces, at once: from the L2 cache when
        it holds the announced version, else from the database."""
        if notice.stage == "production" and self._from_cache(
            [notice.series_id], version=notice.version
        ):
            return
        if self.database_ok:
            try:
                self.reload_series([notice.series_id])
            except Exception as exc:
                self._mark_down(exc)

    def save_snapshot(self) -> None:
        """Write the table to disk, atomically: the fallback at the next start."""
        with self._lock:  # no reload writes rows while they are copied
            self._snapshot_due = False
            try:
                self.table.save(self.snapshot_path)
            except OSError as exc:
                log.warning("inference.snapshot_failed", error=str(exc))

    # -- change feed -------------------------------------------------------------

    def start_following(self) -> None:
        """Follow the change feed, and write prediction counts, in two threads."""
        self._threads = [
            threading.Thread(target=self._follow, name="atalaia-feed", daemon=True),
            threading.Thread(
                target=self._flush_counts, name="atalaia-counts", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        if self.database_ok:
            try:
                self.tally.flush(self.sessions)
            except Exception as exc:
                log.warning("inference.final_flush_failed", error=type(exc).__name__)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self._snapshot_due:
                self.save_snapshot()
            if not self.database_ok and time.monotonic() < self._retry_at:
                continue
            try:
                self.poll_changes()
            except Exception as exc:
                self._mark_down(exc)

    def _flush_counts(self) -> None:
        # Apart from the feed: a slow write of many series' counts never delays
        # a promotion. While the database is down the counts wait in memory.
        while not self._stop.wait(self.flush_s):
            if self.database_ok:
                try:
                    self.tally.flush(self.sessions)
                except Exception as exc:
                    self._mark_down(exc)

    def poll_changes(self) -> int:
        """Apply the registry changes since the last poll; return how many."""
        if self.loaded_from != "database":
            self.reload_all()  # first contact after starting from the snapshot
            return len(self.table)
        since = datetime.now(UTC) - FEED_LOOKBACK
        with self.sessions() as session:
            cursor, changed = ModelStore(session).changed_since(
                self._cursor, since=since
            )
        if changed:
            self.reload_series(sorted(changed))
        self._cursor = cursor
        if not self.database_ok:
            log.info("inference.database_back")
        self.database_ok = True
        return len(changed)

    def _mark_down(self, exc: Exception) -> None:
        if self.database_ok or self.loaded_from == "nothing":
            log.warning("inference.database_down", error=type(exc).__name__)
        self.database_ok = False
        self._retry_at = time.monotonic() + self.retry_s

    # -- scoring -------------------------------------------------------------------

    def due_lookups(self, unknown: Iterable[str]) -> set[str]:
        """Which of these series unknown to the table to look up (Redis, database).

        A series the table knows without a model has none: warm loading read
        every series and the change feed brings each new model. Only a series
        unknown to the table is looked up, at most once per MISS_TTL_S, and never
        while both Redis and the database are known to be down.
        """
        if not self.database_ok and not (self.cache is not None and self.cache.ready):
            return set()
        now = time.monotonic()
        if len(self._misses) > MAX_MISSES:  # ids nobody serves: forget the expired
            self._misses = {s: t for s, t in self._misses.items() if t >= now}
        return {s for s in unknown if self._misses.get(s, 0.0) < now}

    def look_up(self, series_ids: Iterable[str]) -> dict[str, Source]:
        """Read series from Redis, then the database, now (blocking).

        Returns, for each series found with a model, where it was found.
        """
        wanted = sorted(series_ids)
        found = dict.fromkeys(self._from_cache(wanted), Source.REDIS)
        rest = [s for s in wanted if s not in found]
        retry_at = time.monotonic() + MISS_TTL_S
        if rest and self.database_ok:
            try:
                self.reload_series(rest, overwrite_cache=False)
            except Exception as exc:
                self._mark_down(exc)
                retry_at = time.monotonic() + self.retry_s
            else:
                with_model = [s for s in rest if self.table.model_of(s) is not None]
                found.update(dict.fromkeys(with_model, Source.DATABASE))
        elif rest:
            retry_at = time.monotonic() + self.retry_s
        for series_id in wanted:
            self._misses[series_id] = retry_at
        return found

    def _from_cache(
        self, series_ids: Sequence[str], *, version: int | None = None
    ) -> list[str]:
        """Serve the models the L2 cache holds for these series (of `version`
        only, if given); returns the series served so."""
        if self.cache is None:
            return []
        # Under the lock: a reload from the database may not interleave.
        with self._lock:
            models: list[ServedModel] = list(self.cache.get_many(series_ids).values())
            if version is not None:
                models = [m for m in models if m.version == version]
            if models:
                self.table.set_models(models, Source.MEMORY)
        return [m.series_id for m in models]
