"""Scores shaped into the answers of the prediction routes.

Every reading's answer names the model that gave it (`model_info`), how much
to trust it (`confidence`) and explains itself: the band at that reading's time
(`expected`, `lower`, `upper`; null where nothing is known), and for an anomaly
its `direction` (above or below the band) and `reason` (see `Reason`); and
whether it was `stale` (not after its series' newest reading seen); a
streaming model's answers say its `state` (`warm`; `cold`: rebuilding, its band
answered), null for the others. Batch
answers are built column by column; the row form embeds one `model_info`,
encoded once, in the readings of the same kind of model.

A reading of a series with no model and no history (unknown to the table, e.g. a
mistyped id) is answered with the default and carries a `warning`; answers
without one keep their shape (no `warning` field, or column, at all).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from atalaia.core.explanations import Direction
from atalaia.services.inference.candidates import ROLES
from atalaia.services.inference.data_plane import NOTHING_FETCHED, ScoredReading
from atalaia.services.inference.stream_models import STATES
from atalaia.services.model_table import (
    ALGORITHMS,
    REASONS,
    UNKNOWN_ROW,
    Scores,
    Source,
    Tier,
)

Code = TypeVar("Code", bound=IntEnum)


def _by_code(codes: type[Code], names: Mapping[Code, Any]) -> npt.NDArray[np.object_]:
    """`names`, one per member of `codes`, in an array indexed by the code."""
    assert set(names) == set(codes), f"name every {codes.__name__}"
    assert sorted(codes) == [*range(len(codes))], f"{codes.__name__}: 0, 1, 2…"
    table = np.empty(len(codes), dtype=object)
    for code, name in names.items():
        table[code] = name
    return table


# loaded_from of a model row, by its Source; a model just fetched on a miss says
# where it was fetched from instead ("redis" or "database").
_LOADED_FROM: dict[Source, str] = {
    Source.MEMORY: "memory",
    Source.SNAPSHOT: "snapshot",
    Source.REDIS: "redis",
    Source.DATABASE: "database",
}
# The model_info of a fallback, by its Tier: the answer of a series without a model.
_FALLBACK_INFO: dict[Tier, dict[str, Any]] = {
    Tier.HISTORY: {
        "version": None, "stage": None, "type": "zscore", "loaded_from": "history",
        "role": None,
    },
    Tier.DEFAULT: {
        "version": None, "stage": None, "type": "default", "loaded_from": "default",
        "role": None,
    },
}  # fmt: skip
# A model's stage by who answered (`candidates.ROLES`): production's, or a
# rollout's candidate (a Staging version).
_STAGE_OF_ROLE = ("production", "staging", "staging")


def _of_fallbacks(field: str) -> dict[Tier, Any]:
    """Each Tier's `field` of model_info: a fallback's; None for a model's own."""
    return {Tier.MODEL: None} | {t: info[field] for t, info in _FALLBACK_INFO.items()}


_CONFIDENCE = _by_code(
    Tier, {Tier.MODEL: "high", Tier.HISTORY: "low", Tier.DEFAULT: "low"}
)
_STAGES = np.append(
    _by_code(Tier, _of_fallbacks("stage") | {Tier.MODEL: "production"}), "staging"
)
_ROLE_NAMES = np.array([*ROLES, None], dtype=object)  # past them: a fallback's
# Codes of the columnar answer's `type` and `loaded_from`: a model's algorithm
# (its Source), then, past them, a fallback's Tier.
_TYPES = np.concatenate(
    [np.array(ALGORITHMS, dtype=object), _by_code(Tier, _of_fallbacks("type"))]
)
_ORIGINS = np.concatenate(
    [
        _by_code(Source, {Source.NONE: "", **_LOADED_FROM}),  # NONE: no model
        _by_code(Tier, _of_fallbacks("loaded_from")),
    ]
)


