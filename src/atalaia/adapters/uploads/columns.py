"""A chunk's arrow columns as the core's `Cells`: series ids as codes, times
as epoch seconds, values as float64, each cell that does not convert marked.

Columns convert in one vectorized cast each; only a chunk whose cast fails
(a cell that is not a number or a time) is read again cell by cell, to tell
which cells fail.

Times: numbers are epoch seconds, milliseconds, microseconds or nanoseconds,
the unit told by their magnitude on the first chunk (`core.uploads.epoch_unit`)
unless given; text is ISO 8601, with an offset or `Z`, or naive (read in the
upload's time zone, UTC unless given); date-times (Parquet, Excel) likewise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from atalaia.adapters.uploads.files import Chunk
from atalaia.core.series import FloatArray, TimeRange
from atalaia.core.uploads import (
    EPOCH_UNITS,
    Cells,
    Form,
    Layout,
    ValueState,
    epoch_unit,
)

_US = pa.timestamp("us", "UTC")


@dataclass(frozen=True, slots=True)
class TimeEncoding:
    """How an upload's times read: `epoch` numbers in `unit`, or `iso8601` text
    or `datetime` cells, naive ones in `timezone`."""

    kind: str
    unit: str | None = None
    detected: bool = False
    timezone: str = "UTC"

    @classmethod
    def of(cls, described: dict[str, Any] | None) -> TimeEncoding | None:
        """The encoding `describe` stated; None when none was yet."""
        if not described:
            return None
        if described["encoding"] == "epoch":
            detected = described["unit_was"] != "given"
            return cls("epoch", described["unit"], detected)
        return cls(described["encoding"], timezone=described["naive_times_in"])

    def describe(self) -> dict[str, Any]:
        if self.kind == "epoch":
            how = "detected by magnitude" if self.detected else "given"
            return {"encoding": "epoch", "unit": self.unit, "unit_was": how}
        return {"encoding": self.kind, "naive_times_in": self.timezone}


def cells_of(
    chunk: Chunk,
    layout: Layout,
    *,
    encoding: TimeEncoding | None,
    timezone: str,
    time_range: TimeRange,
) -> tuple[Cells, TimeEncoding]:
    """The chunk's cells, and how its times read (`encoding`: as decided on
    an earlier chunk, None on the first)."""
    times, encoding = timestamps_of(
        chunk.columns[layout.timestamp],
        encoding=encoding,
        timezone=timezone,
        time_range=time_range,
    )
    lines = np.arange(chunk.first_line, chunk.first_line + chunk.rows, dtype=np.int64)
    if layout.form is Form.LONG:
        assert layout.series is not None
        assert layout.value is not None
        codes, series = series_codes(chunk.columns[layout.series])
        values, states = values_of(chunk.columns[layout.value])
        zeros = np.zeros(chunk.rows, dtype=np.int64)
        return Cells(lines, zeros, codes, series, times, values, states), encoding
    return _wide_cells(chunk, layout, lines, times), encoding


def _wide_cells(
    chunk: Chunk, layout: Layout, lines: npt.NDArray[np.int64], times: FloatArray
) -> Cells:
    series = sorted(set(layout.wide.values()))
    code_of = {sid: code for code, sid in enumerate(series)}
    k, n = len(layout.wide), chunk.rows
    read = [values_of(chunk.columns[column]) for column in layout.wide]
    codes = np.repeat([code_of[s] for s in layout.wide.values()], n).astype(np.int64)
    return Cells(
        lines=np.tile(lines, k),
        columns=np.repeat(np.arange(k, dtype=np.int64), n),
        codes=codes,
        series=series,
        timestamps=np.tile(times, k),
        values=np.concatenate([v for v, _ in read]) if k else np.empty(0),
        value_states=np.concatenate([s for _, s in read]).astype(np.int8),
    )


def series_codes(array: pa.Array) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Each cell's index into the distinct ids (-1: empty), and those ids."""
    text = array if pa.types.is_string(array.type) else pc.cast(array, pa.string())
    encoded = text.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64), encoded.dictionary.to_pylist()


