"""What the serving path remembers of each series' stream of readings: its
newest timestamp, that reading's value and how many readings in a row had it
(`core.detectors.stuck.RunState`), and a streaming model's params and state
(`stream_models.FamilyRows`, one per family).

Every reading scored advances its series' state once per timestamp: a
reading whose timestamp is not after the newest seen is `stale`, scored
against the state without advancing it. The state lives in columns indexed by
the model table's rows, so a batch advances in a few vectorized passes. Rows
added to a table keep their state; a new table (its `generation` changes)
numbers its rows afresh, and each series' state moves to its new row. Series
the table does not know (`UNKNOWN_ROW`) keep none.

A streaming model's state starts cold (`stream_models`); the series waiting
for a rebuild are listed in `cold` and made warm by `rebuild`.

The state is the process's own. It is written to disk now and then and at
shutdown (`save`), and read back at start (`restore`): a restart forgets only
what was read since the last write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from atalaia.core.detectors.streaming import Step
from atalaia.core.detectors.stuck import Runs, RunState, advance, advance_one
from atalaia.core.ports import ServingStore
from atalaia.core.series import FloatArray, Readings
from atalaia.files import write_private_npz
from atalaia.services.inference.stream_models import (
    COLD,
    FAMILY_OF,
    IS_STREAMING,
    STREAM_CODES,
    WARM,
    FamilyRows,
    from_saved,
    reason_codes,
    saved,
)
from atalaia.services.model_table import (
    ALGORITHMS,
    UNKNOWN_ROW,
    ModelTable,
    Record,
    Scores,
    Tier,
)

log = structlog.get_logger()
IntArray = npt.NDArray[np.int64]
LAYOUT = "atalaia.streams.2"
# A streaming model's state is rebuilt from at most this many readings, the
# newest stored after its state's start: its level and window adapt within
# far fewer, its long-run figures start from its training's.
REBUILD_DEPTH = 1_000
REBUILD_CHUNK = 10_000  # cold series rebuilt a query
_REASONS = {name: reason_codes(f) for name, f in STREAM_FAMILIES.items()}
_REASON_OF = {name: tuple(codes.tolist()) for name, codes in _REASONS.items()}


class StreamsUnreadable(Exception):
    """A file of stream state this release cannot read."""


@dataclass(frozen=True, slots=True)
class Cold:
    """Series waiting for a rebuild: each one's version, and the time its
    state starts from (its readings stored after it rebuild it)."""

    ids: list[str]
    versions: list[int]
    until: list[float]


# One reading of a streaming model: its state (WARM, COLD) and, when warm,
# its score, expected value, band half-width and reason (an index into
# REASONS; -1: the band's own).
ModelAnswer = tuple[int, tuple[float, float, float, int] | None]


class SeriesStreams:
    """Each series' run state and streaming model state, by the rows of the
    table last scored with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._ids: list[str] = [""]  # the rows' series (the table's own list)
        self._state = RunState.empty(0)
        self._families: dict[int, FamilyRows] = {}  # by algorithm code
        self._cold: dict[str, None] = {}  # series waiting for a rebuild, in order
        # Calls that read readings since the start: a writer skips a state
        # that did not change since it last wrote it.
        self.calls = 0

    def one(
        self, table: ModelTable, row: int, timestamp: float, value: float
    ) -> tuple[int, bool]:
        """Advance row `row` of `table` by one reading: its run, and whether it
        was stale."""
        if row == UNKNOWN_ROW:
            return 1, False
        with self._lock:
            self.calls += 1
            return advance_one(self._state_of(table), row, timestamp, value)

    def many(
        self,
        table: ModelTable,
        rows: IntArray,
        timestamps: FloatArray,
        values: FloatArray,
    ) -> Runs:
        """Advance the rows of `table` by these readings (see `stuck.advance`);
        readings of series it does not know are fresh runs of 1."""
        known = rows != UNKNOWN_ROW
        if known.all():
            with self._lock:
                self.calls += 1
                return advance(self._state_of(table), rows, timestamps, values)
        run = np.ones(rows.size, np.int64)
        stale = np.zeros(rows.size, bool)
        at = np.flatnonzero(known)
        with self._lock:
            self.calls += 1
            runs = advance(self._state_of(table), rows[at], timestamps[at], values[at])
        run[at], stale[at] = runs.run, runs.stale
        return Runs(run, stale)

    def model_one(
        self,
        table: ModelTable,
        row: int,
        record: Record,
        reading: tuple[float, float, float, float],
    ) -> tuple[int, bool, ModelAnswer]:
        """`one` for row `row`, a streaming model's (`record`), and its score
        of the `reading` (timestamp, band centre, band half-width, value),
        advancing its state unless the reading is stale."""
        timestamp, expected, width, value = reading
        with self._lock:
            self.calls += 1
            run, stale = advance_one(self._state_of(table), row, timestamp, value)
            rows = self._families.get(record.algorithm)
            if rows is None:
                rows = self._family_of(table, record.algorithm)
            if rows.version[row] != record.version:
                self._start(table, rows, np.array([row]))
            if not rows.warm[row]:
                return run, stale, (COLD, None)
            score, expected, half, cause = rows.advance_one(
                row, timestamp, expected, width, value, stale=stale
            )
        reason = _REASON_OF[rows.family.name][cause]
        return run, stale, (WARM, (score, expected, half, reason))

    def models_many(
        self,
        scores: Scores,
        timestamps: FloatArray,
        values: FloatArray,
        stale: npt.NDArray[np.bool_],
    ) -> None:
        """Score the readings of streaming models among `scores`, in place
        (their `state` set), advancing each series' state by its fresh ones in
        time order."""
        at = np.flatnonzero(
            IS_STREAMING[scores.algorithm] & (scores.tier == Tier.MODEL)
        )
        if not at.size:
            return
        scores.state = np.zeros(scores.rows.size, np.int8)
        table = scores.table
        with self._lock:
            for code in np.unique(scores.algorithm[at]).tolist():
                mine = at[scores.algorithm[at] == code]
                rows = self._family_of(table, code)
                self._score_family(rows, scores, mine, timestamps, values, stale)

    def _score_family(
        self,
        rows: FamilyRows,
        scores: Scores,
        mine: npt.NDArray[np.intp],
        timestamps: FloatArray,
        values: FloatArray,
        stale: npt.NDArray[np.bool_],
    ) -> None:
        table_rows = scores.rows[mine]
        new = np.unique(table_rows[rows.version[table_rows] != scores.version[mine]])
        if new.size:
            self._start(scores.table, rows, new)
        warm = rows.warm[table_rows]
        assert scores.state is not None
        scores.state[mine] = np.where(warm, WARM, COLD)
        ready = mine[warm]
        args = (scores, timestamps, values)
        fresh = ready[~stale[ready]]
        for part in _rounds(scores.rows[fresh], timestamps[fresh]):
            _answer(rows, rows.advance, fresh[part], *args)
        old = ready[stale[ready]]
        if old.size:
            _answer(rows, rows.peek, old, *args)

    def cold(self, table: ModelTable, limit: int) -> Cold:
        """Up to `limit` series waiting for a rebuild (still cold)."""
        with self._lock:
            self._state_of(table)
            cold = Cold([], [], [])
            for series_id in list(self._cold):
                row = table.index.get(series_id, UNKNOWN_ROW)
                rows = self._families.get(int(table.cols.algorithm[row]))
                if not row or rows is None or rows.warm[row] or not rows.version[row]:
                    del self._cold[series_id]
                    continue
                cold.ids.append(series_id)
                cold.versions.append(rows.version.item(row))
                cold.until.append(rows.until.item(row))
                if len(cold.ids) == limit:
                    break
        return cold

    def behind(self, table: ModelTable, series_ids: list[str]) -> tuple[Cold, Cold]:
        """Of these series, the streaming models whose state is cold (started
        if they had none of their version) and those warm, with the time after
        which stored readings are new to their state: its start for a cold
        one, its newest reading for a warm one."""
        rows = table.rows_of(series_ids)
        codes = table.cols.algorithm[rows]
        streaming = IS_STREAMING[codes] & (table.cols.version[rows] > 0)
        cold, warm = Cold([], [], []), Cold([], [], [])
        if not streaming.any():
            return cold, warm
        with self._lock:
            state = self._state_of(table)
            for i in np.flatnonzero(streaming).tolist():
                row, version = int(rows[i]), table.cols.version.item(rows[i])
                family = self._family_of(table, int(codes[i]))
                if family.version[row] != version:
                    self._start(table, family, np.array([row]))
                if not family.version[row]:
                    continue  # no packed model: its band answers
                into = warm if family.warm[row] else cold
                into.ids.append(series_ids[i])
                into.versions.append(version)
                newest = state.timestamp.item(row)
                into.until.append(
                    newest if family.warm[row] else family.until.item(row)
                )
        return cold, warm

    def rebuild(
        self, table: ModelTable, cold: Cold, found: Mapping[str, Readings]
    ) -> int:
        """Advance the `cold` series by their readings `found` (stored after
        their state's start, oldest first) and make them warm, those still of
        the same version and cold; how many readings advanced."""
        ids = [s for s in cold.ids if s in found]
        series = [s for s in ids for _ in range(len(found[s]))]
        rows = table.rows_of(series)
        timestamps = np.concatenate([found[s].timestamps for s in ids] or [np.empty(0)])
        values = np.concatenate([found[s].values for s in ids] or [np.empty(0)])
        scores = table.score(rows, timestamps, values)
        with self._lock:
            self._state_of(table)
            targets = table.rows_of(cold.ids)
            versions = np.array(cold.versions, np.int64)
            advanced = 0
            for family in self._families.values():
                still = (family.version[targets] == versions) & ~family.warm[targets]
                if not still.any():
                    continue
                mine = np.flatnonzero(np.isin(rows, targets[still]))
                for part in _rounds(rows[mine], timestamps[mine]):
                    at = mine[part]
                    family.advance(rows[at], timestamps[at], scores.expected[at],
                                   scores.width[at], values[at])  # fmt: skip
                advanced += mine.size
                family.warm[targets[still]] = True
                for series_id in np.array(cold.ids)[still].tolist():
                    self._cold.pop(series_id, None)
        return advanced

    def start_all(self, table: ModelTable) -> int:
        """Give every streaming model of `table` without state its version's
        (cold, to rebuild); how many."""
        n = len(table.ids)
        algorithm = table.cols.algorithm[:n]
        version = table.cols.version[:n]
        started = 0
        with self._lock:
            self._state_of(table)
            for code in STREAM_CODES.tolist():
                of = np.flatnonzero((algorithm == code) & (version > 0))
                if not of.size:
                    continue
                rows = self._family_of(table, code)
                new = of[rows.version[of] != version[of]]
                if new.size:
                    self._start(table, rows, new)
                    started += new.size
        return started

    def warm(self, table: ModelTable, rows: IntArray) -> IntArray:
        """Those of `rows` (streaming models') whose state is warm, for the
        version `table` serves."""
        codes = table.cols.algorithm[rows]
        with self._lock:
            self._state_of(table)
            warm = np.zeros(rows.size, bool)
            for code, family in self._families.items():
                mine = codes == code
                at = rows[mine]
                version = table.cols.version[at]
                warm[mine] = family.warm[at] & (family.version[at] == version)
        return rows[warm]

    def newest(self, table: ModelTable, rows: IntArray) -> FloatArray:
        """Each row's newest timestamp seen (-inf: none)."""
        with self._lock:
            return self._state_of(table).timestamp[rows]

    def nbytes(self) -> int:
        """The bytes of the state in memory."""
        with self._lock:
            columns = [getattr(self._state, f) for f in ("timestamp", "value", "run")]
            for rows in self._families.values():
                columns += [rows.version, rows.until, rows.warm]
                columns += [rows.packed_params, rows.packed_state]
            return sum(c.nbytes for c in columns)

    def save(self, path: Path) -> int:
        """Write the state of every series seen to `path`, atomically; how many."""
        with self._lock:  # copies only: scoring waits a few ms at most
            n = min(len(self._ids), self._state.run.size)
            held = self._state.run[:n] > 0
            for rows in self._families.values():
                held |= rows.version[:n] > 0
            seen = np.flatnonzero(held)
            columns: dict[str, Any] = {
                name: getattr(self._state, name)[seen]
                for name in ("timestamp", "value", "run")
            }
            for rows in self._families.values():
                columns |= saved(rows.moved(seen.size, np.arange(seen.size), seen))
            ids = self._ids  # a table's ids are only ever appended to
        text = "\n".join(map(ids.__getitem__, seen.tolist())).encode()
        write_private_npz(
            path, layout=np.array(LAYOUT), ids=np.frombuffer(text, np.uint8),
            families=np.array(sorted(f.family.name for f in self._families.values())),
            **columns,
        )  # fmt: skip
        return int(seen.size)

    def restore(self, path: Path) -> int:
        """Take the state written at `path` (it moves to the rows of the next
        table scored with); how many series. StreamsUnreadable if it is not a
        file of this layout."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["layout"]) != LAYOUT:
                    raise StreamsUnreadable(f"{path} is not a {LAYOUT}")
                text = data["ids"].tobytes().decode()
                ids = text.split("\n") if text else []
                state = RunState.empty(len(ids) + 1)
                state.timestamp[1:], state.value[1:], state.run[1:] = (
                    data[name] for name in ("timestamp", "value", "run")
                )
                to = np.arange(1, len(ids) + 1)
                families = {
                    ALGORITHMS.index(name): from_saved(
                        STREAM_FAMILIES[name], data, to, len(ids) + 1
                    )
                    for name in data["families"].tolist()
                }
        except (OSError, KeyError, ValueError) as exc:
            raise StreamsUnreadable(str(exc)) from exc
        with self._lock:
            # A generation no table has: the next one scored takes it by id.
            self._state, self._ids, self._generation = state, ["", *ids], -1
            self._families = families
        return len(ids)

    def _family_of(self, table: ModelTable, code: int) -> FamilyRows:
        """The rows of the family of algorithm `code` (the caller holds the
        lock), made on first use."""
        self._state_of(table)
        rows = self._families.get(code)
        if rows is None:
            family = FAMILY_OF[code]
            assert family is not None
            rows = self._families[code] = FamilyRows.empty(family, self._state.run.size)
        return rows

    def _start(self, table: ModelTable, rows: FamilyRows, at: IntArray) -> None:
        """Give rows `at` (distinct) their versions' state, cold."""
        packed = [table.stream_of(row) for row in at.tolist()]
        ok = np.array([p is not None for p in packed], bool)
        if not ok.all():  # a version without a packed model: its band answers
            at = at[ok]
        if not at.size:
            return
        rows.start(at, table.cols.version[at], [p for p in packed if p is not None])
        self._cold.update(dict.fromkeys(table.ids[row] for row in at.tolist()))

    def _state_of(self, table: ModelTable) -> RunState:
        """The state by `table`'s rows (the caller holds the lock): moved to a
        new table's rows, grown with the table."""
        size = len(table.ids)
        state = self._state
        if table.generation != self._generation:
            state = self._moved(table, max(size, 1024))
        elif size > state.run.size:
            size += size // 8
            state = _grown(state, size)
            self._families = {
                code: rows.moved(size, np.arange(rows.size), np.arange(rows.size))
                for code, rows in self._families.items()
            }
        self._state, self._ids, self._generation = state, table.ids, table.generation
        return state

    def _moved(self, table: ModelTable, size: int) -> RunState:
        """The state of the series still in `table`, at their rows there."""
        moved = RunState.empty(size)
        old = self._state
        kept = min(len(self._ids), old.run.size)
        to = at = np.empty(0, np.int64)
        if kept > 1:
            rows = table.rows_of(self._ids[1:kept])
            found = np.flatnonzero(rows != UNKNOWN_ROW)
            to, at = rows[found], found + 1
            moved.timestamp[to] = old.timestamp[at]
            moved.value[to] = old.value[at]
            moved.run[to] = old.run[at]
        self._families = {
            code: rows.moved(size, to, at) for code, rows in self._families.items()
        }
        return moved