def _shifts(*sizes: int) -> list[int]:
    """Where fields of `sizes` codes each start when packed from the low bit up,
    and the first bit past them."""
    shifts = [0]
    for size in sizes:
        shifts.append(shifts[-1] + (size - 1).bit_length())
    return shifts


# `_kinds` packs a reading's model_info into one int64, from the low bit up: the
# Source it was fetched from, its Source, its algorithm, its Tier, its role,
# its version.
_, _SOURCE_AT, _ALGORITHM_AT, _TIER_AT, _ROLE_AT, _VERSION_AT = _shifts(
    len(Source), len(Source), len(ALGORITHMS), len(Tier), len(ROLES)
)
assert _VERSION_AT <= 31, "versions below 2**32 fit above the codes"
# A reading's direction and reason as codes: 0 for none (not an anomaly).
_DIRECTIONS = np.array([None, Direction.ABOVE, Direction.BELOW], dtype=object)
_REASON_CODES = np.array([None, *REASONS], dtype=object)
UNKNOWN_SERIES_WARNING = (
    "unknown_series: no model and no history for this series; answered with the default"
)


class Result(msgspec.Struct, gc=False):
    """One reading's answer in a row-form batch (a struct: cheaper than a dict)."""

    series_id: str
    timestamp: float
    anomaly: bool
    anomaly_score: float
    expected: float | None  # inf and NaN are written as null
    lower: float | None
    upper: float | None
    direction: str | None
    reason: str | None
    model_info: msgspec.Raw  # the JSON of a `model_info`
    confidence: str
    stale: bool
    state: str | None


class WarnedResult(Result, gc=False):
    """A `Result` with a warning: apart, so the usual answer costs nothing more."""

    warning: str


@functools.lru_cache(maxsize=4096)
def model_info(
    tier: int, version: int, algorithm: int, source: int, fetched: int, role: int = 0
) -> dict[str, Any]:
    """`fetched`: the Source a miss fetched the model from, 0 if it was in memory;
    `role`: who answered (`candidates.ROLES`).

    Cached: answers share these dicts (encoded, never changed), so a batch builds
    one per kind of model, not one per reading."""
    if tier != Tier.MODEL:
        return _FALLBACK_INFO[Tier(tier)]
    return {
        "version": version,
        "stage": _STAGE_OF_ROLE[role],
        "type": ALGORITHMS[algorithm],
        "loaded_from": _LOADED_FROM[Source(fetched or source)],
        "role": ROLES[role],
    }


@functools.lru_cache(maxsize=4096)
def model_info_json(
    tier: int, version: int, algorithm: int, source: int, fetched: int, role: int
) -> msgspec.Raw:
    """`model_info` as JSON, encoded once per kind of model (for `Result`)."""
    info = model_info(tier, version, algorithm, source, fetched, role)
    return msgspec.Raw(msgspec.json.encode(info))


def reading_answer(
    series_id: str, timestamp: float, value: float, scored: ScoredReading
) -> dict[str, Any]:
    """The answer for one reading."""
    record = scored.record
    expected, width = scored.expected, scored.width
    if width == math.inf:
        expected = math.nan  # nothing known: written as null
    direction = reason = None
    if scored.anomaly:
        direction = Direction.ABOVE if value > expected else Direction.BELOW
        reason = REASONS[scored.reason]
    answer: dict[str, Any] = {
        "series_id": series_id,
        "timestamp": timestamp,
        "anomaly": scored.anomaly,
        "anomaly_score": scored.score,
        "expected": expected,
        "lower": expected - width,
        "upper": expected + width,
        "direction": direction,
        "reason": reason,
        "model_info": model_info(
            record.tier, record.version, record.algorithm, record.source,
            scored.fetched, scored.role,
        ),
        "confidence": _CONFIDENCE[record.tier],
        "stale": scored.stale,
        "state": STATES[scored.state],
    }  # fmt: skip
    if not scored.known:
        answer["warning"] = UNKNOWN_SERIES_WARNING
    return answer


