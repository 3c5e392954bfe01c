"""A rollout's readings between production and its candidate (`candidates`).

Production scores every reading of a series in a rollout, as it would
without one: its state follows the stream, and its verdict is the reference
the candidate is judged against. The candidate scores the readings it answers
(or every one: `Split.every`); where it cannot (no model, a failure, a score
that is not a number), production's answer stands and the candidate counts
an error. An answer the candidate gave names it (`role`: CANARY, or
CHALLENGER for an A/B test's).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import structlog

from atalaia.core.rollout import COUNTERS, draw, draws
from atalaia.services.inference.candidates import (
    AGREE,
    C_ANOM,
    C_ERR,
    C_PRED,
    C_SLOW,
    P_ANOM,
    P_ERR,
    P_PRED,
    PAIRED,
    PAIRED_P_ANOM,
    SX,
    SXX,
    SXY,
    SY,
    SYY,
    Candidates,
    Routes,
    Split,
)
from atalaia.services.model_table import Scores, Tier

if TYPE_CHECKING:
    from atalaia.services.inference.data_plane import ScoredBatch, ScoredReading

log = structlog.get_logger()

_MODEL = int(Tier.MODEL)

# (series id, timestamp, value) of one reading; the aligned columns of many.
Reading = tuple[str, float, float]
Readings = tuple[Sequence[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]
ScoreOne = Callable[[Candidates, str, float, float], "ScoredReading"]
ScoreMany = Callable[
    [Candidates, Sequence[str], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    "ScoredBatch",
]


def routed_one(
    candidates: Candidates,
    routes: Routes,
    split: Split,
    reading: Reading,
    scored: ScoredReading,
    score: ScoreOne,
) -> ScoredReading:
    """`scored` (production's), or the candidate's answer when the reading is
    its to answer; its rollout's counters added to either way."""
    series_id, timestamp, value = reading
    routed = split.share > 0.0 and draw(split.key, timestamp) < split.share
    kept = candidates.kept(routes, split.row)
    if not (routed or split.every):
        _count_production(kept, scored)
        return scored
    started = time.perf_counter()
    try:
        mine: ScoredReading | None = score(candidates, series_id, timestamp, value)
    except Exception:  # a bug in a candidate: production answers, it counts
        log.error("inference.candidate_failed", series_id=series_id, exc_info=True)
        mine = None
    kept[C_PRED] += 1.0
    if (time.perf_counter() - started) * 1e3 >= split.slow_ms:
        kept[C_SLOW] += 1.0
    if (
        mine is None
        or mine.record.tier != _MODEL
        or not math.isfinite(mine.score)
        or (split.heavy and not _forest_read(candidates, routes, split.row))
    ):
        kept[C_ERR] += 1.0
        _count_production(kept, scored)
        return scored
    kept[C_ANOM] += mine.anomaly
    if scored.record.tier == _MODEL and math.isfinite(scored.score):
        x, y = scored.score, mine.score
        kept[PAIRED] += 1.0
        kept[AGREE] += mine.anomaly == scored.anomaly
        kept[PAIRED_P_ANOM] += scored.anomaly
        kept[SX] += x
        kept[SY] += y
        kept[SXX] += x * x
        kept[SYY] += y * y
        kept[SXY] += x * y
    if not routed:
        _count_production(kept, scored)
        return scored
    # Production's row, table and stream flags; the candidate's answer.
    answer = (
        scored.row, scored.known, mine.record, mine.expected, mine.width,
        mine.score, mine.anomaly, mine.reason, scored.fetched, scored.table,
        scored.stale, mine.state, split.role,
    )  # fmt: skip
    return tuple.__new__(type(scored), answer)  # past NamedTuple's slow __new__


def _forest_read(candidates: Candidates, routes: Routes, row: int) -> bool:
    """Whether a heavy candidate's forest could be read (else its band
    answered for it: it failed)."""
    return candidates.heavy.resident(routes.table.artifact_of(row) or "")


def _count_production(kept: list[float], scored: ScoredReading) -> None:
    """Count a reading production answered."""
    kept[P_PRED] += 1.0
    kept[P_ERR] += scored.record.tier != _MODEL
    kept[P_ANOM] += scored.anomaly


def routed_batch(
    candidates: Candidates,
    routes: Routes,
    rows: npt.NDArray[np.int64],
    at: npt.NDArray[np.intp],
    readings: Readings,
    scores: Scores,
    score: ScoreMany,
) -> None:
    """Give the candidates the readings `at` of `scores` (production's) that
    are theirs to answer, in place (`scores.role` set), their rollouts'
    counters added to; `rows`: those readings' rows in the candidates' table."""
    timestamps = readings[1]
    routed = draws(routes.key[rows], timestamps[at]) < routes.share[rows]
    scoring = np.flatnonzero(routed | routes.every[rows])
    added = np.zeros((at.size, len(COUNTERS)))
    answered = np.zeros(at.size, bool)
    if scoring.size:
        theirs = np.zeros((scoring.size, len(COUNTERS)))
        answered[scoring] = _score_candidates(
            candidates, routes, (rows[scoring], at[scoring], routed[scoring]),
            readings, scores, theirs, score,
        )  # fmt: skip
        added[scoring] = theirs
    production = np.flatnonzero(~answered)
    mine = at[production]
    added[production, P_PRED] = 1.0
    added[production, P_ERR] = scores.tier[mine] != _MODEL
    added[production, P_ANOM] = scores.anomaly[mine]
    candidates.count_many(routes, rows, added)


def _score_candidates(
    candidates: Candidates,
    routes: Routes,
    chosen: tuple[npt.NDArray[np.int64], npt.NDArray[np.intp], npt.NDArray[np.bool_]],
    readings: Readings,
    scores: Scores,
    added: npt.NDArray[np.float64],
    score: ScoreMany,
) -> npt.NDArray[np.bool_]:
    """Score the `chosen` readings (their candidate rows, their places in
    `scores`, whether each is the candidate's to answer) with the candidates;
    write their counters into `added` and their answers into `scores`; which
    readings the candidates answered."""
    rows, at, routed = chosen
    series_ids, timestamps, values = readings
    ids = [series_ids[i] for i in at.tolist()]
    started = time.perf_counter()
    try:
        theirs: Scores | None = score(
            candidates, ids, timestamps[at], values[at]
        ).scores
    except Exception:  # a bug in a candidate: production answers, it counts
        log.error("inference.candidates_failed", readings=at.size, exc_info=True)
        theirs = None
    elapsed_ms = (time.perf_counter() - started) * 1e3
    added[:, C_PRED] = 1.0
    added[:, C_SLOW] = elapsed_ms >= routes.slow_ms[rows]
    if theirs is None:
        added[:, C_ERR] = 1.0
        return np.zeros(at.size, bool)
    ok = (theirs.tier == _MODEL) & np.isfinite(theirs.score)
    heavy = np.flatnonzero(routes.heavy[rows])
    if heavy.size:
        read = {
            r: _forest_read(candidates, routes, r) for r in set(rows[heavy].tolist())
        }
        ok[heavy] &= np.array([read[r] for r in rows[heavy].tolist()], bool)
    added[:, C_ERR] = ~ok
    added[:, C_ANOM] = theirs.anomaly & ok
    x, y = scores.score[at], theirs.score
    paired = ok & (scores.tier[at] == _MODEL) & np.isfinite(x)
    x, y = np.where(paired, x, 0.0), np.where(paired, y, 0.0)
    added[:, PAIRED] = paired
    added[:, AGREE] = paired & (theirs.anomaly == scores.anomaly[at])
    added[:, PAIRED_P_ANOM] = paired & scores.anomaly[at]
    added[:, SX], added[:, SY] = x, y
    added[:, SXX], added[:, SYY], added[:, SXY] = x * x, y * y, x * y
    answers: npt.NDArray[np.bool_] = routed & ok
    _take_answers(
        scores, at[answers], theirs, np.flatnonzero(answers), routes.role[rows[answers]]
    )
    return answers


def _take_answers(
    scores: Scores,
    at: npt.NDArray[np.intp],
    theirs: Scores,
    of: npt.NDArray[np.intp],
    role: npt.NDArray[np.int8],
) -> None:
    """Put the candidates' answers `of` (their `role`s) in place of `scores`'
    readings `at`
    (a batch's columns are its own: `ModelTable.score` takes copies)."""
    if not at.size:
        return
    for name in (
        "score", "anomaly", "expected", "width", "reason", "tier", "version",
        "algorithm", "source", "stuck_after",
    ):  # fmt: skip
        getattr(scores, name)[at] = getattr(theirs, name)[of]
    if theirs.state is not None:
        if scores.state is None:
            scores.state = np.zeros(scores.rows.size, np.int8)
        scores.state[at] = theirs.state[of]
    if scores.role is None:
        scores.role = np.zeros(scores.rows.size, np.int8)
    scores.role[at] = role
