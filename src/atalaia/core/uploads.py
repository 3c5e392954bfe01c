"""Uploaded files of readings: their layout, their timestamps' unit, and each
chunk's cells sorted into readings to store and invalid rows with reasons.

A file is in long form (a series id, a timestamp and a value column) or in
wide form (a timestamp column and one column per series: named by the series,
by a mapping column → series id, or by axis for a sensor: `{sensor}_{axis}`).
Line numbers are the file's, its header being line 1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from atalaia.core.series import (
    MAX_ABS_VALUE,
    SERIES_ID_PATTERN,
    FloatArray,
    Readings,
    TimeRange,
    check_series_id,
)
from atalaia.errors import InvalidInput

IntArray = npt.NDArray[np.int64]
MAX_INVALID_SHOWN = 100  # invalid rows an upload keeps in detail (the first ones)
EPOCH_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


class UploadStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (UploadStatus.DONE, UploadStatus.FAILED)


class Form(StrEnum):
    LONG = "long"
    WIDE = "wide"


class Reason(StrEnum):
    """Why a row (long form) or a cell (wide form) was not stored; the first
    that applies, in this order."""

    COLUMN_COUNT = "column_count"
    SERIES_ID_FORMAT = "series_id_format"
    SERIES_ACCESS = "series_access"  # outside the uploader's sensor groups
    TIMESTAMP_UNPARSEABLE = "timestamp_unparseable"
    TIMESTAMP_RANGE = "timestamp_range"
    VALUE_MISSING = "value_missing"
    VALUE_UNPARSEABLE = "value_unparseable"
    VALUE_NOT_FINITE = "value_not_finite"
    VALUE_RANGE = "value_range"
    DUPLICATE_IN_FILE = "duplicate_in_file"


_REASONS = list(Reason)


class ValueState:
    """How a value cell read (`Cells.value_states`)."""

    OK = 0
    MISSING = 1
    UNPARSEABLE = 2


@dataclass(frozen=True, slots=True)
class Layout:
    """Which columns of a file hold what: long form names its three columns;
    wide form its timestamp column and the series of each value column."""

    form: Form
    timestamp: str
    series: str | None = None  # long form
    value: str | None = None  # long form
    wide: dict[str, str] = field(default_factory=dict)  # column → series id

    @property
    def value_columns(self) -> list[str]:
        return [self.value] if self.value is not None else list(self.wide)

    @classmethod
    def of(cls, described: Mapping[str, Any]) -> Layout:
        """The layout `describe` stated."""
        columns = dict(described["columns"])
        if described["form"] == Form.LONG:
            return cls(
                Form.LONG,
                described["timestamp"],
                columns["series_id"],
                columns["value"],
            )
        return cls(Form.WIDE, described["timestamp"], wide=columns)

    def describe(self) -> dict[str, Any]:
        if self.form is Form.LONG:
            roles = {"series_id": self.series, "value": self.value}
            return {"form": "long", "timestamp": self.timestamp, "columns": roles}
        return {"form": "wide", "timestamp": self.timestamp, "columns": self.wide}


@dataclass(frozen=True, slots=True)
class LayoutRequest:
    """What the uploader said of the file's layout (all optional)."""

    form: Form | None = None
    timestamp_column: str = "timestamp"
    series_column: str = "series_id"
    value_column: str = "value"
    mapping: Mapping[str, str] | None = None  # wide: column → series id
    sensor: str | None = None  # wide: columns named by axis


# Names historians and spreadsheets give the columns, looked for (ignoring
# case, spaces and dashes) when the request leaves a column at its default.
COLUMN_NAMES = {
    "timestamp_column": ("timestamp", "time", "datetime", "date_time", "date", "ts",
                         "time_stamp", "localtime", "utc"),
    "series_column": ("series_id", "series", "tag", "tagname", "tag_name",
                      "point", "sensor", "name"),
    "value_column": ("value", "val", "reading", "measurement"),
}  # fmt: skip


