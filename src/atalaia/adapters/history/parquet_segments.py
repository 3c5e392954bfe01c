"""Cold history as Parquet segments: a period's readings sorted by (series
key, timestamp), written once, read a series at a time.

A period's segment is one file or more, each of a range of series keys (at
most `SEGMENT_ROWS` readings: a big fleet's day is many files, each footer
small). Row groups are small (`ROW_GROUP_ROWS`) and hold the keys in order,
so a series' readings sit in one row group or a few neighbours, found from
the footer's key statistics (kept in memory per file: segments never
change) without reading anything else. Timestamps and values are
float64 as stored in the database, with byte-stream-split encoding and zstd.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from atalaia.core.series import FloatArray, Readings

IntArray = npt.NDArray[np.int64]
ROW_GROUP_ROWS = 32_768
SEGMENT_ROWS = 8_388_608  # readings a file, at most: 256 row groups
SCHEMA = pa.schema(
    [("series_key", pa.int64()), ("ts", pa.float64()), ("value", pa.float64())]
)
Rows = tuple[IntArray, FloatArray, FloatArray]  # series keys, timestamps, values


@dataclass(frozen=True, slots=True)
class Written:
    """A segment file: its readings, size and the series keys it spans."""

    path: Path
    rows: int
    bytes: int
    first_key: int
    last_key: int


class _SegmentFile:
    """One file being written: a temporary name until `close` renames it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.writer = pq.ParquetWriter(
            self.partial,
            SCHEMA,
            compression="zstd",
            use_dictionary=["series_key"],
            use_byte_stream_split=["ts", "value"],
            write_statistics=["series_key", "ts"],
        )
        self.rows = 0
        self.first_key = self.last_key = 0

    def write(self, keys: IntArray, ts: FloatArray, values: FloatArray) -> None:
        table = pa.Table.from_arrays(
            [pa.array(keys), pa.array(ts), pa.array(values)], schema=SCHEMA
        )
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        if not self.rows:
            self.first_key = int(keys[0])
        self.last_key = int(keys[-1])
        self.rows += keys.size

    def close(self) -> Written:
        self.writer.close()
        with open(self.partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(self.partial, self.path)
        size = self.path.stat().st_size
        return Written(self.path, self.rows, size, self.first_key, self.last_key)

    def discard(self) -> None:
        self.writer.close()
        self.partial.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def write_segments(
    folder: Path, stem: str, chunks: Iterable[Rows], *, max_rows: int = SEGMENT_ROWS
) -> list[Written]:
    """Write readings sorted by (series key, ts), chunk after chunk, as Parquet
    files `stem-0000.parquet`, … of at most `max_rows` each (a range of series
    keys each: a series is read from one file, or two at a boundary); none
    for no readings. A failure leaves no file behind."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[_SegmentFile] = []
    done: list[Written] = []
    try:
        for keys, ts, values in chunks:
            at = 0
            while at < keys.size:
                if not files or files[-1].rows >= max_rows:
                    if files:
                        done.append(files[-1].close())
                    name = f"{stem}-{len(files):04d}.parquet"
                    files.append(_SegmentFile(folder / name))
                take = min(keys.size - at, max_rows - files[-1].rows)
                part = slice(at, at + take)
                files[-1].write(keys[part], ts[part], values[part])
                at += take
        if files:
            done.append(files[-1].close())
    except BaseException:
        for file in files:
            file.discard()
        raise
    return done


@dataclass(frozen=True, slots=True)
class _Footer:
    metadata: pq.FileMetaData
    first_keys: IntArray  # each row group's smallest series key
    last_keys: IntArray  # and its largest


@lru_cache(maxsize=1024)  # a footer of 256 row groups: ~150 KB
def _footer(path: str) -> _Footer:
    metadata = pq.read_metadata(path)
    column = metadata.schema.names.index("series_key")
    stats = [metadata.row_group(i).column(column).statistics for i in
             range(metadata.num_row_groups)]  # fmt: skip
    first = np.array([s.min for s in stats], np.int64)
    last = np.array([s.max for s in stats], np.int64)
    return _Footer(metadata, first, last)


def read_series(
    path: str, keys: IntArray, *, start: float = -np.inf, end: float = np.inf
) -> dict[int, Readings]:
    """The readings with start ≤ ts < end in a segment of each series of
    `keys` (sorted, unique) that has some there, oldest first."""
    footer = _footer(path)
    below = np.searchsorted(keys, footer.first_keys, "left")
    upto = np.searchsorted(keys, footer.last_keys, "right")
    groups = np.flatnonzero(upto > below)  # row groups holding one of the keys
    if not groups.size:
        return {}
    table = pq.ParquetFile(path, metadata=footer.metadata).read_row_groups(
        groups.tolist(), columns=["series_key", "ts", "value"]
    )
    found = table.column(0).to_numpy()
    ts = table.column(1).to_numpy()
    values = table.column(2).to_numpy()
    mine = np.isin(found, keys) & (ts >= start) & (ts < end)
    found, ts, values = found[mine], ts[mine], values[mine]
    present = np.unique(found)  # still in (key, ts) order: split at the keys
    bounds = np.searchsorted(found, present, "left").tolist() + [found.size]
    return {
        int(key): Readings(ts[a:b], values[a:b])
        for key, a, b in zip(present.tolist(), bounds, bounds[1:], strict=False)
    }