def rebuild_cold(
    streams: SeriesStreams, table: Callable[[], ModelTable], store: ServingStore
) -> int:
    """Rebuild every cold streaming model of the `table` served, REBUILD_CHUNK
    series a query, from the newest REBUILD_DEPTH readings each stored since
    its state's start (its version's last training reading); how many series."""
    rebuilt = 0
    while True:
        served = table()
        cold = streams.cold(served, REBUILD_CHUNK)
        if not cold.ids:
            return rebuilt
        depth = np.full(len(cold.ids), REBUILD_DEPTH)
        found = store.newest_readings(cold.ids, np.array(cold.until), depth)
        readings = streams.rebuild(served, cold, found)
        rebuilt += len(cold.ids)
        log.info("inference.streams_rebuilt", series=len(cold.ids), readings=readings)


def _rounds(rows: IntArray, timestamps: FloatArray) -> list[npt.NDArray[np.intp]]:
    """Readings of `rows` in rounds of distinct rows, each row's in time order:
    the indexes of each round's readings."""
    if np.unique(rows).size == rows.size:
        return [np.arange(rows.size)]
    order = np.lexsort((timestamps, rows))
    ordered = rows[order]
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    index = np.arange(rows.size)
    rank = index - np.maximum.accumulate(np.where(first, index, 0))
    return [order[rank == k] for k in range(int(rank.max()) + 1)]


def _answer(
    rows: FamilyRows,
    how: Any,
    at: npt.NDArray[np.intp],
    scores: Scores,
    timestamps: FloatArray,
    values: FloatArray,
) -> None:
    """Score readings `at` by `how` (advance or peek) and set their answers."""
    step: Step = how(scores.rows[at], timestamps[at], scores.expected[at],
                     scores.width[at], values[at])  # fmt: skip
    scores.score[at] = step.score
    scores.anomaly[at] = step.score > 1.0
    scores.expected[at], scores.width[at] = step.expected, step.half_width
    reason = _REASONS[rows.family.name][step.cause]
    own = reason >= 0
    scores.reason[at[own]] = reason[own]


def _grown(state: RunState, size: int) -> RunState:
    bigger = RunState.empty(size)
    n = state.run.size
    bigger.timestamp[:n], bigger.value[:n], bigger.run[:n] = (
        state.timestamp, state.value, state.run
    )  # fmt: skip
    return bigger
