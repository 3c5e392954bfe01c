"""Parquet segments: files of a key range each, whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from atalaia.adapters.history.parquet_segments import Rows, read_series, write_segments


def rows(keys: range, per_key: int) -> Rows:
    k = np.repeat(np.array(keys, np.int64), per_key)
    ts = np.tile(np.arange(per_key, dtype=np.float64), len(keys))
    return k, ts, k * 1000.0 + ts


def test_files_split_at_the_row_limit_and_each_series_reads_back_whole(
    tmp_path: Path,
) -> None:
    chunks = [rows(range(1, 4), 300), rows(range(4, 8), 300)]  # 2,100 readings
    written = write_segments(tmp_path, "day", chunks, max_rows=1_000)

    assert [w.rows for w in written] == [1_000, 1_000, 100]
    assert [(w.first_key, w.last_key) for w in written] == [(1, 4), (4, 7), (7, 7)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "day-0000.parquet", "day-0001.parquet", "day-0002.parquet",
    ]  # fmt: skip
    for key in range(1, 8):
        parts = [
            read_series(str(w.path), np.array([key]), start=10, end=20).get(key)
            for w in written
        ]
        ts = np.concatenate([p.timestamps for p in parts if p is not None])
        np.testing.assert_array_equal(ts, np.arange(10, 20))


def test_a_failure_while_writing_leaves_no_file(tmp_path: Path) -> None:
    def failing() -> Iterator[Rows]:
        yield rows(range(1, 4), 300)
        raise OSError("the database went away")

    with pytest.raises(OSError, match="went away"):
        write_segments(tmp_path, "day", failing(), max_rows=500)
    assert list(tmp_path.iterdir()) == []


def test_no_readings_write_no_file(tmp_path: Path) -> None:
    assert write_segments(tmp_path, "day", []) == []
    assert list(tmp_path.iterdir()) == []
