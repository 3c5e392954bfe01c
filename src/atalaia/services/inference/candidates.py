"""The running rollouts' candidates, as inference serves them.

A rollout's candidate (a Staging version) lives in a model table of its own,
with stream state of its own: the data plane scores its readings through the
same chain as production's (`data_plane`), with no lookup (a candidate the
table lacks answers nothing). Which readings it answers: those whose draw
(`core.rollout.draw`, a hash of series and time) falls below its share. It
scores more than it answers when it must see every reading: a shadow's (it
answers none), and a streaming model's or one with a stuck guard (their state
follows the stream).

Each reading it scores adds to its rollout's counters (`core.rollout.COUNTERS`):
its answers and errors, production's verdict beside its own, and whether
scoring took longer than its gates allow; the readings production answered
add to production's. The counters are flushed to the database with the
prediction counts, where every replica's add up.

The candidates change rarely (a rollout starts, steps or ends): each change
builds the routes anew (`Routes`), swapped in whole, so a reader sees one
state; a table replaced keeps its streams' state by series id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors import forest
from atalaia.core.ports import RolloutSink
from atalaia.core.rollout import COUNTERS, series_key
from atalaia.core.serving import RolloutCounts, ServedRollout
from atalaia.errors import ConcurrentChange, DependencyUnavailable
from atalaia.services.inference.heavy import HeavyModels
from atalaia.services.inference.stream_models import IS_STREAMING
from atalaia.services.inference.streams import SeriesStreams
from atalaia.services.model_table import ALGORITHMS, UNKNOWN_ROW, ModelTable, Source

_HEAVY = ALGORITHMS.index(forest.NAME)
# Who answered a reading (`ScoredReading.role`): production, a canary's
# candidate, or an A/B test's challenger.
PRODUCTION, CANARY, CHALLENGER = 0, 1, 2
ROLES = ("production", "canary", "challenger")
_ROLE_OF = {"canary": CANARY, "ab": CHALLENGER, "shadow": CANARY}  # (shadow: none)
_AT = {name: i for i, name in enumerate(COUNTERS)}
(C_PRED, C_ERR, C_ANOM, C_SLOW, P_PRED, P_ERR, P_ANOM, PAIRED, AGREE, PAIRED_P_ANOM,
 SX, SY, SXX, SYY, SXY) = (_AT[name] for name in COUNTERS)  # fmt: skip


class Split(NamedTuple):
    """How a series' readings go between production and its candidate."""

    rollout_id: int
    row: int  # the candidate's row in the candidates' table
    role: int  # what its answers say it is (CANARY, CHALLENGER)
    share: float  # of the readings the candidate answers (a fraction)
    key: int  # the series' key (`series_key`)
    every: bool  # the candidate scores every reading
    heavy: bool  # a heavy model's (scoring may block)
    slow_ms: float  # scoring as long as this is slow (its gates' p99)


