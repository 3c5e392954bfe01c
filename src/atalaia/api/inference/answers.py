"""Scores shaped into the answers of the prediction routes.

Every reading's answer names the model that gave it (`model_info`) and how much
to trust it (`confidence`). Batch answers are built column by column; the row
form shares one `model_info` object among the readings of a series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from atalaia.services.model_table import ALGORITHMS, Record, Scores, Source, Tier

# loaded_from of a model row, by its Source; a model just read from the
# database on a miss says "database" instead.
_LOADED_FROM: dict[int, str] = {Source.MEMORY: "memory", Source.SNAPSHOT: "snapshot"}
_FALLBACK_INFO: dict[int, dict[str, Any]] = {
    Tier.HISTORY: {
        "version": None, "stage": None, "type": "zscore", "loaded_from": "history"
    },
    Tier.DEFAULT: {
        "version": None, "stage": None, "type": "default", "loaded_from": "default"
    },
}  # fmt: skip
_CONFIDENCE = np.array(["high", "low", "low"], dtype=object)  # by Tier
# Column codes: the algorithms, then the two fallbacks' types.
_TYPES = np.array([*ALGORITHMS, "zscore", "default"], dtype=object)
_ORIGINS = np.array(
    ["", "memory", "snapshot", "history", "default", "database"], dtype=object
)
_STAGES = np.array(["production", None, None], dtype=object)  # by Tier
_HISTORY, _DEFAULT, _DATABASE = 3, 4, 5


class Result(msgspec.Struct, gc=False):
    """One reading's answer in a row-form batch (a struct: cheaper than a dict)."""

    series_id: str
    timestamp: float
    anomaly: bool
    anomaly_score: float
    model_info: dict[str, Any]
    confidence: str


def model_info(
    tier: int, version: int, algorithm: int, source: int, fetched: bool
) -> dict[str, Any]:
    if tier != Tier.MODEL:
        return _FALLBACK_INFO[tier]  # an IntEnum key matches its int
    return {
        "version": version,
        "stage": "production",
        "type": ALGORITHMS[algorithm],
        "loaded_from": "database" if fetched else _LOADED_FROM[source],
    }


def reading_answer(
    series_id: str,
    timestamp: float,
    score: float,
    record: Record,
    fetched: bool,
) -> dict[str, Any]:
    """The answer for one reading scored against a serving `record`."""
    _center, _width, version, tier, source, algorithm = record
    return {
        "series_id": series_id,
        "timestamp": timestamp,
        "anomaly": score > 1.0,
        "anomaly_score": score,
        "model_info": model_info(tier, version, algorithm, source, fetched),
        "confidence": "high" if tier == Tier.MODEL else "low",
    }


def _fetched_mask(scores: Scores, fetched_rows: Sequence[int]) -> npt.NDArray[np.bool_]:
    if not fetched_rows:
        return np.zeros(scores.rows.size, np.bool_)
    mask: npt.NDArray[np.bool_] = np.isin(scores.rows, fetched_rows) & (
        scores.tier == Tier.MODEL
    )
    return mask


def rows_answer(
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    scores: Scores,
    fetched_rows: Sequence[int] = (),
) -> dict[str, Any]:
    """{"count", "anomalies", "results": one answer object per reading}."""
    unique, first, inverse = np.unique(
        scores.rows, return_index=True, return_inverse=True
    )
    fetched = _fetched_mask(scores, fetched_rows)
    infos = np.empty(unique.size, dtype=object)
    for k, i in enumerate(first.tolist()):
        infos[k] = model_info(
            int(scores.tier[i]), int(scores.version[i]), int(scores.algorithm[i]),
            int(scores.source[i]), bool(fetched[i]),
        )  # fmt: skip
    results = list(
        map(
            Result,
            series_ids,
            timestamps.tolist(),
            scores.anomaly.tolist(),
            scores.score.tolist(),
            infos[inverse].tolist(),
            _CONFIDENCE[scores.tier].tolist(),
        )
    )
    count = len(results)
    return {"count": count, "anomalies": int(scores.anomaly.sum()), "results": results}


def columns_answer(
    series_ids: Sequence[str],
    timestamps: npt.NDArray[np.float64],
    scores: Scores,
    fetched_rows: Sequence[int] = (),
) -> dict[str, Any]:
    """One array per field, aligned with the request's."""
    model = scores.tier == Tier.MODEL
    fallback_code = np.where(scores.tier == Tier.HISTORY, 0, 1)
    origin = np.where(model, scores.source, np.where(fallback_code, _DEFAULT, _HISTORY))
    origin[_fetched_mask(scores, fetched_rows)] = _DATABASE
    version = np.full(scores.rows.size, None, dtype=object)
    version[model] = scores.version[model]
    return {
        "count": len(series_ids),
        "anomalies": int(scores.anomaly.sum()),
        "series_id": series_ids,
        "timestamp": timestamps.tolist(),
        "anomaly": scores.anomaly.tolist(),
        "anomaly_score": scores.score.tolist(),
        "version": version.tolist(),
        "stage": _STAGES[scores.tier].tolist(),
        "type": _TYPES[
            np.where(model, scores.algorithm, len(ALGORITHMS) + fallback_code)
        ].tolist(),
        "loaded_from": _ORIGINS[origin].tolist(),
        "confidence": _CONFIDENCE[scores.tier].tolist(),
    }