def _folded(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def named_columns(columns: Sequence[str], request: LayoutRequest) -> LayoutRequest:
    """The request with each column left at its default and missing from the
    file named after the file's column of a known name, if any.

    >>> named_columns(["Time", "TagName", "Value"], LayoutRequest()).series_column
    'TagName'
    """
    folded = {_folded(c): c for c in reversed(columns)}  # the first of a name
    found: dict[str, Any] = {}
    for role, names in COLUMN_NAMES.items():
        asked = getattr(request, role)
        if asked != names[0] or asked in columns:
            continue
        match = next((folded[n] for n in names if n in folded), None)
        if match is not None:
            found[role] = match
    return replace(request, **found)


def resolve_layout(columns: Sequence[str], request: LayoutRequest) -> Layout:
    """The layout of a file with these columns (columns of a known name
    taken for the default ones: `named_columns`); InvalidInput naming the rule
    the file or the request breaks."""
    request = named_columns(columns, request)
    if request.timestamp_column not in columns:
        raise InvalidInput(
            f"the file has no {request.timestamp_column!r} column (columns: "
            f"{_listed(columns)}); name it with timestamp_column=",
            rule="timestamp_column",
        )
    long_columns = (request.series_column, request.value_column)
    is_long = all(c in columns for c in long_columns)
    wide_asked = request.mapping is not None or request.sensor is not None
    form = request.form or (Form.LONG if is_long and not wide_asked else Form.WIDE)
    if form is Form.LONG:
        return _long_layout(columns, request)
    return Layout(
        Form.WIDE, request.timestamp_column, wide=_wide_series(columns, request)
    )


def _long_layout(columns: Sequence[str], request: LayoutRequest) -> Layout:
    missing = [
        c for c in (request.series_column, request.value_column) if c not in columns
    ]
    if missing:
        raise InvalidInput(
            f"long form needs the columns {_listed(missing)}, not in the file "
            f"(columns: {_listed(columns)})",
            rule="long_form_columns",
        )
    return Layout(
        Form.LONG, request.timestamp_column, request.series_column, request.value_column
    )


def _wide_series(columns: Sequence[str], request: LayoutRequest) -> dict[str, str]:
    if request.mapping is not None:
        unknown = [c for c in request.mapping if c not in columns]
        if unknown:
            raise InvalidInput(
                f"the mapping names columns not in the file: {_listed(unknown)}",
                rule="mapping_columns",
            )
        wide = dict(request.mapping)
    else:
        others = [c for c in columns if c != request.timestamp_column]
        prefix = f"{request.sensor}_" if request.sensor else ""
        wide = {c: f"{prefix}{c}" for c in others}
    if not wide:
        raise InvalidInput(
            "wide form needs at least one value column beside the timestamp",
            rule="series_columns",
        )
    for series_id in wide.values():
        check_series_id(series_id)
    return wide


def _listed(names: Sequence[str], shown: int = 20) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(map(repr, names[:shown])) + more


def epoch_unit(raw: FloatArray, time_range: TimeRange) -> str:
    """The unit (s, ms, us, ns) that puts the median of the finite `raw`
    numbers within `time_range`; "s" when none does (their rows then break
    the range rule, whose message names the unit they look like).

    >>> epoch_unit(np.array([1.7e12, 1.7e12 + 1000]), TimeRange())
    'ms'
    """
    finite = raw[np.isfinite(raw)]
    if not finite.size:
        return "s"
    median = float(np.median(finite))
    for unit, per_second in EPOCH_UNITS.items():
        if time_range.low <= median / per_second <= time_range.high:
            return unit
    return "s"


@dataclass(frozen=True, slots=True)
class Cells:
    """A chunk's readings as aligned columns, one entry per reading cell (a row
    in long form, a value cell in wide form). Unparseable timestamps are NaN;
    values that did not read as a number are NaN with their `value_states`."""

    lines: IntArray
    columns: IntArray  # index into the layout's value columns
    codes: IntArray  # index into `series`; -1: no series id
    series: list[str]
    timestamps: FloatArray  # epoch seconds
    values: FloatArray
    value_states: npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class InvalidCells:
    """The cells of a chunk that were not stored: their lines, value columns,
    series (index into `Cells.series`, -1: none) and reasons (index into
    `Reason`)."""

    lines: IntArray
    columns: IntArray
    codes: IntArray
    reasons: npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class SortedCells:
    readings: dict[str, Readings]  # each strictly increasing
    invalid: InvalidCells


def sort_out(
    cells: Cells,
    time_range: TimeRange,
    covers: Callable[[str], bool] | None = None,
) -> SortedCells:
    """Split a chunk's cells into each series' readings (sorted) and the
    invalid ones with their first reason; of a (series, timestamp) given twice
    the first in the file is kept, the others are duplicates. `covers`: the
    series the uploader may write (None: every one)."""
    reasons = _reasons(cells, time_range, covers)
    valid = np.flatnonzero(reasons == 0)
    codes, ts = cells.codes[valid], cells.timestamps[valid]
    order = np.lexsort((ts, codes))  # stable: the file's first comes first
    valid, codes, ts = valid[order], codes[order], ts[order]
    repeated = np.zeros(valid.size, dtype=bool)
    repeated[1:] = (codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1])
    reasons[valid[repeated]] = _REASONS.index(Reason.DUPLICATE_IN_FILE) + 1
    kept = ~repeated
    valid, codes, ts = valid[kept], codes[kept], ts[kept]
    values = cells.values[valid]
    changes = np.r_[True, codes[1:] != codes[:-1]] if codes.size else []
    bounds = [*np.flatnonzero(changes).tolist(), codes.size]
    readings = {
        cells.series[codes[a]]: Readings(ts[a:b], values[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    }
    bad = np.flatnonzero(reasons)
    invalid = InvalidCells(
        cells.lines[bad], cells.columns[bad], cells.codes[bad], reasons[bad] - 1
    )
    return SortedCells(readings, invalid)


def _reasons(
    cells: Cells, time_range: TimeRange, covers: Callable[[str], bool] | None
) -> npt.NDArray[np.int8]:
    """Per cell, 0 when valid, else 1 + the index of its first Reason."""
    # One check per distinct id; code -1 (no id) picks the last entry, True.
    bad_ids = np.array(
        [SERIES_ID_PATTERN.fullmatch(s) is None for s in cells.series] + [True]
    )
    outside = np.array(
        [covers is not None and not covers(s) for s in cells.series] + [False]
    )
    codes, ts, vs = cells.codes, cells.timestamps, cells.values
    no_series = bad_ids[codes]
    ts_ok = np.isfinite(ts)
    in_range = (ts >= time_range.low) & (ts <= time_range.high)
    states = cells.value_states
    read = states == ValueState.OK
    finite = np.isfinite(vs)
    checks = (
        (Reason.SERIES_ID_FORMAT, no_series),
        (Reason.SERIES_ACCESS, outside[codes]),
        (Reason.TIMESTAMP_UNPARSEABLE, ~ts_ok),
        (Reason.TIMESTAMP_RANGE, ~in_range),
        (Reason.VALUE_MISSING, states == ValueState.MISSING),
        (Reason.VALUE_UNPARSEABLE, states == ValueState.UNPARSEABLE),
        (Reason.VALUE_NOT_FINITE, read & ~finite),
        (Reason.VALUE_RANGE, finite & (np.abs(vs) > MAX_ABS_VALUE)),
    )
    reasons = np.zeros(codes.size, dtype=np.int8)
    for reason, broken in reversed(checks):  # the first reason is written last
        reasons[broken] = _REASONS.index(reason) + 1
    return reasons


@dataclass(slots=True)
class Tally:
    """An upload's invalid cells so far: counts per reason and the first
    MAX_INVALID_SHOWN in detail (line, column, series, reason)."""

    by_reason: Counter[str] = field(default_factory=Counter)
    shown: list[dict[str, Any]] = field(default_factory=list)

    def add(self, invalid: InvalidCells, cells: Cells, columns: Sequence[str]) -> None:
        reasons = invalid.reasons
        counts = np.bincount(reasons, minlength=len(_REASONS))
        self.by_reason.update(
            {r.value: int(n) for r, n in zip(_REASONS, counts, strict=True) if n}
        )
        room = MAX_INVALID_SHOWN - len(self.shown)
        for i in range(min(room, reasons.size)):
            code = int(invalid.codes[i])
            self.shown.append(
                {
                    "line": int(invalid.lines[i]),
                    "column": columns[int(invalid.columns[i])],
                    "series_id": cells.series[code] if code >= 0 else None,
                    "reason": _REASONS[int(reasons[i])].value,
                }
            )

    def add_malformed(self, lines: Sequence[int | None]) -> None:
        """Rows that did not split into the header's columns (CSV)."""
        if not lines:
            return
        self.by_reason[Reason.COLUMN_COUNT.value] += len(lines)
        room = MAX_INVALID_SHOWN - len(self.shown)
        self.shown.extend(
            {"line": line, "column": None, "series_id": None,
             "reason": Reason.COLUMN_COUNT.value}
            for line in lines[:room]
        )  # fmt: skip


def series_counts(
    readings: Mapping[str, Readings],
) -> dict[str, tuple[int, float, float]]:
    """Per series of a chunk: (readings, first, last timestamp), the figures an
    upload keeps per series for its data-quality report."""
    return {
        sid: (len(r), float(r.timestamps[0]), float(r.timestamps[-1]))
        for sid, r in readings.items()
        if len(r)
    }


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file and its ingest's progress: rows read, readings stored
    (or already stored: `readings_valid - readings_stored`), invalid cells."""

    id: str
    status: UploadStatus
    file_name: str
    file_format: str
    bytes_total: int
    request: dict[str, Any]
    detected: dict[str, Any]
    actor: str
    progress: float = 0.0
    chunks_done: int = 0
    rows_read: int = 0
    readings_valid: int = 0
    readings_stored: int = 0
    invalid: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    invalid_shown: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
