"""What the serving path remembers of each series' stream of readings: its
newest timestamp, that reading's value and how many readings in a row had it
(`core.detectors.stuck.RunState`).

Every reading scored advances its series' state once per timestamp: a
reading whose timestamp is not after the newest seen is `stale`, scored
against the state without advancing it. The state lives in columns indexed by
the model table's rows, so a batch advances in a few vectorized passes. Rows
added to a table keep their state; a new table (its `generation` changes)
numbers its rows afresh, and each series' state moves to its new row. Series
the table does not know (`UNKNOWN_ROW`) keep none.

The state is the process's own. It is written to disk now and then and at
shutdown (`save`), and read back at start (`restore`): a restart forgets only
what was read since the last write.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors.stuck import Runs, RunState, advance, advance_one
from atalaia.core.series import FloatArray
from atalaia.files import write_private_npz
from atalaia.services.model_table import UNKNOWN_ROW, ModelTable

IntArray = npt.NDArray[np.int64]
LAYOUT = "atalaia.streams.1"


class StreamsUnreadable(Exception):
    """A file of stream state this release cannot read."""


class SeriesStreams:
    """Each series' run state, by the rows of the table last scored with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._ids: list[str] = [""]  # the rows' series (the table's own list)
        self._state = RunState.empty(0)
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

    def newest(self, table: ModelTable, rows: IntArray) -> FloatArray:
        """Each row's newest timestamp seen (-inf: none)."""
        with self._lock:
            return self._state_of(table).timestamp[rows]

    def save(self, path: Path) -> int:
        """Write the state of every series seen to `path`, atomically; how many."""
        with self._lock:  # copies only: scoring waits a few ms at most
            n = min(len(self._ids), self._state.run.size)
            seen = np.flatnonzero(self._state.run[:n] > 0)
            columns = {
                name: getattr(self._state, name)[seen]
                for name in ("timestamp", "value", "run")
            }
            ids = self._ids  # a table's ids are only ever appended to
        text = "\n".join(map(ids.__getitem__, seen.tolist())).encode()
        write_private_npz(
            path, layout=np.array(LAYOUT), ids=np.frombuffer(text, np.uint8), **columns
        )
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
                read = [data[name] for name in ("timestamp", "value", "run")]
        except (OSError, KeyError, ValueError) as exc:
            raise StreamsUnreadable(str(exc)) from exc
        ids = text.split("\n") if text else []
        state = RunState.empty(len(ids) + 1)
        state.timestamp[1:], state.value[1:], state.run[1:] = read
        with self._lock:
            # A generation no table has: the next one scored takes it by id.
            self._state, self._ids, self._generation = state, ["", *ids], -1
        return len(ids)

    def _state_of(self, table: ModelTable) -> RunState:
        """The state by `table`'s rows (the caller holds the lock): moved to a
        new table's rows, grown with the table."""
        size = len(table.ids)
        state = self._state
        if table.generation != self._generation:
            state = self._moved(table, max(size, 1024))
        elif size > state.run.size:
            state = _grown(state, size + size // 8)
        self._state, self._ids, self._generation = state, table.ids, table.generation
        return state

    def _moved(self, table: ModelTable, size: int) -> RunState:
        """The state of the series still in `table`, at their rows there."""
        moved = RunState.empty(size)
        old = self._state
        kept = min(len(self._ids), old.run.size)
        if kept > 1:
            rows = table.rows_of(self._ids[1:kept])
            found = np.flatnonzero(rows != UNKNOWN_ROW)
            to, at = rows[found], found + 1
            moved.timestamp[to] = old.timestamp[at]
            moved.value[to] = old.value[at]
            moved.run[to] = old.run[at]
        return moved


def _grown(state: RunState, size: int) -> RunState:
    bigger = RunState.empty(size)
    n = state.run.size
    bigger.timestamp[:n], bigger.value[:n], bigger.run[:n] = (
        state.timestamp, state.value, state.run
    )  # fmt: skip
    return bigger
