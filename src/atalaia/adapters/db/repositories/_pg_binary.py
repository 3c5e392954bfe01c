"""PostgreSQL's binary formats for readings: COPY tuples and array parameters
in, float8 arrays out.

numpy writes and reads them whole, without one Python object per reading.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from psycopg.adapt import AdaptersMap, Dumper
from psycopg.pq import Format

from atalaia.core.series import FloatArray

IntArray = npt.NDArray[np.int64]

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
COPY_TRAILER = b"\xff\xff"
_ARRAY_HEADER = 20  # ndim, has-nulls flag, element type, length, lower bound
_ARRAY_ITEM = np.dtype([("size", ">i4"), ("value", ">f8")])

# A reading as a binary COPY tuple: the field count, then each field's size and
# big-endian value.
_TUPLE = np.dtype(
    [
        ("fields", ">i2"),
        ("key_size", ">i4"),
        ("key", ">i8"),
        ("ts_size", ">i4"),
        ("ts", ">f8"),
        ("value_size", ">i4"),
        ("value", ">f8"),
    ]
)


def copy_tuples(series_key: int, ts: FloatArray, values: FloatArray) -> bytes:
    """Binary COPY tuples (series_key, ts, value) of one series' readings.

    >>> data = copy_tuples(7, np.array([1.0]), np.array([2.0]))
    >>> data[:14], len(data)
    (b'\\x00\\x03\\x00\\x00\\x00\\x08\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x07', 38)
    """
    rows = np.empty(ts.size, _TUPLE)
    rows["fields"] = 3
    rows["key_size"] = 8
    rows["key"] = series_key
    rows["ts_size"] = rows["value_size"] = 8
    rows["ts"] = ts
    rows["value"] = values
    return rows.tobytes()


def parse_tuples(
    data: bytes | memoryview,
) -> tuple[IntArray, FloatArray, FloatArray, int]:
    """The whole (series_key, ts, value) tuples at the start of a binary COPY
    stream's body, and how many bytes they took (the rest waits for more).

    >>> keys, ts, values, used = parse_tuples(copy_tuples(7, np.array([1.0]),
    ...                                                   np.array([2.0])) + b"\\xff")
    >>> keys.tolist(), ts.tolist(), values.tolist(), used
    ([7], [1.0], [2.0], 38)
    """
    count = len(data) // _TUPLE.itemsize
    rows = np.frombuffer(data, _TUPLE, count=count)
    return (
        rows["key"].astype(np.int64),
        rows["ts"].astype(np.float64),
        rows["value"].astype(np.float64),
        count * _TUPLE.itemsize,
    )


def float8_array(data: bytes | None) -> FloatArray:
    """A one-dimensional float8[] without NULLs, as `array_send` wrote it.

    >>> float8_array(None).size
    0
    """
    if data is None or len(data) <= _ARRAY_HEADER:  # NULL, or an empty array
        return np.empty(0, np.float64)
    items = np.frombuffer(data, _ARRAY_ITEM, offset=_ARRAY_HEADER)
    return items["value"].astype(np.float64)


class Float8Array:
    """float64 values sent as one binary float8[] parameter (`use_arrays`)."""

    __slots__ = ("values",)

    def __init__(self, values: npt.NDArray[np.float64]) -> None:
        self.values = values


class Int8Array:
    """int64 values sent as one binary int8[] parameter (`use_arrays`)."""

    __slots__ = ("values",)

    def __init__(self, values: npt.NDArray[np.int64]) -> None:
        self.values = values


def _array_bytes(values: np.ndarray, element_oid: int, code: str) -> bytes:
    """A one-dimensional array without NULLs, as `array_recv` reads it."""
    header = np.array([1, 0, element_oid, values.size, 1], dtype=">i4")
    items = np.empty(values.size, [("size", ">i4"), ("value", code)])
    items["size"] = 8
    items["value"] = values
    return header.tobytes() + items.tobytes()


class _Float8ArrayDumper(Dumper):
    format = Format.BINARY
    oid = 1022  # float8[]

    def dump(self, obj: Float8Array) -> bytes:
        return _array_bytes(obj.values, 701, ">f8")


class _Int8ArrayDumper(Dumper):
    format = Format.BINARY
    oid = 1016  # int8[]

    def dump(self, obj: Int8Array) -> bytes:
        return _array_bytes(obj.values, 20, ">i8")


def use_arrays(adapters: AdaptersMap) -> None:
    """Let a cursor send Float8Array and Int8Array parameters (as `%b`)."""
    adapters.register_dumper(Float8Array, _Float8ArrayDumper)
    adapters.register_dumper(Int8Array, _Int8ArrayDumper)
