"""Series ids to table rows for a whole batch at once: hashed ids probed in numpy.

A dict lookup costs four dependent cache misses on a table of 285,000 series (the
slot, the entry, the key string, the row's int object); once a batch's ids are
spread over the table that is 0.6–0.9 µs an id, most of the time of a batch of
1,000 readings of distinct series. Here a batch's ids are hashed together (their
code points times random odd weights, summed twice into two 64-bit hashes) and
looked up in an open-addressing table of row numbers, so that the cache misses
of the whole batch overlap: 735 → 1,090 batches of 1,000 readings a second over
HTTP (bench/RESULTS.md).

An id matches a row when both hashes do: a false match between two distinct ids
has a chance of about 2⁻¹²⁸, and the weights are drawn per process, so an id
cannot be crafted to collide. Batches that the hashes cannot tell apart from
other ids (a NUL character, which numpy's strings drop at the end of an id) or
that hold ids longer than any id the table can hold are not looked up here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from atalaia.core.series import MAX_SERIES_ID_LENGTH

Hashes = npt.NDArray[np.uint64]  # (2, ids): each id's two hashes in a column
Rows = npt.NDArray[np.int64]

_EMPTY = 0  # row 0 is never stored: it stands for unknown series
_MIN_SLOTS = 1024
_CHUNK = 8192  # ids hashed at a time: their code points stay in the CPU's cache
# Odd, drawn per process.
_WEIGHTS: Hashes = np.random.default_rng().integers(
    0, 2**64, (2, MAX_SERIES_ID_LENGTH), dtype=np.uint64, endpoint=False
) | np.uint64(1)


def id_hashes(ids: Sequence[str]) -> Hashes | None:
    """Two 64-bit hashes of each id; None when some id is too long to be hashed
    or holds a NUL character."""
    if "\x00" in "".join(ids):
        return None
    parts = []
    for start in range(0, len(ids), _CHUNK):
        part = _hashes(ids[start : start + _CHUNK])
        if part is None:
            return None
        parts.append(part)
    return np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), np.uint64)


def _hashes(ids: Sequence[str]) -> Hashes | None:
    codes = np.array(ids, dtype=np.str_)
    width = codes.dtype.itemsize // 4
    if width > MAX_SERIES_ID_LENGTH:
        return None
    points = codes.view(np.uint32).reshape(len(ids), width).astype(np.uint64)
    hashes: Hashes = _WEIGHTS[:, :width] @ points.T  # wraps around modulo 2⁶⁴
    return hashes


@dataclass(frozen=True, slots=True)
class _Table:
    """Slots holding rows (0: empty), and each row's hashes."""

    slots: npt.NDArray[np.int32]
    hashes: Hashes  # by row
    rows: int  # rows held: 1 .. rows - 1

    @property
    def shift(self) -> np.uint64:
        """A slot is the top bits of the first hash (the best mixed ones)."""
        return np.uint64(64 - (self.slots.size.bit_length() - 1))

    def place(self, rows: Rows) -> None:
        """Put `rows` (whose hashes are written) in free slots, by linear probing."""
        mask = self.slots.size - 1
        slot = (self.hashes[0, rows] >> self.shift).astype(np.int64)
        while rows.size:
            free = self.slots[slot] == _EMPTY
            # Rows probing the same free slot: one write lands, the others probe on.
            self.slots[slot[free]] = rows[free]
            placed = free & (self.slots[slot] == rows)
            rows, slot = rows[~placed], (slot[~placed] + 1) & mask

    def find(self, hashes: Hashes) -> Rows:
        """The row of each hash pair, 0 where no row has it."""
        mask = self.slots.size - 1
        first, second = hashes
        found = np.zeros(first.size, np.int64)
        todo = np.arange(first.size)
        slot = (first >> self.shift).astype(np.int64)
        while todo.size:
            row = self.slots.take(slot)
            hit = (self.hashes[0].take(row) == first) & (
                self.hashes[1].take(row) == second
            )
            found[todo[hit]] = row[hit]
            on = (row != _EMPTY) & ~hit
            todo, slot = todo[on], (slot[on] + 1) & mask
            first, second = first[on], second[on]
        return found


class IdIndex:
    """Rows of series ids, added in row order; looked up a batch at a time.

    One thread adds, others look up: a lookup sees a consistent table (rows are
    only added, a row's hashes before its slot, and a bigger table is swapped in
    at once)."""

    def __init__(self) -> None:
        self._table = _Table(
            np.zeros(_MIN_SLOTS, np.int32), np.zeros((2, _MIN_SLOTS), np.uint64), 1
        )
        self._complete = True  # every id added could be hashed

    def nbytes(self) -> int:
        return self._table.slots.nbytes + self._table.hashes.nbytes

    def add(self, ids: Sequence[str], first_row: int) -> None:
        """Index `ids` as rows `first_row`, `first_row + 1`, ...: the rows after
        those added before."""
        hashes = id_hashes(ids) if self._complete else None
        if hashes is None:  # an id no batch could find: look batches up elsewhere
            self._complete = False
            return
        table = self._table
        if first_row != table.rows:
            raise ValueError(f"row {table.rows} is the next to add, not {first_row}")
        end = first_row + len(ids)
        if 2 * end > table.slots.size or end > table.hashes.shape[1]:
            table = self._grown(end)
        table.hashes[:, first_row:end] = hashes
        table = _Table(table.slots, table.hashes, end)
        table.place(np.arange(first_row, end))
        self._table = table

    def _grown(self, end: int) -> _Table:
        """A bigger table for `end` rows, holding the rows added so far."""
        old = self._table
        slots = max(_MIN_SLOTS, 1 << (2 * end - 1).bit_length())
        hashes = np.zeros((2, max(end, 2 * old.hashes.shape[1])), np.uint64)
        hashes[:, : old.rows] = old.hashes[:, : old.rows]
        table = _Table(np.zeros(slots, np.int32), hashes, old.rows)
        table.place(np.arange(1, old.rows))
        return table

    def rows_of(self, ids: Sequence[str]) -> Rows | None:
        """Each id's row, 0 for an id not added; None when some id of the batch,
        or of the index, cannot be hashed (look the batch up by other means)."""
        hashes = id_hashes(ids) if self._complete else None
        return None if hashes is None else self._table.find(hashes)
