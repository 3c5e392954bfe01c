"""Cold history as Parquet segments: a period's readings sorted by (series
key, timestamp), written once, read a series at a time.

A segment's row groups are small (`ROW_GROUP_ROWS`) and hold the series keys
in order, so a series' readings sit in one row group or a few neighbours,
found from the footer's key statistics (kept in memory per file: segments
never change) without reading anything else. Timestamps and values are
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
SCHEMA = pa.schema(
    [("series_key", pa.int64()), ("ts", pa.float64()), ("value", pa.float64())]
)
Rows = tuple[IntArray, FloatArray, FloatArray]  # series keys, timestamps, values


@dataclass(frozen=True, slots=True)
class Written:
    rows: int
    bytes: int


def write_segment(path: Path, chunks: Iterable[Rows]) -> Written:
    """Write readings sorted by (series key, ts), chunk after chunk, as one
    Parquet file at `path`: whole or not at all (a temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    rows = 0
    with pq.ParquetWriter(
        partial,
        SCHEMA,
        compression="zstd",
        use_dictionary=["series_key"],
        use_byte_stream_split=["ts", "value"],
        write_statistics=["series_key", "ts"],
    ) as writer:
        for keys, ts, values in chunks:
            table = pa.Table.from_arrays(
                [pa.array(keys), pa.array(ts), pa.array(values)], schema=SCHEMA
            )
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            rows += len(keys)
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, path)
    return Written(rows, path.stat().st_size)


@dataclass(frozen=True, slots=True)
class _Footer:
    metadata: pq.FileMetaData
    first_keys: IntArray  # each row group's smallest series key
    last_keys: IntArray  # and its largest


@lru_cache(maxsize=8192)
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