def _fetched_origin(scores: Scores, fetched: Mapping[int, int]) -> npt.NDArray[np.int8]:
    """Per reading, the Source its model was fetched from on a miss (0: none)."""
    if not fetched:
        return np.zeros(scores.rows.size, np.int8)
    by_row = np.zeros(max(max(fetched), int(scores.rows.max())) + 1, np.int8)
    by_row[list(fetched)] = list(fetched.values())
    origin: npt.NDArray[np.int8] = by_row[scores.rows] * (scores.tier == Tier.MODEL)
    return origin


def _kinds(scores: Scores, origin: npt.NDArray[np.int8]) -> npt.NDArray[np.int64]:
    """Each reading's model_info as one number (packed as `_shifts` says)."""
    kind = scores.version << _VERSION_AT
    if scores.role is not None:
        kind |= scores.role.astype(np.int64) << _ROLE_AT
    for field, shift in (
        (scores.tier, _TIER_AT),
        (scores.algorithm, _ALGORITHM_AT),
        (scores.source, _SOURCE_AT),
    ):
        kind |= field.astype(np.int64) << shift
    kind |= origin
    return kind


@dataclass(frozen=True, slots=True)
class _Explained:
    """The explanation columns of a batch (see the module's docstring)."""

    expected: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    direction: list[str | None]
    reason: list[str | None]

    @classmethod
    def of(cls, values: npt.NDArray[np.float64], scores: Scores) -> _Explained:
        expected, width = np.ascontiguousarray(scores.expected), scores.width
        known = np.isfinite(width)
        if not known.all():
            expected = np.where(known, expected, np.nan)
        anomaly = scores.anomaly.view(np.int8)
        below = (values < expected).view(np.int8)
        return cls(
            expected,
            expected - width,
            expected + width,
            _named(_DIRECTIONS, anomaly + anomaly * below),
            _named(_REASON_CODES, anomaly * (scores.reason + 1)),
        )


def rows_answer(
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    scores: Scores,
    fetched: Mapping[int, int] = NOTHING_FETCHED,
) -> dict[str, Any]:
    """{"count", "anomalies", "results": one answer object per reading}.

    `fetched`: table row → the Source a miss fetched its model from."""
    # One model_info per kind of model in the batch, encoded once (cached), read
    # off any one reading of that kind.
    origin = _fetched_origin(scores, fetched)
    kinds, inverse = np.unique(_kinds(scores, origin), return_inverse=True)
    any_one = np.empty(kinds.size, np.intp)
    any_one[inverse] = np.arange(inverse.size)
    per_kind = list(
        map(
            model_info_json,
            scores.tier[any_one].tolist(),
            scores.version[any_one].tolist(),
            scores.algorithm[any_one].tolist(),
            scores.source[any_one].tolist(),
            origin[any_one].tolist(),
            _roles_of(scores, any_one),
        )
    )
    infos = list(map(per_kind.__getitem__, inverse.tolist()))
    explained = _Explained.of(values, scores)
    results = list(
        map(
            Result,
            series_ids,
            timestamps.tolist(),
            scores.anomaly.tolist(),
            scores.score.tolist(),
            explained.expected.tolist(),
            explained.lower.tolist(),
            explained.upper.tolist(),
            explained.direction,
            explained.reason,
            infos,
            _named(_CONFIDENCE, scores.tier),
            _stale(scores).tolist(),
            _states(scores),
        )
    )
    for at in _unknown_at(scores).tolist():
        fields = msgspec.structs.asdict(results[at])
        results[at] = WarnedResult(**fields, warning=UNKNOWN_SERIES_WARNING)
    count = len(results)
    return {"count": count, "anomalies": int(scores.anomaly.sum()), "results": results}


