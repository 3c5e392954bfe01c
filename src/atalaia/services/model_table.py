"""The in-memory table of every served model, held as numpy columns.

One row per series: its production model (if any) and the statistics of its
stored history (the low-confidence fallback). 285,000 flat models take a few MB,
and a batch of readings of many series is scored in one vectorized pass.

Scoring reads one derived record per row (centre, width, version, tier...), so a
reading of a flat model costs a gather and two arithmetic passes. A seasonal
model's phases live in shared float32 pools (`BandPools`' layout): its record
says where, and its readings gather the two phases around their time. One
thread writes (warm load, change feed, reloads); request threads read. A row's
record is written in one assignment; growth and compaction swap in new arrays
at once, records and pools together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import count, repeat
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors import MIN_SCALE, band_width, score_readings
from atalaia.core.detectors.bands import SERVED_ALGORITHMS
from atalaia.core.detectors.base import MIN_WIDTH
from atalaia.core.detectors.phases import band_at
from atalaia.core.detectors.stream_families import STREAM_FAMILIES
from atalaia.core.explanations import Reason
from atalaia.core.serving import ServedModel
from atalaia.files import write_private_npz
from atalaia.services.id_index import IdIndex

ALGORITHMS = SERVED_ALGORITHMS  # what a served model may be
HISTORY_SIGMA = 3.0  # threshold of the fallback z-score on a series' history
# From this many ids a batch is looked up in the hashed index, not id by id.
HASHED_LOOKUP = 64
_GENERATIONS = count(1)
# Bands in pools, algorithms by name, heavy models' keys, stuck guards, streams.
SNAPSHOT_LAYOUT = "atalaia.model-table.5"


class SnapshotUnreadable(Exception):
    """A snapshot this release cannot read (another layout)."""


class Source(IntEnum):
    """Where a row's model came from; or, for a request that had to fetch a
    model missing from memory, where it fetched it from."""

    NONE = 0
    MEMORY = 1  # loaded from the registry into memory
    SNAPSHOT = 2  # loaded from the on-disk snapshot (registry unreachable)
    REDIS = 3  # fetched on a miss from the shared Redis cache
    DATABASE = 4  # fetched on a miss from the registry


# Why an anomaly is one, by code (`Scores.reason`): the table's bands give the
# first two; a heavy model's verdict, the stuck guard and the streaming
# models' state, the others.
REASONS = (
    Reason.OUTSIDE_BAND,
    Reason.OUTSIDE_SEASONAL_BAND,
    Reason.ISOLATED_PATTERN,
    Reason.STUCK,
    Reason.FORECAST_DEVIATION,
    Reason.LEVEL_SHIFT,
    Reason.VARIANCE_CHANGE,
    Reason.DROPOUT,
)
ISOLATED = REASONS.index(Reason.ISOLATED_PATTERN)
STUCK = REASONS.index(Reason.STUCK)


class Tier(IntEnum):
    """Which link of the fallback chain answered a reading."""

    MODEL = 0
    HISTORY = 1
    DEFAULT = 2


# What scoring reads of a row, derived from its model or history, as one record:
# a reader gathers whole records, so an answer never mixes two states of a row
# that a concurrent reload is writing (a record is written in one assignment).
SERVING = np.dtype(
    [
        ("center", np.float64),
        ("width", np.float64),  # scale × threshold: a score above 1 is an anomaly
        ("version", np.int64),
        ("tier", np.int8),
        ("source", np.int8),
        ("algorithm", np.int8),
        # A seasonal model's band: its period, its phases (0: a flat band) and
        # where they start in the pools; `center` is then its base value.
        ("phases", np.int32),
        ("period", np.float64),
        ("offset", np.int64),
        ("stuck_after", np.int32),  # the stuck guard's limit (0: no guard)
    ],
    align=True,
)
# Row 0 stands for every series the table does not know: default tier, and an
# infinite width, so that its score is 0 and never an anomaly.
UNKNOWN_ROW = 0


class Record(NamedTuple):
    """A row's serving record in plain values (`SERVING`'s fields, in its order):
    scoring one reading needs no numpy."""

    center: float
    width: float
    version: int
    tier: int  # a Tier
    source: int  # a Source
    algorithm: int  # an index into ALGORITHMS
    phases: int
    period: float
    offset: int
    stuck_after: int


UNKNOWN_RECORD = Record(0.0, np.inf, 0, Tier.DEFAULT, Source.NONE, 0, 0, 0.0, 0, 0)
assert Record._fields == SERVING.names


@dataclass(slots=True)
class Scores:
    """Aligned per-reading results of a batch."""

    table: ModelTable  # the table that scored them: `rows` are its rows
    rows: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]
    anomaly: npt.NDArray[np.bool_]
    expected: npt.NDArray[np.float64]  # the band's centre at each reading's time
    width: npt.NDArray[np.float64]  # and its half-width (inf: nothing known)
    reason: npt.NDArray[np.int8]  # an anomaly's, as an index into REASONS
    tier: npt.NDArray[np.int8]
    version: npt.NDArray[np.int64]
    algorithm: npt.NDArray[np.int8]
    source: npt.NDArray[np.int8]
    stuck_after: npt.NDArray[np.int32]  # the stuck guard's limit (0: no guard)
    # Per reading, not after its series' newest: set by the data plane, which
    # keeps the series' streams (None: not known, none stale).
    stale: npt.NDArray[np.bool_] | None = None
    # Per reading, its streaming model's state (`stream_models`: 0 none, 1 warm,
    # 2 cold: its band answered); None: no streaming model among them.
    state: npt.NDArray[np.int8] | None = None
    # Per reading, who answered it (`candidates.ROLES`: 0 production, else a
    # rollout's candidate); None: production answered them all.
    role: npt.NDArray[np.int8] | None = None


@dataclass(slots=True)
class _Pools:
    """Seasonal models' phases: rows [offset, offset + phases) of each model.

    Appended to; a replaced model's phases stay behind as `garbage` until the
    table compacts them away."""

    departure: npt.NDArray[np.float32]
    width: npt.NDArray[np.float32]
    used: int = 0
    garbage: int = 0

    @classmethod
    def empty(cls, capacity: int) -> _Pools:
        return cls(np.zeros(capacity, np.float32), np.zeros(capacity, np.float32))

    def room_for(self, phases: int) -> _Pools:
        """These pools, or bigger ones (by an eighth more) holding as much."""
        end = self.used + phases
        if end <= self.departure.size:
            return self
        bigger = _Pools.empty(end + end // 8)
        bigger.departure[: self.used] = self.departure[: self.used]
        bigger.width[: self.used] = self.width[: self.used]
        bigger.used, bigger.garbage = self.used, self.garbage
        return bigger


# Compact the pools when replaced phases are more than half of them, and more
# than this many (a few MB).
COMPACT_GARBAGE = 1 << 20


@dataclass(slots=True)
class _Columns:
    """Each row's model and history as given, and the serving record derived."""

    version: npt.NDArray[np.int64]
    algorithm: npt.NDArray[np.int8]
    source: npt.NDArray[np.int8]
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    threshold: npt.NDArray[np.float64]
    stuck_after: npt.NDArray[np.int32]  # 0: no stuck guard
    hist_mean: npt.NDArray[np.float64]
    hist_std: npt.NDArray[np.float64]
    phases: npt.NDArray[np.int32]  # 0: a flat band
    period: npt.NDArray[np.float64]
    offset: npt.NDArray[np.int64]
    serving: npt.NDArray[np.void]
    pools: _Pools

    @classmethod
    def empty(cls, capacity: int, pools: _Pools | None = None) -> _Columns:
        serving = np.zeros(capacity, SERVING)
        serving[:] = UNKNOWN_RECORD
        return cls(
            version=np.zeros(capacity, np.int64),
            algorithm=np.zeros(capacity, np.int8),
            source=np.zeros(capacity, np.int8),
            center=np.zeros(capacity),
            scale=np.ones(capacity),
            threshold=np.ones(capacity),
            stuck_after=np.zeros(capacity, np.int32),
            hist_mean=np.zeros(capacity),
            hist_std=np.zeros(capacity),
            phases=np.zeros(capacity, np.int32),
            period=np.zeros(capacity),
            offset=np.zeros(capacity, np.int64),
            serving=serving,
            pools=pools or _Pools.empty(0),
        )

    def grown(self, capacity: int) -> _Columns:
        bigger = _Columns.empty(capacity, self.pools)
        for name in (*ROW_FIELDS, "serving"):
            old = getattr(self, name)
            getattr(bigger, name)[: old.size] = old
        return bigger

    def set_bands(
        self, rows: npt.NDArray[np.int64], bands: Sequence[bytes | None]
    ) -> _Columns:
        """Give `rows` these stored bands (None: flat); the columns to read from
        now (new ones when the pools had to grow or were compacted).

        Bands of one size are read together, from their bytes joined, and laid
        one after the other in the pools (a warm load: one pass for the fleet).
        """
        pools = self.pools
        pools.garbage += int(self.phases[rows].sum())
        self.phases[rows] = 0
        given = [i for i, band in enumerate(bands) if band]
        if not given:
            return self
        stored = [band for band in bands if band]
        sizes = (np.fromiter(map(len, stored), np.int64, len(stored)) - 8) // 8
        pools = pools.room_for(int(sizes.sum()))
        at = rows[given]
        for phases in np.unique(sizes).tolist():
            same = np.flatnonzero(sizes == phases)
            period, pairs = _stored_bands(b"".join(stored[i] for i in same), phases)
            start, end = pools.used, pools.used + same.size * phases
            pools.departure[start:end].reshape(-1, phases)[:] = pairs[:, :, 0]
            pools.width[start:end].reshape(-1, phases)[:] = pairs[:, :, 1]
            pools.used = end
            self.offset[at[same]] = start + phases * np.arange(same.size)
            self.period[at[same]] = period
            self.phases[at[same]] = phases
        if pools is self.pools:
            return self
        # Records of their own: a reader holding these columns reads their
        # records with their pools while the new records are derived.
        return _Columns(**{n: getattr(self, n) for n in ROW_FIELDS},
                        serving=self.serving.copy(), pools=pools)  # fmt: skip

    def compacted(self) -> _Columns:
        """These columns with the pools rebuilt from the live bands only (and
        the records derived anew)."""
        rows = np.flatnonzero(self.phases > 0)
        sizes = self.phases[rows].astype(np.int64)
        starts = np.cumsum(sizes) - sizes
        gather = np.repeat(self.offset[rows] - starts, sizes) + np.arange(sizes.sum())
        pools = _Pools.empty(int(sizes.sum()))
        pools.departure[:] = self.pools.departure[gather]
        pools.width[:] = self.pools.width[gather]
        pools.used = pools.departure.size
        cols = _Columns(**{n: getattr(self, n) for n in ROW_FIELDS},
                        serving=self.serving.copy(), pools=pools)  # fmt: skip
        cols.offset = self.offset.copy()
        cols.offset[rows] = starts
        cols.derive(rows)
        return cols

    def band_of(self, row: int) -> bytes | None:
        """Row `row`'s band as stored (`PhaseBand.to_bytes`); None: flat."""
        if not self.phases[row]:
            return None
        at = slice(self.offset[row], self.offset[row] + self.phases[row])
        pairs = np.column_stack([self.pools.departure[at], self.pools.width[at]])
        return (
            np.array([self.period[row]], "<f8").tobytes()
            + pairs.astype("<f4").tobytes()
        )

    def derive(self, rows: npt.NDArray[np.int64]) -> None:
        """Recompute the serving records of `rows` from their model and history."""
        has_model = self.version[rows] > 0
        hist_std = self.hist_std[rows]
        has_history = ~has_model & (hist_std > MIN_SCALE)
        records = np.empty(rows.size, SERVING)
        records["center"] = np.where(
            has_model, self.center[rows], np.where(has_history, self.hist_mean[rows], 0)
        )
        records["width"] = np.where(
            has_model,
            band_width(self.scale[rows], self.threshold[rows]),
            np.where(has_history, hist_std * HISTORY_SIGMA, np.inf),
        )
        records["version"] = self.version[rows]
        records["tier"] = np.where(
            has_model, Tier.MODEL, np.where(has_history, Tier.HISTORY, Tier.DEFAULT)
        )
        records["source"] = self.source[rows]
        records["algorithm"] = self.algorithm[rows]
        records["phases"] = np.where(has_model, self.phases[rows], 0)
        records["period"] = self.period[rows]
        records["offset"] = self.offset[rows]
        records["stuck_after"] = np.where(has_model, self.stuck_after[rows], 0)
        self.serving[rows] = records