@dataclass(eq=False)
class Routes:
    """The candidates' table and splits, with per-row columns for batches and
    the counters of what they scored (one row of COUNTERS per table row)."""

    table: ModelTable
    splits: dict[str, Split]
    share: npt.NDArray[np.float64]
    key: npt.NDArray[np.uint64]
    every: npt.NDArray[np.bool_]
    heavy: npt.NDArray[np.bool_]
    role: npt.NDArray[np.int8]
    slow_ms: npt.NDArray[np.float64]
    rollout: npt.NDArray[np.int64]
    counts: npt.NDArray[np.float64]
    # Single readings' counters by row, and what `drain` took of them so far.
    single: dict[int, list[float]] = field(default_factory=dict)
    taken: dict[int, list[float]] = field(default_factory=dict)
    drained: int = 0  # times drained (since it was replaced, once it is)
    # Production's rows → these candidates' rows, for the table of a
    # generation and size (built on first use: a batch maps its rows in one
    # gather).
    _by_production: tuple[tuple[int, int], npt.NDArray[np.int64]] | None = None

    def rows_for(
        self, table: ModelTable, rows: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """The candidates' rows of production `table`'s `rows` (0: none)."""
        mapped = self._by_production
        key = (table.generation, len(table.ids))
        if mapped is None or mapped[0] != key:
            by_row = np.zeros(len(table.ids), np.int64)
            for series_id, split in self.splits.items():
                by_row[table.index.get(series_id, UNKNOWN_ROW)] = split.row
            by_row[UNKNOWN_ROW] = 0
            mapped = self._by_production = (key, by_row)
        by_row = mapped[1]
        # Rows added to the table since are series without a rollout.
        return np.where(
            rows < by_row.size, by_row[np.minimum(rows, by_row.size - 1)], 0
        )

    @classmethod
    def of(cls, rollouts: Sequence[ServedRollout]) -> Routes:
        table = ModelTable()
        table.set_models([r.model for r in rollouts], Source.MEMORY)
        size = len(table.ids)
        routes = cls(
            table, {}, np.zeros(size), np.zeros(size, np.uint64),
            np.zeros(size, bool), np.zeros(size, bool), np.zeros(size, np.int8),
            np.full(size, np.inf), np.zeros(size, np.int64),
            np.zeros((size, len(COUNTERS))),
        )  # fmt: skip
        for served in rollouts:
            series_id = served.model.series_id
            row = table.index[series_id]
            algorithm = table.cols.algorithm[row]
            stateful = bool(IS_STREAMING[algorithm]) or served.model.stuck_after > 0
            shadow = served.strategy == "shadow"
            split = Split(
                served.rollout_id, row, _ROLE_OF[served.strategy],
                0.0 if shadow else served.share, series_key(series_id),
                shadow or stateful, algorithm == _HEAVY, served.slow_ms,
            )  # fmt: skip
            routes.splits[series_id] = split
            routes.share[row], routes.key[row] = split.share, split.key
            routes.every[row], routes.heavy[row] = split.every, split.heavy
            routes.role[row] = split.role
            routes.slow_ms[row], routes.rollout[row] = split.slow_ms, split.rollout_id
        return routes


@dataclass(eq=False)
class Candidates:
    """The candidates' routes, behind the face the data plane scores with
    (`data_plane.Serving`: a table, heavy models, stream state)."""

    heavy: HeavyModels
    streams: SeriesStreams = field(default_factory=SeriesStreams)
    routes: Routes = field(default_factory=lambda: Routes.of([]))
    _served: dict[str, ServedRollout] = field(default_factory=dict)
    _retired: list[Routes] = field(default_factory=list)
    _pending: RolloutCounts | None = None  # what a failed flush kept
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def table(self) -> ModelTable:
        return self.routes.table

    def due_lookups(self, unknown: Iterable[str]) -> set[str]:  # noqa: ARG002
        return set()  # a candidate the table lacks is not looked up

    def look_up(self, series_ids: Iterable[str]) -> Mapping[str, Source]:  # noqa: ARG002
        raise AssertionError("candidates are never looked up")

    def replace_all(self, rollouts: Sequence[ServedRollout]) -> None:
        """Serve these rollouts' candidates, and only them (a full load that
        finds them as they were changes nothing: a fleet operation's polls
        load the fleet again and again)."""
        served = {r.model.series_id: r for r in rollouts}
        if served != self._served:
            self._served = served
            self._swap()

    def update(
        self, series_ids: Iterable[str], rollouts: Sequence[ServedRollout]
    ) -> None:
        """Serve these rollouts of `series_ids`; those series' others ended."""
        changed = False
        for series_id in series_ids:
            changed |= self._served.pop(series_id, None) is not None
        for served in rollouts:
            self._served[served.model.series_id] = served
        if changed or rollouts:
            self._swap()

    def _swap(self) -> None:
        routes = Routes.of(list(self._served.values()))
        with self._lock:
            self.routes.drained = 0  # drained from now on as retired
            self._retired.append(self.routes)
            self.routes = routes
        self.streams.start_all(routes.table)

    def kept(self, routes: Routes, row: int) -> list[float]:
        """The counters single readings of `routes`' row `row` add to, in
        plain floats (cheaper than numpy's for one), without a lock: `drain`
        takes what they gained since it last did, never resets them."""
        kept = routes.single.get(row)
        if kept is None:
            with self._lock:
                kept = routes.single.setdefault(row, [0.0] * len(COUNTERS))
        return kept

    def count_many(
        self,
        routes: Routes,
        rows: npt.NDArray[np.int64],
        added: npt.NDArray[np.float64],
    ) -> None:
        """Add `added` (readings × COUNTERS) to the counters of their `rows`."""
        size = routes.counts.shape[0]
        summed = np.stack(
            [np.bincount(rows, weights=added[:, i], minlength=size)
             for i in range(added.shape[1])],
            axis=1,
        )  # fmt: skip
        with self._lock:
            routes.counts += summed

    def flush(self, sink: RolloutSink) -> int:
        """Write the counters drained, with those a failed flush kept; keep
        them all for the next flush when they cannot be written (and raise)."""
        counts = self.drain()
        if self._pending is not None:
            counts = _merged(self._pending, counts)
            self._pending = None
        try:
            sink.add_rollout_counts(counts)
        except (DependencyUnavailable, ConcurrentChange):
            self._pending = counts
            raise
        return len(counts)

    def drain(self) -> RolloutCounts:
        """Every rollout's counters since the last drain (those of routes
        replaced since with them: drained twice more, for a single reading's
        addition that raced the replacement, then let go)."""
        with self._lock:
            retired = self._retired
            self._retired = [r for r in retired if r.drained < RETIRED_DRAINS]
            taken = [_take(routes) for routes in [*retired, self.routes]]
        return _summed(
            np.concatenate([ids for ids, _ in taken]),
            np.concatenate([c for _, c in taken]),
        )


RETIRED_DRAINS = 2


def _take(
    routes: Routes,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The rollout ids and counters `routes` gained since its last drain."""
    routes.drained += 1
    for row, kept in list(routes.single.items()):
        now = kept[:]  # an addition racing this copy is taken the next time
        before = routes.taken.get(row)
        routes.counts[row] += now if before is None else np.subtract(now, before)
        routes.taken[row] = now
    touched = np.flatnonzero(routes.counts[:, C_PRED] + routes.counts[:, P_PRED])
    found = routes.rollout[touched], routes.counts[touched].copy()
    routes.counts[touched] = 0
    return found


def _summed(
    ids: npt.NDArray[np.int64], counts: npt.NDArray[np.float64]
) -> RolloutCounts:
    """One row of counters per rollout id, the rows of each added up."""
    unique, inverse = np.unique(ids, return_inverse=True)
    summed = np.zeros((unique.size, len(COUNTERS)))
    np.add.at(summed, inverse, counts)
    return RolloutCounts(unique.tolist(), summed)


def _merged(first: RolloutCounts, second: RolloutCounts) -> RolloutCounts:
    return _summed(
        np.array(first.rollout_ids + second.rollout_ids, np.int64),
        np.concatenate([first.counts, second.counts]),
    )
