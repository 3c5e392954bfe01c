"""PostgreSQL's binary formats for readings: COPY tuples in, float8 arrays out.

numpy writes and reads them whole, without one Python object per reading.
"""

from __future__ import annotations

import numpy as np

from atalaia.core.series import FloatArray

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


def float8_array(data: bytes | None) -> FloatArray:
    """A one-dimensional float8[] without NULLs, as `array_send` wrote it.

    >>> float8_array(None).size
    0
    """
    if data is None or len(data) <= _ARRAY_HEADER:  # NULL, or an empty array
        return np.empty(0, np.float64)
    items = np.frombuffer(data, _ARRAY_ITEM, offset=_ARRAY_HEADER)
    return items["value"].astype(np.float64)
