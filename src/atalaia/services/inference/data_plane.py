"""Inference's data plane: readings in, scored records out, for every caller.

A reading is a series id, a time (epoch seconds: a seasonal band depends on it)
and a value.

Each reading goes through the fallback chain: the model table in memory; for a
series the table does not know, a lookup in Redis then the database (when one is
due, see `Predictor.due_lookups`), after which the table is read again; then the
series' history; then the default. The prediction routes, the tests and scoring
on ingest all score here.

Every reading of a series the table knows advances the series' stream state
(`SeriesStreams`) once per timestamp; a reading not newer than the newest seen
is `stale`. A model with a stuck guard (`auto`'s) flags the readings that
repeat one value for longer than its training did (reason `stuck`). A
streaming model (`forecast`, `changepoint`) scores a reading by its state,
which the reading advances; while the state is cold, its band answers.

A heavy model's series (an isolation forest) has a row like any other: its
band explains each reading, and answers while its forest cannot be read. Its
readings are then scored by the forest itself (`HeavyModels`), with the series'
recent readings.

The lookup blocks, and so does reading a forest missing from memory; a forest
costs about a millisecond of CPU a series. Workers call `score_one` /
`score_batch`, which do it all in their thread. An event loop calls
`score_one_async` / `score_batch_async`: they score from memory on the loop
(one reading of a forest in memory too: a thread would cost more), and run
the same chain in a worker thread when a lookup or a read is due, or a batch
holds readings of forests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple, Protocol

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from atalaia.core.detectors import forest, score_reading
from atalaia.core.detectors.stuck import Runs
from atalaia.core.series import check_series_id
from atalaia.services.inference import routing
from atalaia.services.inference.candidates import PRODUCTION, Candidates
from atalaia.services.inference.heavy import HeavyModels
from atalaia.services.inference.stream_models import STATELESS, STREAM_CODES
from atalaia.services.inference.streams import SeriesStreams
from atalaia.services.model_table import (
    ALGORITHMS,
    ISOLATED,
    STUCK,
    UNKNOWN_ROW,
    ModelTable,
    Record,
    Scores,
    Source,
    Tier,
)

# No model fetched on a miss (shared: nothing writes to it).
NOTHING_FETCHED: Mapping[int, Source] = MappingProxyType({})
_NOT_FETCHED = Source.NONE  # a global: cheaper to read than an Enum's member
_HEAVY = ALGORITHMS.index(forest.NAME)  # the algorithm code of heavy models
_MODEL = int(Tier.MODEL)
_STREAMING = frozenset(STREAM_CODES.tolist())  # streaming models' algorithm codes


class Serving(Protocol):
    """The model table, and how to fetch what it misses (the `Predictor`)."""

    @property
    def table(self) -> ModelTable: ...

    @property
    def heavy(self) -> HeavyModels: ...

    @property
    def streams(self) -> SeriesStreams: ...

    def due_lookups(self, unknown: Iterable[str]) -> set[str]:
        """Which of these series unknown to the table to look up now."""

    def look_up(self, series_ids: Iterable[str]) -> Mapping[str, Source]:
        """Fetch these series (blocking); where each one found with a model was."""


class RoutedServing(Serving, Protocol):
    """Production's serving, and the running rollouts' candidates beside it."""

    @property
    def candidates(self) -> Candidates: ...


class ScoredReading(NamedTuple):
    """One reading scored, in plain values (the single route's fast case)."""

    row: int  # its series' table row; UNKNOWN_ROW: a series the table lacks
    known: bool  # the table holds its series (a model, or at least history)
    record: Record
    expected: float  # the band's centre at the reading's time
    width: float  # and its half-width (inf: nothing known)
    score: float
    anomaly: bool
    reason: int  # an anomaly's, as an index into REASONS
    fetched: Source  # where a miss fetched its model from; NONE: none fetched
    table: ModelTable  # the table that scored it: `row` is its row
    stale: bool  # not after its series' newest reading: advanced nothing
    state: int  # its streaming model's state (`stream_models`: 0 for none)
    role: int  # who answered (`candidates.ROLES`): production, or a candidate


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """Readings scored, aligned with the request's (`scores.stale` set)."""

    scores: Scores
    fetched: Mapping[int, Source]  # table row → where a miss fetched its model from
    unknown: Sequence[str]  # per reading of a series the table lacks, its id


def score_one(
    serving: RoutedServing, series_id: str, timestamp: float, value: float
) -> ScoredReading:
    """Score one reading; blocks while a miss is looked up."""
    return _one(serving, series_id, timestamp, value, may_block=True)


def score_batch(
    serving: RoutedServing,
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    *,
    fetch: bool = True,
) -> ScoredBatch:
    """Score readings of many series in one pass; blocks while misses are looked
    up (`fetch`; else a series the table lacks is answered as unknown)."""
    return _batch(serving, series_ids, timestamps, values, may_block=True,
                  fetch=fetch)  # fmt: skip


class _LookupDue(Exception):
    """A lookup is due and the caller may not block: run the chain in a thread."""


async def score_one_async(
    serving: RoutedServing, series_id: str, timestamp: float, value: float
) -> ScoredReading:
    """`score_one` without blocking the event loop."""
    try:
        return _one(serving, series_id, timestamp, value, may_block=False)
    except _LookupDue:
        return await anyio.to_thread.run_sync(
            score_one, serving, series_id, timestamp, value
        )


async def score_batch_async(
    serving: RoutedServing,
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
) -> ScoredBatch:
    """`score_batch` without blocking the event loop."""
    try:
        return _batch(serving, series_ids, timestamps, values, may_block=False)
    except _LookupDue:
        return await anyio.to_thread.run_sync(
            score_batch, serving, series_ids, timestamps, values
        )


def _one(
    serving: RoutedServing, series_id: str, timestamp: float, value: float, *,
    may_block: bool,
) -> ScoredReading:  # fmt: skip
    routes = serving.candidates.routes
    split = routes.splits.get(series_id) if routes.splits else None
    if split is None:
        return _scored_one(serving, series_id, timestamp, value, may_block=may_block)
    if split.heavy and not may_block:
        raise _LookupDue  # its candidate's forest may block: all of it in a thread
    scored = _scored_one(serving, series_id, timestamp, value, may_block=may_block)
    return routing.routed_one(
        serving.candidates, routes, split, (series_id, timestamp, value), scored,
        _candidate_one,
    )  # fmt: skip


def _scored_one(
    serving: Serving, series_id: str, timestamp: float, value: float, *,
    may_block: bool,
) -> ScoredReading:  # fmt: skip
    table = serving.table
    # No numpy call: cheaper for one.
    row, record, expected, width = table.record(series_id, timestamp)
    fetched = _NOT_FETCHED
    if row == UNKNOWN_ROW:
        found = _look_up(serving, (series_id,), may_block=may_block)
        if found is not None:
            fetched = found.get(series_id, _NOT_FETCHED)
            table = serving.table
            row, record, expected, width = table.record(series_id, timestamp)
    score = score_reading(expected, width, value)
    reason = 1 if record.phases else 0  # REASONS: outside_(seasonal_)band
    if record.algorithm == _HEAVY and record.tier == _MODEL:
        key = table.artifact_of(row) or ""
        if not may_block and not serving.heavy.resident(key):
            raise _LookupDue  # reading a forest blocks
        verdicts = serving.heavy.score(
            series_id, record.version, key, np.array([timestamp]), np.array([value])
        )
        if verdicts is not None:  # else the band's verdict stands
            score = float(verdicts.score[0])
            reason = ISOLATED if verdicts.isolated[0] else reason
    # Advanced only now: every step before may hand the reading to a thread.
    if record.algorithm in _STREAMING and record.tier == _MODEL:
        reading = (timestamp, expected, width, value)
        run, stale, (state, answer) = serving.streams.model_one(
            table, row, record, reading
        )
        if answer is not None:
            score, expected, width, cause = answer
            reason = reason if cause < 0 else cause
    else:
        run, stale = serving.streams.one(table, row, timestamp, value)
        state = STATELESS
    limit = record.stuck_after
    if limit and run > limit:
        score, reason = max(score, run / limit), STUCK
    scored = (
        row, row != UNKNOWN_ROW, record, expected, width, score, score > 1.0,
        reason, fetched, table, stale, state, PRODUCTION,
    )  # fmt: skip
    return tuple.__new__(ScoredReading, scored)  # past NamedTuple's slow __new__


def _batch(
    serving: RoutedServing,
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    *,
    may_block: bool,
    fetch: bool = True,
) -> ScoredBatch:
    routes = serving.candidates.routes
    if not routes.splits:
        return _scored_batch(serving, series_ids, timestamps, values,
                             may_block=may_block, fetch=fetch)  # fmt: skip
    if not may_block and routes.heavy.any():
        candidate_rows = routes.table.rows_of(series_ids)
        if routes.heavy[candidate_rows].any():
            raise _LookupDue  # a candidate's forest may block: all in a thread
    scored = _scored_batch(serving, series_ids, timestamps, values,
                           may_block=may_block, fetch=fetch)  # fmt: skip
    candidate_rows = routes.rows_for(scored.scores.table, scored.scores.rows)
    at = np.flatnonzero(candidate_rows)
    if at.size:
        routing.routed_batch(
            serving.candidates, routes, candidate_rows[at], at,
            (series_ids, timestamps, values), scored.scores, _candidate_batch,
        )  # fmt: skip
    return scored


def _candidate_one(
    candidates: Candidates, series_id: str, timestamp: float, value: float
) -> ScoredReading:
    """A reading scored by its candidate (none of them blocks: `_one` sent
    a heavy one to a thread)."""
    return _scored_one(candidates, series_id, timestamp, value, may_block=True)


def _candidate_batch(
    candidates: Candidates,
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
) -> ScoredBatch:
    """Readings scored by their candidates (as `_candidate_one`)."""
    return _scored_batch(candidates, series_ids, timestamps, values,
                         may_block=True, fetch=False)  # fmt: skip


def _scored_batch(
    serving: Serving,
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    *,
    may_block: bool,
    fetch: bool = True,
) -> ScoredBatch:
    table = serving.table
    rows = table.rows_of(series_ids)
    fetched = NOTHING_FETCHED
    unknown: Sequence[str] = ()
    if fetch and not rows.all():
        found = _look_up(serving, _unknown(series_ids, rows), may_block=may_block)
        if found is not None:
            table = serving.table
            rows = table.rows_of(series_ids)
            fetched = {table.index[s]: source for s, source in found.items()}
    if not rows.all():
        unknown = _unknown(series_ids, rows)
    scores = table.score(rows, timestamps, values)
    heavy = (scores.algorithm == _HEAVY) & (scores.tier == _MODEL)
    if heavy.any():
        _score_heavy(serving, scores, np.flatnonzero(heavy), timestamps, values,
                     may_block=may_block)  # fmt: skip
    runs = serving.streams.many(table, rows, timestamps, values)  # as for one
    serving.streams.models_many(scores, timestamps, values, runs.stale)
    _guard_stuck(scores, runs)
    scores.stale = runs.stale
    return ScoredBatch(scores, fetched, unknown)


def _guard_stuck(scores: Scores, runs: Runs) -> None:
    """Flag, in place, the readings of guarded models whose run is over their
    limit (`core.detectors.stuck`)."""
    limit = scores.stuck_after
    stuck = np.flatnonzero((limit > 0) & (runs.run > limit))
    if stuck.size:
        own = runs.run[stuck] / limit[stuck]
        scores.score[stuck] = np.maximum(scores.score[stuck], own)
        scores.anomaly[stuck] = True
        scores.reason[stuck] = STUCK


def _score_heavy(
    serving: Serving,
    scores: Scores,
    at: npt.NDArray[np.intp],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    *,
    may_block: bool,
) -> None:
    """Score the readings `at` (of heavy models) by their series' forests, in
    place (the band's reason stays where the band gave the score); a series
    whose forest cannot be read keeps its band's verdicts."""
    if not may_block:  # a millisecond or more a series: not on the event loop
        raise _LookupDue
    table, heavy = scores.table, serving.heavy
    rows = scores.rows[at]
    keys = {row: table.artifact_of(row) or "" for row in np.unique(rows).tolist()}
    for row, key in keys.items():
        mine = at[rows == row]
        verdicts = heavy.score(
            table.ids[row], int(scores.version[mine[0]]), key,
            timestamps[mine], values[mine],
        )  # fmt: skip
        if verdicts is not None:
            scores.score[mine] = verdicts.score
            scores.anomaly[mine] = verdicts.score > 1.0
            scores.reason[mine[verdicts.isolated]] = ISOLATED


def _unknown(series_ids: Sequence[str], rows: npt.NDArray[np.int64]) -> list[str]:
    """Per reading of a series the table lacks, its id."""
    pairs = zip(series_ids, rows.tolist(), strict=True)
    return [s for s, row in pairs if row == UNKNOWN_ROW]


def _look_up(
    serving: Serving, unknown: Iterable[str], *, may_block: bool
) -> Mapping[str, Source] | None:
    """Fetch the series unknown to the table whose lookup is due; None when none
    is (the table need not be read again). Their ids are checked first: they
    come from the request, and only a known id is sure to be well formed."""
    misses = set(unknown)
    for series_id in misses:
        check_series_id(series_id)
    due = serving.due_lookups(misses)
    if not due:
        return None
    if not may_block:
        raise _LookupDue
    return serving.look_up(due)
