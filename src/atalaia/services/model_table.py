"""The in-memory table of every served model, held as numpy columns.

One row per series: its production model (if any) and the statistics of its
stored history (the low-confidence fallback). 285,000 rows take a few MB, and a
batch of readings of many series is scored in one vectorized pass.

One thread writes (warm load, change feed, reloads); request threads read. A row
update writes a handful of scalars, and growth swaps in new arrays at once.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from atalaia.adapters.db.repositories import ServedModel
from atalaia.core.detectors import DETECTORS, score_columns

ALGORITHMS: tuple[str, ...] = tuple(sorted(DETECTORS))
HISTORY_SIGMA = 3.0  # threshold of the fallback z-score on a series' history
_MIN_STD = 1e-12


class Source(IntEnum):
    """Where a row's model came from."""

    NONE = 0
    MEMORY = 1  # loaded from the registry into memory
    SNAPSHOT = 2  # loaded from the on-disk snapshot (registry unreachable)


class Tier(IntEnum):
    """Which link of the fallback chain answered a reading."""

    MODEL = 0
    HISTORY = 1
    DEFAULT = 2


@dataclass(slots=True)
class Scores:
    """Aligned per-reading results of a batch."""

    rows: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]
    anomaly: npt.NDArray[np.bool_]
    tier: npt.NDArray[np.int8]
    # What answered, read in the same pass as the parameters: a row may change
    # under a concurrent reload, but an answer never mixes two of its states.
    version: npt.NDArray[np.int64]
    algorithm: npt.NDArray[np.int8]
    source: npt.NDArray[np.int8]


@dataclass(slots=True)
class _Columns:
    version: npt.NDArray[np.int64]
    algorithm: npt.NDArray[np.int8]
    source: npt.NDArray[np.int8]
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    threshold: npt.NDArray[np.float64]
    hist_mean: npt.NDArray[np.float64]
    hist_std: npt.NDArray[np.float64]

    @classmethod
    def empty(cls, capacity: int) -> _Columns:
        return cls(
            version=np.zeros(capacity, np.int64),
            algorithm=np.zeros(capacity, np.int8),
            source=np.zeros(capacity, np.int8),
            center=np.zeros(capacity),
            scale=np.ones(capacity),
            threshold=np.ones(capacity),
            hist_mean=np.zeros(capacity),
            hist_std=np.zeros(capacity),
        )

    def grown(self, capacity: int) -> _Columns:
        bigger = _Columns.empty(capacity)
        for name in self.__dataclass_fields__:
            old = getattr(self, name)
            getattr(bigger, name)[: old.size] = old
        return bigger


@dataclass
class ModelTable:
    index: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    cols: _Columns = field(default_factory=lambda: _Columns.empty(1024))

    def __len__(self) -> int:
        """Number of series with a served model."""
        return int(np.count_nonzero(self.cols.version[: len(self.ids)]))

    def nbytes(self) -> int:
        return sum(getattr(self.cols, n).nbytes for n in self.cols.__dataclass_fields__)

    def _row(self, series_id: str) -> int:
        row = self.index.get(series_id)
        if row is None:
            row = len(self.ids)
            if row >= self.cols.version.size:
                self.cols = self.cols.grown(max(1024, 2 * row))
            self.ids.append(series_id)
            self.index[series_id] = row
        return row

    def set_models(self, models: Iterable[ServedModel], source: Source) -> None:
        for m in models:
            row, cols = self._row(m.series_id), self.cols
            cols.center[row], cols.scale[row] = m.center, m.scale
            cols.threshold[row] = m.threshold
            cols.algorithm[row] = ALGORITHMS.index(m.algorithm)
            cols.source[row] = source
            cols.version[row] = m.version  # last: a reader sees a model only when whole

    def clear_model(self, series_id: str) -> None:
        row = self.index.get(series_id)
        if row is not None:
            self.cols.version[row] = 0
            self.cols.source[row] = Source.NONE

    def set_history(
        self, series_ids: Sequence[str], means: np.ndarray, stds: np.ndarray
    ) -> None:
        rows = np.fromiter(
            (self._row(s) for s in series_ids), np.int64, len(series_ids)
        )
        self.cols.hist_mean[rows] = means
        self.cols.hist_std[rows] = stds

    def model_of(self, series_id: str) -> ServedModel | None:
        row = self.index.get(series_id)
        if row is None or not self.cols.version[row]:
            return None
        c = self.cols
        return ServedModel(
            series_id, int(c.version[row]), ALGORITHMS[c.algorithm[row]],
            float(c.center[row]), float(c.scale[row]), float(c.threshold[row]),
        )  # fmt: skip

    def rows_of(self, series_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        get = self.index.get
        return np.fromiter((get(s, -1) for s in series_ids), np.int64, len(series_ids))

    def score(
        self, rows: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
    ) -> Scores:
        """Score readings of rows (−1 = unknown series) through the fallback chain."""
        c = self.cols
        known = rows >= 0
        safe = np.where(known, rows, 0)
        version = np.where(known, c.version[safe], 0)
        has_model = version > 0
        hist_std = c.hist_std[safe]
        has_history = known & ~has_model & (hist_std > _MIN_STD)
        center = np.where(has_model, c.center[safe], c.hist_mean[safe])
        scale = np.where(has_model, c.scale[safe], hist_std)
        threshold = np.where(has_model, c.threshold[safe], HISTORY_SIGMA)
        usable = has_model | has_history
        scale = np.where(usable, np.maximum(scale, _MIN_STD), 1.0)
        score, anomaly = score_columns(center, scale, threshold, values)
        tier = np.full(rows.size, Tier.DEFAULT, np.int8)
        tier[has_history] = Tier.HISTORY
        tier[has_model] = Tier.MODEL
        return Scores(
            rows=rows,
            score=np.where(usable, score, 0.0),
            anomaly=anomaly & usable,
            tier=tier,
            version=version,
            algorithm=c.algorithm[safe],
            source=c.source[safe],
        )

    def save(self, path: Path) -> None:
        """Write the table to `path` atomically: the fallback when the DB is down."""
        n = len(self.ids)
        arrays = {
            name: getattr(self.cols, name)[:n]
            for name in self.cols.__dataclass_fields__
        }
        buffer = io.BytesIO()
        ids = np.frombuffer("\n".join(self.ids).encode(), np.uint8)
        np.savez(buffer, ids=ids, **arrays)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-")
        with os.fdopen(fd, "wb") as out:
            out.write(buffer.getvalue())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ModelTable:
        with np.load(path) as data:
            text = data["ids"].tobytes().decode()
            ids = text.split("\n") if text else []
            cols = _Columns.empty(max(1024, len(ids)))
            for name in cols.__dataclass_fields__:
                getattr(cols, name)[: len(ids)] = data[name]
        cols.source[cols.version > 0] = Source.SNAPSHOT
        return cls(index={s: i for i, s in enumerate(ids)}, ids=ids, cols=cols)
