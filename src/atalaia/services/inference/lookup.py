"""Series a request found missing from the table, looked up in Redis, then the
database; each series at most once a minute."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from threading import Lock

from atalaia.errors import DependencyUnavailable
from atalaia.services.inference.follower import TableFollower
from atalaia.services.inference.health import DatabaseHealth
from atalaia.services.inference.l2 import L2Models
from atalaia.services.inference.served import ServedTable
from atalaia.services.model_table import Source

# A series found with no model in the database is not looked up again for this long.
MISS_TTL_S = 60.0
MAX_MISSES = 100_000


@dataclass(eq=False, kw_only=True)
class MissLookup:
    """Which unknown series to look up, and the lookups themselves.

    `_misses` (series → when it may be looked up again) is read on the event
    loop without the lock, and replaced or written by request threads under
    `_lock`; it starts afresh with each new table (`_generation`).
    """

    served: ServedTable
    follower: TableFollower
    l2: L2Models
    health: DatabaseHealth
    _misses: dict[str, float] = field(default_factory=dict, init=False)
    _generation: int = field(default=0, init=False)  # of no table: reset at once
    _lock: Lock = field(default_factory=Lock, init=False)

    def due(self, unknown: Iterable[str]) -> set[str]:
        """Which of these series unknown to the table to look up (Redis, database).

        A series the table knows without a model has none: warm loading read
        every series and the change feed brings each new model. Only a series
        unknown to the table is looked up, at most once per MISS_TTL_S, and never
        while both Redis and the database are known to be down.
        """
        if not self.health.ok and not self.l2.ready:
            return set()
        now = time.monotonic()
        misses = self._misses
        if len(misses) > MAX_MISSES or self._generation != self.served.table.generation:
            with self._lock:
                misses = self._pruned(now)
        return {s for s in unknown if misses.get(s, 0.0) < now}

    def look_up(self, series_ids: Iterable[str]) -> dict[str, Source]:
        """Read series from Redis, then the database, now (blocking).

        Returns, for each series found with a model, where it was found.
        """
        wanted = sorted(series_ids)
        found = dict.fromkeys(self.l2.serve(wanted), Source.REDIS)
        rest = [s for s in wanted if s not in found]
        retry_at = time.monotonic() + MISS_TTL_S
        if rest and self.health.ok:
            try:
                self.follower.reload_series(rest, overwrite_cache=False)
            except DependencyUnavailable as exc:
                self.health.down(exc)
                retry_at = time.monotonic() + self.health.retry_s
            else:
                table = self.served.table
                with_model = [s for s in rest if table.model_of(s) is not None]
                found.update(dict.fromkeys(with_model, Source.DATABASE))
        elif rest:
            retry_at = time.monotonic() + self.health.retry_s
        with self._lock:
            misses = self._pruned(time.monotonic())
            for series_id in wanted:
                misses[series_id] = retry_at
        return found

    def _pruned(self, now: float) -> dict[str, float]:
        """The misses to go on with (under `_lock`): none for a new table, and
        only those not yet expired past MAX_MISSES (ids nobody serves)."""
        generation = self.served.table.generation
        if self._generation != generation:
            self._misses, self._generation = {}, generation
        elif len(self._misses) > MAX_MISSES:
            self._misses = {s: t for s, t in self._misses.items() if t >= now}
        return self._misses
