"""The model table's fast scoring equals a plain reading-by-reading reference.

The reference walks the fallback chain as documented — production model, else
z-score on the series' history (3σ) when its spread is usable, else the default
(score 0, no anomaly) — and scores with the domain core's `score_columns`.
"""

from __future__ import annotations

import msgspec
import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia.api.inference import answers
from atalaia.core.detectors import score_columns
from atalaia.core.serving import ServedModel
from atalaia.services.inference import data_plane
from atalaia.services.model_table import (
    ALGORITHMS,
    HISTORY_SIGMA,
    ModelTable,
    Source,
    Tier,
)
from fixtures.serving import FakeServing

IDS = [f"s{i}" for i in range(8)]
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
positive = st.floats(min_value=1e-9, max_value=1e3)
# A model: version, algorithm, center, scale, threshold, and where it came from
# (any Source but NONE, which is no model's).
Spec = tuple[int, str, float, float, float, Source]
models = st.dictionaries(
    st.sampled_from(IDS),
    st.tuples(
        st.integers(1, 50),
        st.sampled_from(ALGORITHMS),
        finite,
        positive,
        st.floats(min_value=0.5, max_value=10),
        st.sampled_from([s for s in Source if s != Source.NONE]),
    ),  # fmt: skip
)
histories = st.dictionaries(
    st.sampled_from(IDS), st.tuples(finite, st.one_of(st.just(0.0), positive))
)
readings = st.lists(st.tuples(st.sampled_from([*IDS, "unknown"]), finite), max_size=30)


def reference(
    model: ServedModel | None, history: tuple[float, float] | None, value: float
) -> tuple[float, bool, Tier, int]:
    """(score, anomaly, tier, version) of one reading, straight from the rules."""
    if model is not None:
        center, threshold = model.center, model.threshold
        scale = max(model.scale, 1e-12)
        tier, version = Tier.MODEL, model.version
    elif history is not None and history[1] > 1e-12:
        center, scale, threshold = history[0], history[1], HISTORY_SIGMA
        tier, version = Tier.HISTORY, 0
    else:
        return 0.0, False, Tier.DEFAULT, 0
    score, anomaly = score_columns(
        np.array([center]), np.array([scale]), np.array([threshold]), np.array([value])
    )
    return float(score[0]), bool(anomaly[0]), tier, version


def table_of(
    served: dict[str, Spec], history: dict[str, tuple[float, float]]
) -> tuple[ModelTable, dict[str, ServedModel]]:
    table = ModelTable()
    table.set_history(
        list(history),
        np.array([m for m, _ in history.values()]),
        np.array([s for _, s in history.values()]),
    )
    by_id = {}
    for series_id, spec in served.items():
        version, algorithm, center, scale, threshold, source = spec
        model = ServedModel(series_id, version, algorithm, center, scale, threshold)
        table.set_models([model], source)
        by_id[series_id] = model
    return table, by_id


@settings(max_examples=300)
@given(models, histories, readings)
def test_batch_scoring_equals_the_reference(
    served: dict[str, Spec],
    history: dict[str, tuple[float, float]],
    batch: list[tuple[str, float]],
) -> None:
    table, by_id = table_of(served, history)
    ids = [s for s, _ in batch]
    values = np.array([v for _, v in batch], np.float64)

    scores = table.score(table.rows_of(ids), values)

    expected = [reference(by_id.get(s), history.get(s), v) for s, v in batch]
    assert scores.score.tolist() == [e[0] for e in expected]
    assert scores.anomaly.tolist() == [e[1] for e in expected]
    assert scores.tier.tolist() == [e[2] for e in expected]
    assert scores.version.tolist() == [e[3] for e in expected]


@settings(max_examples=300)
@given(models, histories, readings)
def test_single_reading_path_equals_the_batch_path(
    served: dict[str, Spec],
    history: dict[str, tuple[float, float]],
    batch: list[tuple[str, float]],
) -> None:
    serving = FakeServing(table_of(served, history)[0])
    ids = [s for s, _ in batch]
    timestamps = np.arange(len(batch), dtype=np.float64)
    values = np.array([v for _, v in batch], np.float64)
    scores = data_plane.score_batch(serving, ids, values).scores
    rows = answers.rows_answer(ids, timestamps, scores)
    columns = orjson.loads(
        answers.encode_columns(answers.columns_answer(ids, timestamps, scores))
    )

    singles = [
        answers.reading_answer(
            series_id, timestamp, data_plane.score_one(serving, series_id, value)
        )
        for (series_id, value), timestamp in zip(
            batch, timestamps.tolist(), strict=True
        )
    ]

    assert msgspec.json.decode(msgspec.json.encode(rows["results"])) == singles
    assert columns["anomaly_score"] == [a["anomaly_score"] for a in singles]
    assert columns["anomaly"] == [a["anomaly"] for a in singles]
    for field in ("version", "stage", "type", "loaded_from"):
        assert columns[field] == [a["model_info"][field] for a in singles]
    assert columns["confidence"] == [a["confidence"] for a in singles]
    warnings = [a.get("warning") for a in singles]
    assert columns.get("warning", [None] * len(singles)) == warnings
