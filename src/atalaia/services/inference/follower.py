"""Loading the table, and keeping it in step with the registry.

Warm loading reads the database only (one bulk query is faster than Redis for
the whole fleet), or the on-disk snapshot when the database is unavailable.
Registry notices (Redis pub/sub) reload a series at once; the database's change
feed is the fallback that catches whatever a notice missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import structlog

from atalaia.core.ports import ServingStore
from atalaia.core.registry import RegistryNotice
from atalaia.core.serving import FleetModels
from atalaia.errors import DependencyUnavailable
from atalaia.memory import return_free_memory
from atalaia.services.inference.candidates import Candidates
from atalaia.services.inference.health import DatabaseHealth
from atalaia.services.inference.l2 import L2Models
from atalaia.services.inference.sensors import SensorModels
from atalaia.services.inference.served import LoadState, ServedTable
from atalaia.services.inference.snapshot import Snapshot
from atalaia.services.model_table import ALGORITHMS, ModelTable, Source

log = structlog.get_logger()

# The change feed re-reads this much of the ledger's recent past, so an entry whose
# transaction committed after a later one is not missed.
FEED_LOOKBACK = timedelta(seconds=5)
# More changed series than this share of the table, or than RELOAD_ALL_AFTER,
# and a poll reads the whole fleet instead (a fleet operation): a full load
# reads a series ~20 times faster than reading it alone (PostgreSQL, 100,000
# models: 0.47 s for all of them, 0.95 s for 10,000 by id), and one statement
# takes a few tens of thousands of ids at most. Never below RELOAD_ALL_MIN.
# While a fleet operation runs, polls load the fleet one after the other: 285,000
# models, ~13 s of CPU over its 30 s (bench fleet-promotion); half as many
# loads spared a fifth of it and cost seconds of staleness at its end.
RELOAD_ALL_SHARE = 0.05
RELOAD_ALL_AFTER = 20_000
RELOAD_ALL_MIN = 1_000

_ALGORITHM_CODES = {name: code for code, name in enumerate(ALGORITHMS)}

OnLoad = Callable[[str, float], None]  # (source, seconds) of each full load


@dataclass(eq=False, kw_only=True)
class TableFollower:
    """Loads the served table and follows the registry: its change feed (the
    feed thread polls it) and its notices (the notice listener's thread).

    Every write to the table holds the served table's lock; so does `_cursor`,
    the ledger entry the change feed goes on from, which belongs to the table
    it was read with.
    """

    store: ServingStore
    served: ServedTable
    sensors: SensorModels
    health: DatabaseHealth
    l2: L2Models
    snapshot: Snapshot
    on_load: OnLoad
    candidates: Candidates
    _cursor: int = field(default=0, init=False)

    def warm_load(self) -> None:
        """Load every production model; from the snapshot if the DB is unavailable."""
        try:
            self.reload_all()
        except DependencyUnavailable as exc:
            self.health.down(exc)
            self._load_snapshot()

    def _load_snapshot(self) -> None:
        started = time.perf_counter()
        table = self.snapshot.read()
        if table is None:
            return
        sensors = self.snapshot.read_sensors()
        with self.served.lock:
            self.served.replace(table, LoadState.SNAPSHOT)
            self.sensors.replace_all(sensors)
        self.on_load(LoadState.SNAPSHOT, time.perf_counter() - started)
        log.warning(
            "inference.loaded_snapshot", models=len(table), sensors=len(sensors)
        )

    def reload_all(self) -> None:
        """Read every production model and series history into a new table.

        Its snapshot is written afterwards by the change feed's thread, so that
        serving does not wait for the disk.
        """
        started = time.perf_counter()
        table, fleet = self._read_fleet()
        return_free_memory()  # the rows read are gone: give their pages back
        with self.served.lock:
            self.served.replace(table, LoadState.DATABASE)
            self.sensors.replace_all(fleet.sensors)
            self.candidates.replace_all(fleet.rollouts)
            self._cursor = fleet.cursor
        self.health.up()
        seconds = time.perf_counter() - started
        self.on_load(LoadState.DATABASE, seconds)
        log.info("inference.warm_loaded", models=len(table), seconds=round(seconds, 3))

    def _read_fleet(self) -> tuple[ModelTable, FleetModels]:
        """A new table of every production model and series history, and the
        fleet read (its sensor models, rollouts and ledger cursor)."""
        fleet = self.store.load_fleet()
        models, history = fleet.models, fleet.history
        algorithm = np.fromiter(
            map(_ALGORITHM_CODES.__getitem__, models.algorithm),
            np.int8,
            len(models.algorithm),
        )
        table = ModelTable()
        table.set_history(history.series_ids, history.mean, history.std)
        table.set_model_columns(
            models.series_ids, models.version, algorithm,
            models.center, models.scale, models.threshold, Source.MEMORY,
            models.band, models.artifact, models.stuck_after, models.stream,
        )  # fmt: skip
        return table, fleet

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
        with self.served.lock:
            table = self.served.table
            before = {s: table.model_of(s) for s in series_ids if self.l2.enabled}
            found = self.store.load_series(series_ids)
            cleared = sorted(set(series_ids) - {m.series_id for m in found.models})
            for series_id in cleared:
                table.clear_model(series_id)
            table.set_models(found.models, Source.MEMORY)
            history = found.history
            table.set_history(history.series_ids, history.mean, history.std)
            self.sensors.update(series_ids, found.sensors)
            self.candidates.update(series_ids, found.rollouts)
        if self.l2.enabled:
            self.l2.record(
                [m for m in found.models if before.get(m.series_id) != m],
                [s for s in cleared if before.get(s) is not None],
                overwrite=overwrite_cache,
            )

    def apply_notice(self, notice: RegistryNotice) -> None:
        """Serve what a registry notice announces, at once: from the L2 cache when
        it holds the announced version, else from the database."""
        if notice.stage == "production" and self.l2.serve(
            [notice.series_id], version=notice.version
        ):
            return
        if self.health.ok:
            try:
                self.reload_series([notice.series_id])
            except DependencyUnavailable as exc:
                self.health.down(exc)

    def poll_changes(self) -> int:
        """Apply the registry changes since the last poll; return how many."""
        if self.served.loaded_from is not LoadState.DATABASE:
            self.reload_all()  # first contact after starting from the snapshot
            return len(self.served.table)
        with self.served.lock:
            generation, cursor = self.served.table.generation, self._cursor
        since = datetime.now(UTC) - FEED_LOOKBACK
        cursor, changed = self.store.changed_since(cursor, since=since)
        if len(changed) > self._bulk_threshold():
            self.reload_all()  # its own cursor: the next poll goes on from there
            return len(changed)
        if changed:
            self.reload_series(sorted(changed))
        with self.served.lock:
            # A full load meanwhile read the ledger at a cursor of its own: the
            # next poll goes on from there, and reads these changes again.
            if self.served.table.generation == generation:
                self._cursor = cursor
        self.health.up()
        return len(changed)

    def _bulk_threshold(self) -> float:
        """Changed series past which a full load is the faster way to them."""
        share = RELOAD_ALL_SHARE * len(self.served.table)
        return min(max(share, RELOAD_ALL_MIN), RELOAD_ALL_AFTER)
