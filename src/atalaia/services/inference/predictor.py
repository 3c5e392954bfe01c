"""The predictor: the served table and the parts that keep it, behind one face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import structlog

from atalaia.core.ports import ServingStore, SharedModelCache
from atalaia.errors import ConcurrentChange, DependencyUnavailable
from atalaia.services.inference.background import BackgroundThreads
from atalaia.services.inference.candidates import Candidates
from atalaia.services.inference.data_plane import score_batch
from atalaia.services.inference.follower import OnLoad, TableFollower
from atalaia.services.inference.health import DatabaseHealth
from atalaia.services.inference.heavy import HeavyModels
from atalaia.services.inference.l2 import L2Models
from atalaia.services.inference.lookup import MissLookup
from atalaia.services.inference.sensors import SensorModels
from atalaia.services.inference.served import LoadState, ServedTable
from atalaia.services.inference.signals import IncidentSignals
from atalaia.services.inference.snapshot import Snapshot
from atalaia.services.inference.streams import (
    REBUILD_DEPTH,
    SeriesStreams,
    rebuild_cold,
)
from atalaia.services.model_table import ModelTable
from atalaia.services.prediction_stats import PredictionTally

log = structlog.get_logger()


class Predictor:
    """Owns the model table and keeps it in step with the registry.

    Who runs what: the event loop reads `table` and calls `due_lookups`;
    request threads run `look_up` and the admin reloads; the notice listener's
    thread runs `apply_notice`; the feed and counts threads are
    `BackgroundThreads`. Writes to the table hold its lock (`ServedTable`);
    `DatabaseHealth`, `MissLookup` and `PredictionTally` serialize their own.
    """

    def __init__(
        self,
        store: ServingStore,
        *,
        snapshot_path: Path,
        poll_s: float = 0.25,
        retry_s: float = 5.0,
        flush_s: float = 30.0,
        signals_s: float = 0.25,
        resolve_after: int = 10,
        incidents: bool = True,
        cache: SharedModelCache | None = None,
        heavy: HeavyModels | None = None,
    ) -> None:
        self.store = store
        # Heavy models (forests): none without an artifact store to read them.
        self.heavy = heavy or HeavyModels(load=None, budget_bytes=0)
        self.streams = SeriesStreams()
        # The candidates' forests apart: each keeps its series' recent readings.
        self.candidates = Candidates(
            HeavyModels(load=self.heavy.load, budget_bytes=self.heavy.budget_bytes)
        )
        self.snapshot_path = snapshot_path
        self.served = served = ServedTable()
        self.health = health = DatabaseHealth(retry_s)
        self.sensors = SensorModels()
        self.snapshot = Snapshot(served, self.sensors, self.streams, snapshot_path)
        l2 = L2Models(served, cache)
        self.follower = TableFollower(
            store=store, served=served, sensors=self.sensors, health=health, l2=l2,
            snapshot=self.snapshot,
            on_load=lambda source, seconds: self.on_load(source, seconds),
            candidates=self.candidates,
        )  # fmt: skip
        self.misses = MissLookup(
            served=served, follower=self.follower, l2=l2, health=health
        )
        self.tally = PredictionTally()
        self.signals = IncidentSignals(resolve_after, enabled=incidents)
        self.threads = BackgroundThreads(
            follower=self.follower, snapshot=self.snapshot, tally=self.tally,
            candidates=self.candidates, sink=store, health=health,
            rebuild=lambda: self.rebuild_streams(), signals=self.signals,
            signal_sink=store, poll_s=poll_s, flush_s=flush_s, signals_s=signals_s,
        )  # fmt: skip
        # Called with (source, seconds) after each full load (the metrics set it).
        self.on_load: OnLoad = lambda _source, _seconds: None
        # The parts' operations, under the names the routes and lifespan use.
        self.reload_all = self.follower.reload_all
        self.reload_series = self.follower.reload_series
        self.apply_notice = self.follower.apply_notice
        self.poll_changes = self.follower.poll_changes
        self.save_snapshot = self.snapshot.save
        self.due_lookups = self.misses.due
        self.look_up = self.misses.look_up
        self.start_following = self.threads.start

    def warm_load(self) -> None:
        """Load every production model (`TableFollower.warm_load`) and the
        stream state written last, caught up with the readings stored since;
        the streaming models without state start cold (`rebuild_streams`)."""
        self.follower.warm_load()
        self.snapshot.restore_streams()
        if self.loaded_from is LoadState.DATABASE:
            self._catch_up_streams()
        self.streams.start_all(self.table)

    def _catch_up_streams(self) -> None:
        """Advance the state of every guarded series (`auto`'s stuck guard) and
        streaming model whose state was read back by its readings stored after
        its newest one seen: those sent in since the state was written (this
        process down, or another replica's). At most the newest limit + 1 of
        a guarded series (enough to tell a run over it), REBUILD_DEPTH of a
        streaming model's."""
        table = self.table
        rows, depth = table.guarded()
        # The others start cold: the rebuild reads their readings.
        streaming = self.streams.warm(table, table.streaming())
        rows = np.concatenate([rows, streaming])
        depth = np.concatenate([depth + 1, np.full(streaming.size, REBUILD_DEPTH)])
        rows, first = np.unique(rows, return_index=True)
        if not rows.size:
            return
        ids = [table.ids[row] for row in rows.tolist()]
        after = self.streams.newest(table, rows)
        try:
            found = self.store.newest_readings(ids, after, depth[first])
        except DependencyUnavailable as exc:
            self.health.down(exc)
            return
        if not found:
            return
        series = [s for s, readings in found.items() for _ in range(len(readings))]
        timestamps = np.concatenate([r.timestamps for r in found.values()])
        values = np.concatenate([r.values for r in found.values()])
        score_batch(self, series, timestamps, values, fetch=False)  # advances them
        log.info("inference.streams_caught_up", series=len(found), readings=len(series))

    def rebuild_streams(self) -> int:
        """Rebuild the cold streaming models (`rebuild_cold`), production's
        and the candidates'; how many series."""
        rebuilt = rebuild_cold(self.streams, lambda: self.table, self.store)
        candidates = self.candidates
        return rebuilt + rebuild_cold(
            candidates.streams, lambda: candidates.table, self.store
        )

    @property
    def table(self) -> ModelTable:
        """The table to score with: read it once per request (it is replaced
        whole by a full load)."""
        return self.served.table

    @property
    def loaded_from(self) -> LoadState:
        return self.served.loaded_from

    @property
    def database_ok(self) -> bool:
        return self.health.ok

    def stop(self) -> None:
        """Stop the threads, then write the signals and counts still in memory."""
        self.threads.stop()
        if not self.health.ok:
            return
        try:
            self.signals.flush(self.store)
            self.tally.flush(self.store)
            self.candidates.flush(self.store)
        except (DependencyUnavailable, ConcurrentChange) as exc:
            log.warning("inference.final_flush_failed", error=exc.origin)
        except Exception:  # a bug: said, and the shutdown goes on
            log.error("inference.final_flush_crashed", exc_info=True)