def values_of(array: pa.Array) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """The cells as float64 (NaN where none) and their `ValueState`s."""
    states = np.zeros(len(array), dtype=np.int8)
    missing = array.is_null().to_numpy(zero_copy_only=False)
    states[missing] = ValueState.MISSING
    try:
        numbers = pc.cast(array, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = np.array([_number(x) for x in array.to_pylist()], dtype=np.float64)
        states[~missing & np.isnan(values) & ~_nan_text(array)] = ValueState.UNPARSEABLE
        return values, states
    return numbers.to_numpy(zero_copy_only=False).astype(np.float64), states


def _number(cell: Any) -> float:
    try:
        return float(cell)
    except (TypeError, ValueError):
        return np.nan


def _nan_text(array: pa.Array) -> npt.NDArray[np.bool_]:
    """Cells that say NaN: they read, as a number that is not finite."""
    if not pa.types.is_string(array.type):
        return np.zeros(len(array), dtype=bool)
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(array))
    flags = pc.is_in(lowered, pa.array(["nan", "+nan", "-nan"])).fill_null(False)
    return np.asarray(flags.to_numpy(zero_copy_only=False), dtype=bool)


def timestamps_of(
    array: pa.Array,
    *,
    encoding: TimeEncoding | None,
    timezone: str,
    time_range: TimeRange,
) -> tuple[FloatArray, TimeEncoding]:
    """Epoch seconds of the cells (NaN where a cell is not a time)."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        return _datetime_seconds(array, timezone), TimeEncoding(
            "datetime", None, False, timezone
        )
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        raw = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        return _epoch_seconds(raw, encoding, time_range)
    text = array if pa.types.is_string(kind) else pc.cast(array, pa.string())
    iso = TimeEncoding("iso8601", timezone=timezone)
    if encoding is not None and encoding.kind == "iso8601":
        return _iso_seconds(text, timezone), iso
    try:
        raw = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        raw = np.array([_number(x) for x in text.to_pylist()], dtype=np.float64)
        if encoding is None and np.isfinite(raw).sum() * 2 < len(raw):
            return _iso_seconds(text, timezone), iso  # mostly not numbers
    return _epoch_seconds(raw, encoding, time_range)


def _epoch_seconds(
    raw: FloatArray, encoding: TimeEncoding | None, time_range: TimeRange
) -> tuple[FloatArray, TimeEncoding]:
    if encoding is None or encoding.unit is None:
        encoding = TimeEncoding("epoch", epoch_unit(raw, time_range), True)
    return raw / EPOCH_UNITS[encoding.unit or "s"], encoding


def _datetime_seconds(array: pa.Array, timezone: str) -> FloatArray:
    if array.type.tz is None:
        array = pc.assume_timezone(
            array, timezone, ambiguous="earliest", nonexistent="earliest"
        )
    micros = pc.cast(pc.cast(array, _US), pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(micros, dtype=np.float64) / 1e6


def _iso_seconds(text: pa.Array, timezone: str) -> FloatArray:
    """ISO 8601 text as epoch seconds: one cast when every cell carries an
    offset, or none does; else cell by cell."""
    for cast in (_with_offsets, _naive):
        try:
            return _datetime_seconds(cast(text), timezone)
        except pa.ArrowInvalid:
            continue
    zone = ZoneInfo(timezone)
    return np.array([_iso_one(x, zone) for x in text.to_pylist()], dtype=np.float64)


def _with_offsets(text: pa.Array) -> pa.Array:
    return pc.cast(text, _US)


def _naive(text: pa.Array) -> pa.Array:
    return pc.cast(text, pa.timestamp("us"))


def _iso_one(cell: str | None, zone: ZoneInfo) -> float:
    if cell is None or np.isfinite(_number(cell)):  # a number is no ISO time
        return np.nan
    try:
        moment = datetime.fromisoformat(cell.strip())
    except ValueError:
        return np.nan
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()