def columns_answer(
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    scores: Scores,
    fetched: Mapping[int, int] = NOTHING_FETCHED,
) -> dict[str, Any]:
    """One array per field, aligned with the request's (`fetched` as for rows).

    Numeric fields stay numpy arrays: `encode_columns` writes them without
    turning each number into a Python object."""
    model = scores.tier == Tier.MODEL
    origin = np.where(model, scores.source, len(Source) + scores.tier)
    if fetched:
        fetched_origin = _fetched_origin(scores, fetched)
        origin = np.where(fetched_origin > 0, fetched_origin, origin)
    if model.all():
        version: Any = np.ascontiguousarray(scores.version)
    else:
        version = np.full(scores.rows.size, None, dtype=object)
        version[model] = scores.version[model]
        version = version.tolist()
    explained = _Explained.of(values, scores)
    answer: dict[str, Any] = {
        "count": len(series_ids),
        "anomalies": int(scores.anomaly.sum()),
        "series_id": series_ids,
        "timestamp": timestamps,
        "anomaly": scores.anomaly,
        "anomaly_score": scores.score,
        "expected": explained.expected,
        "lower": explained.lower,
        "upper": explained.upper,
        "direction": explained.direction,
        "reason": explained.reason,
        "version": version,
        "stage": _named(_STAGES, _stage_codes(scores)),
        "type": _named(
            _TYPES, np.where(model, scores.algorithm, len(ALGORITHMS) + scores.tier)
        ),
        "loaded_from": _named(_ORIGINS, origin),
        "confidence": _named(_CONFIDENCE, scores.tier),
        "stale": _stale(scores),
        "state": _states(scores),
        "role": _named(_ROLE_NAMES, np.where(model, _roles(scores), len(ROLES))),
    }
    unknown_at = _unknown_at(scores)
    if unknown_at.size:
        warning = np.full(scores.rows.size, None, dtype=object)
        warning[unknown_at] = UNKNOWN_SERIES_WARNING
        answer["warning"] = warning.tolist()
    return answer


def _roles(scores: Scores) -> npt.NDArray[np.int8]:
    """Per reading, who answered it (`candidates.ROLES`)."""
    if scores.role is None:
        return np.zeros(scores.rows.size, np.int8)
    return scores.role


def _roles_of(scores: Scores, at: npt.NDArray[np.intp]) -> list[int]:
    """The roles of the readings `at` (no column made when production
    answered them all)."""
    if scores.role is None:
        return [0] * at.size
    roles: list[int] = scores.role[at].tolist()
    return roles


def _stage_codes(scores: Scores) -> npt.NDArray[np.int64]:
    """Per reading, its stage's code in `_STAGES`: its Tier's, and past them
    a candidate's (Staging)."""
    codes = scores.tier.astype(np.int64)
    if scores.role is not None:
        codes[scores.role > 0] = len(Tier)
    return codes


def _stale(scores: Scores) -> npt.NDArray[np.bool_]:
    """Per reading, whether it was stale (none when no stream state was kept)."""
    if scores.stale is None:
        return np.zeros(scores.rows.size, bool)
    return scores.stale


_STATE_NAMES = np.array(STATES, dtype=object)


def _states(scores: Scores) -> list[str | None]:
    """Per reading, its streaming model's state (None: a stateless model)."""
    if scores.state is None:
        return [None] * scores.rows.size
    return _named(_STATE_NAMES, scores.state)


def _unknown_at(scores: Scores) -> npt.NDArray[np.intp]:
    """The positions of the readings of series unknown to the table."""
    return np.flatnonzero(scores.rows == UNKNOWN_ROW)


def _named(names: npt.NDArray[np.object_], codes: npt.NDArray[Any]) -> list[Any]:
    """The name of each code; one name repeated when the codes are all the same
    (the usual batch: every reading answered by the same kind of model)."""
    if codes.size and (codes == codes[0]).all():
        return [names[codes[0]]] * codes.size
    named: list[Any] = names[codes].tolist()
    return named


def encode_columns(answer: Mapping[str, Any]) -> bytes:
    """A `columns_answer` as JSON, numpy arrays included."""
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