def _stored_bands(
    joined: bytes, phases: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """Stored bands of `phases` phases each, their bytes joined (as
    `stored_phases` reads one): their periods, and their phases as
    (band, phase, departure/width)."""
    layout = np.dtype([("period", "<f8"), ("pairs", "<f4", (phases, 2))])
    read = np.frombuffer(joined, layout)
    return read["period"], read["pairs"]


# The per-row columns (all but the records derived and the pools).
ROW_FIELDS = tuple(
    name for name in _Columns.__dataclass_fields__ if name not in ("serving", "pools")
)


@dataclass
class ModelTable:
    index: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=lambda: [""])  # row 0: unknown series
    cols: _Columns = field(default_factory=lambda: _Columns.empty(1024))
    hashed: IdIndex = field(default_factory=IdIndex)  # `index`, for batches
    # Row → a heavy model's key in the artifact store (few rows have one).
    artifacts: dict[int, str] = field(default_factory=dict)
    # Row → a streaming model's packed params and state (a few hundred bytes).
    streams: dict[int, bytes] = field(default_factory=dict)
    # Which table this is, in the order they were made: each new table (a full
    # load, the snapshot) numbers its rows afresh, while a table keeps every row
    # it gave as it grows. Whatever keeps rows of a table (counts, a snapshot
    # written) compares generations.
    generation: int = field(default_factory=lambda: next(_GENERATIONS))

    def __len__(self) -> int:
        """Number of series with a served model."""
        return int(np.count_nonzero(self.cols.version[: len(self.ids)]))

    def nbytes(self) -> int:
        cols = self.cols
        columns = [getattr(cols, n) for n in (*ROW_FIELDS, "serving")]
        columns += [cols.pools.departure, cols.pools.width]
        streams = sum(map(len, self.streams.values()))
        return int(sum(c.nbytes for c in columns)) + self.hashed.nbytes() + streams

    def _rows(self, series_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each series' row, adding rows for series new to the table."""
        if len(self.ids) == 1:  # an empty table (a warm load): every series is new
            unknown = list(series_ids)
        else:
            rows = self.rows_of(series_ids)
            if rows.all():
                return rows
            pairs = zip(series_ids, rows.tolist(), strict=True)
            unknown = [s for s, row in pairs if not row]
        first = len(self.ids)
        new = dict(zip(unknown, range(first, first + len(unknown)), strict=True))
        if len(new) < len(unknown):  # a series given more than once: one row each
            new = dict(zip(new, range(first, first + len(new)), strict=True))
        end = first + len(new)
        if end > self.cols.version.size:  # grow by an eighth: a bulk load fits tight
            self.cols = self.cols.grown(max(1024, end + end // 8))
        self.ids.extend(new)
        self.index.update(new)
        self.hashed.add(self.ids[first:end], first)
        if end - first == len(series_ids):  # each series new, and given once
            return np.arange(first, end)
        return self.rows_of(series_ids)

    def set_model_columns(
        self,
        series_ids: Sequence[str],
        version: npt.NDArray[np.int64],
        algorithm: npt.NDArray[np.int8],
        center: npt.NDArray[np.float64],
        scale: npt.NDArray[np.float64],
        threshold: npt.NDArray[np.float64],
        source: Source,
        band: Sequence[bytes | None] | None = None,
        artifact: Sequence[str | None] | None = None,
        stuck_after: npt.NDArray[np.int32] | None = None,
        stream: Sequence[bytes | None] | None = None,
    ) -> None:
        """Serve these models (`algorithm` indexes ALGORITHMS), one per series;
        `band`: each one's stored band, None for a flat one (all flat if None);
        `artifact`: each one's key in the artifact store, None for none;
        `stuck_after`: each one's stuck guard's limit (no guards if None);
        `stream`: each one's packed params and state, None for none."""
        rows = self._rows(series_ids)
        cols = self.cols
        cols.version[rows], cols.algorithm[rows] = version, algorithm
        cols.center[rows], cols.scale[rows] = center, scale
        cols.threshold[rows], cols.source[rows] = threshold, source
        cols.stuck_after[rows] = 0 if stuck_after is None else stuck_after
        _keep(self.artifacts, rows, artifact)
        _keep(self.streams, rows, stream)
        self._set_bands(rows, band or [None] * rows.size)

    def guarded(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The rows whose model has a stuck guard, and each one's limit."""
        n = len(self.ids)
        limit = self.cols.stuck_after[:n]
        rows = np.flatnonzero((self.cols.version[:n] > 0) & (limit > 0))
        return rows, limit[rows].astype(np.int64)

    def streaming(self) -> npt.NDArray[np.int64]:
        """The rows whose model is a streaming one (`forecast`, `changepoint`)."""
        n = len(self.ids)
        codes = [ALGORITHMS.index(name) for name in STREAM_FAMILIES]
        of = np.isin(self.cols.algorithm[:n], codes) & (self.cols.version[:n] > 0)
        return np.flatnonzero(of)

    def artifact_of(self, row: int) -> str | None:
        """Row `row`'s heavy model's key in the artifact store, if it has one."""
        return self.artifacts.get(row)

    def stream_of(self, row: int) -> bytes | None:
        """Row `row`'s streaming model's packed params and state, if it has one."""
        return self.streams.get(row)

    def _set_bands(
        self, rows: npt.NDArray[np.int64], bands: Sequence[bytes | None]
    ) -> None:
        """Give `rows` their bands, then derive their records. New pools are
        swapped in before records point into them; compacted ones, with the
        records that point into them."""
        self.cols = self.cols.set_bands(rows, bands)
        self.cols.derive(rows)
        pools = self.cols.pools
        if pools.garbage > max(COMPACT_GARBAGE, pools.used // 2):
            self.cols = self.cols.compacted()

    def set_models(self, models: Sequence[ServedModel], source: Source) -> None:
        self.set_model_columns(
            [m.series_id for m in models],
            np.array([m.version for m in models], np.int64),
            np.array([ALGORITHMS.index(m.algorithm) for m in models], np.int8),
            np.array([m.center for m in models], np.float64),
            np.array([m.scale for m in models], np.float64),
            np.array([m.threshold for m in models], np.float64),
            source,
            [m.band for m in models],
            [m.artifact for m in models],
            np.array([m.stuck_after for m in models], np.int32),
            [m.stream for m in models],
        )

    def clear_model(self, series_id: str) -> None:
        row = self.index.get(series_id)
        if row is not None:
            self.cols.version[row] = 0
            self.cols.source[row] = Source.NONE
            self.cols.stuck_after[row] = 0
            self.artifacts.pop(row, None)
            self.streams.pop(row, None)
            self._set_bands(np.array([row]), [None])

    def set_history(
        self, series_ids: Sequence[str], means: np.ndarray, stds: np.ndarray
    ) -> None:
        rows = self._rows(series_ids)
        self.cols.hist_mean[rows] = means
        self.cols.hist_std[rows] = stds
        self.cols.derive(rows)

    def model_of(self, series_id: str) -> ServedModel | None:
        row = self.index.get(series_id)
        if row is None or not self.cols.version[row]:
            return None
        c = self.cols
        return ServedModel(
            series_id, int(c.version[row]), ALGORITHMS[c.algorithm[row]],
            float(c.center[row]), float(c.scale[row]), float(c.threshold[row]),
            c.band_of(row), self.artifacts.get(row), int(c.stuck_after[row]),
            self.streams.get(row),
        )  # fmt: skip

    def rows_of(self, series_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each series' row, UNKNOWN_ROW for a series the table does not hold."""
        if len(series_ids) >= HASHED_LOOKUP:
            rows = self.hashed.rows_of(series_ids)
            if rows is not None:
                return rows
        found = map(self.index.get, series_ids, repeat(UNKNOWN_ROW))
        return np.fromiter(found, np.int64, len(series_ids))

    def score(
        self,
        rows: npt.NDArray[np.int64],
        timestamps: npt.NDArray[np.float64],
        values: npt.NDArray[np.float64],
    ) -> Scores:
        """Score readings of `rows` through the fallback chain, in one pass."""
        cols = self.cols  # records and pools of one state
        records = cols.serving.take(rows)  # take: 20x faster than [rows] here
        expected, width = records["center"], records["width"]
        seasonal = records["phases"] > 0
        if seasonal.any():
            expected, width = _seasonal_band(records, seasonal, timestamps, cols)
        score, anomaly = score_readings(expected, width, values)
        return Scores(
            table=self,
            rows=rows,
            score=score,
            anomaly=anomaly,
            expected=expected,
            width=width,
            reason=seasonal.view(np.int8),
            tier=records["tier"],
            version=records["version"],
            algorithm=records["algorithm"],
            source=records["source"],
            stuck_after=records["stuck_after"],
        )

    def record(self, series_id: str, timestamp: float) -> Lookup:
        """A series' row, serving record, and its band at `timestamp`. A series
        the table does not hold has UNKNOWN_ROW and UNKNOWN_RECORD."""
        cols = self.cols  # records and pools of one state
        row = self.index.get(series_id, UNKNOWN_ROW)
        # item(row): the row's fields as a tuple without an np.void in between,
        # typed as a Record without the Python-level __new__ (twice as fast).
        record = tuple.__new__(Record, cols.serving.item(row))
        if not record.phases:
            return row, record, record.center, record.width
        return (row, record, *_band_one(record, timestamp, cols.pools))

    def save(self, path: Path) -> None:
        """Write the table to `path` atomically: the fallback when the DB is down."""
        n = len(self.ids)
        cols = self.cols
        arrays = {name: getattr(cols, name)[1:n] for name in ROW_FIELDS}
        ids = np.frombuffer("\n".join(self.ids[1:]).encode(), np.uint8)
        keys = np.frombuffer("\n".join(self.artifacts.values()).encode(), np.uint8)
        streams = list(self.streams.values())
        write_private_npz(
            path,
            layout=np.array(SNAPSHOT_LAYOUT),
            algorithms=np.array(ALGORITHMS),
            ids=ids,
            departure=cols.pools.departure[: cols.pools.used],
            width=cols.pools.width[: cols.pools.used],
            artifact_rows=np.fromiter(self.artifacts, np.int64),
            artifact_keys=keys,
            stream_rows=np.fromiter(self.streams, np.int64, len(streams)),
            stream_bytes=np.frombuffer(b"".join(streams), np.uint8),
            stream_lengths=np.fromiter(map(len, streams), np.int64, len(streams)),
            **arrays,
        )

    @classmethod
    def load(cls, path: Path) -> ModelTable:
        """The table saved at `path`; SnapshotUnreadable if it is of another
        layout (an older release's) or holds an algorithm this one lacks."""
        with np.load(path) as data:
            if "layout" not in data or str(data["layout"]) != SNAPSHOT_LAYOUT:
                raise SnapshotUnreadable(f"{path} is not a {SNAPSHOT_LAYOUT}")
            saved = [str(name) for name in data["algorithms"]]
            if not set(saved) <= set(ALGORITHMS):
                raise SnapshotUnreadable(f"{path} holds algorithms {saved}")
            codes = np.array([ALGORITHMS.index(name) for name in saved], np.int8)
            text = data["ids"].tobytes().decode()
            ids = ["", *text.split("\n")] if text else [""]
            n = len(ids)
            pools = _Pools(data["departure"].copy(), data["width"].copy())
            pools.used = pools.departure.size
            cols = _Columns.empty(max(1024, n), pools)
            for name in ROW_FIELDS:
                getattr(cols, name)[1:n] = data[name]
            cols.algorithm[1:n] = codes[data["algorithm"]]  # by name, not code
            keys = data["artifact_keys"].tobytes().decode()
            artifacts = dict(
                zip(data["artifact_rows"].tolist(), keys.split("\n"), strict=False)
            )
            streams = _split(
                data["stream_rows"], data["stream_bytes"], data["stream_lengths"]
            )
        cols.source[cols.version > 0] = Source.SNAPSHOT
        cols.derive(np.arange(1, n))
        index = {s: i for i, s in enumerate(ids) if i != UNKNOWN_ROW}
        hashed = IdIndex()
        hashed.add(ids[1:], 1)
        return cls(
            index=index, ids=ids, cols=cols, hashed=hashed, artifacts=artifacts,
            streams=streams,
        )  # fmt: skip


_Kept = TypeVar("_Kept", str, bytes)


def _keep(
    kept: dict[int, _Kept],
    rows: npt.NDArray[np.int64],
    values: Sequence[_Kept | None] | None,
) -> None:
    """Give `rows` these values in `kept` (all none if None; None or empty: none).

    A row given a value is never without one in between: readers do not lock.
    """
    if not kept and (values is None or not any(values)):
        return  # nothing kept, nothing to keep: a fleet without any
    for row, value in zip(rows.tolist(), values or repeat(None), strict=False):
        if value:
            kept[row] = value
        else:
            kept.pop(row, None)


def _split(
    rows: npt.NDArray[np.int64],
    joined: npt.NDArray[np.uint8],
    lengths: npt.NDArray[np.int64],
) -> dict[int, bytes]:
    """Row → bytes, from the rows, their bytes joined and each one's length."""
    data, ends = joined.tobytes(), np.cumsum(lengths)
    starts = (ends - lengths).tolist()
    return {
        row: data[start:end]
        for row, start, end in zip(rows.tolist(), starts, ends.tolist(), strict=True)
    }


# A series' row, its record, and its band's centre and half-width at a time.
Lookup = tuple[int, Record, float, float]


def _seasonal_band(
    records: npt.NDArray[np.void],
    seasonal: npt.NDArray[np.bool_],
    timestamps: npt.NDArray[np.float64],
    cols: _Columns,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The band's centre and half-width at each reading's time: the records'
    own for flat bands, interpolated between phases for seasonal ones."""
    pools = cols.pools
    if seasonal.all():
        return band_at(
            timestamps, records["period"], records["phases"], records["offset"],
            records["center"], pools.departure, pools.width,
        )  # fmt: skip
    at = np.flatnonzero(seasonal)
    picked = records[at]
    expected, width = records["center"].copy(), records["width"].copy()
    expected[at], width[at] = band_at(
        timestamps[at], picked["period"], picked["phases"], picked["offset"],
        picked["center"], pools.departure, pools.width,
    )  # fmt: skip
    return expected, width


def _band_one(record: Record, timestamp: float, pools: _Pools) -> tuple[float, float]:
    """`band_at` for one reading, in plain floats (the same operations)."""
    phases, period, offset = record.phases, record.period, record.offset
    below = (timestamp % period) * (phases / period) - 0.5
    step = math.floor(below)
    frac = below - step
    first = step % phases + offset
    second = (step + 1) % phases + offset
    rest = 1.0 - frac
    departure, width = pools.departure.item, pools.width.item
    expected = record.center + (rest * departure(first) + frac * departure(second))
    half = rest * width(first) + frac * width(second)
    return expected, max(half, MIN_WIDTH)
