"""The model table's fast scoring equals a plain reading-by-reading reference.

The reference walks the fallback chain as documented — production model, else
z-score on the series' history (3σ) when its spread is usable, else the default
(score 0, no anomaly) — and scores a model with the library (`atalaia.detection`,
flat and seasonal bands alike), a history with the domain core's
`score_columns`.
"""

from __future__ import annotations

import msgspec
import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia.api.inference import answers
from atalaia.core.detectors import ModelParams, score_columns
from atalaia.core.detectors.bands import flat_band
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.serving import ServedModel
from atalaia.detection import BandModel
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


# A seasonal band as stored: a period and (departure, width) float32 pairs.
def f32(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, width=32)


bands = st.builds(
    lambda period, pairs: PhaseBand(
        period, 0.0, np.array([d for d, _ in pairs], np.float32),
        np.array([w for _, w in pairs], np.float32),
    ).to_bytes(),
    st.floats(min_value=60.0, max_value=1e6),
    st.lists(
        st.tuples(f32(-1e3, 1e3), f32(0.125, 1e3)),
        min_size=2, max_size=30,
    ),
)  # fmt: skip
# A model: version, algorithm, center, scale, threshold, where it came from (any
# Source but NONE, which is no model's), its band if seasonal, its stuck guard.
Spec = tuple[int, str, float, float, float, Source, bytes | None, int]
models = st.dictionaries(
    st.sampled_from(IDS),
    st.tuples(
        st.integers(1, 50),
        st.sampled_from(ALGORITHMS),
        finite,
        positive,
        st.floats(min_value=0.5, max_value=10),
        st.sampled_from([s for s in Source if s != Source.NONE]),
        st.one_of(st.none(), bands),
        st.sampled_from([0, 2, 3]),
    ),  # fmt: skip
)
histories = st.dictionaries(
    st.sampled_from(IDS), st.tuples(finite, st.one_of(st.just(0.0), positive))
)
readings = st.lists(
    st.tuples(
        st.sampled_from([*IDS, "unknown"]),
        st.floats(min_value=946_684_800.0, max_value=4_102_444_800.0),
        st.one_of(finite, st.sampled_from([0.0, 1.0])),  # repeats: runs
    ),
    max_size=30,
)


def reference(
    model: ServedModel | None,
    history: tuple[float, float] | None,
    timestamp: float,
    value: float,
) -> tuple[float, bool, Tier, int]:
    """(score, anomaly, tier, version) of one reading, straight from the rules."""
    if model is not None:
        params = ModelParams(model.center, model.scale, model.threshold)
        if model.band is None:
            band = flat_band(params)
        else:
            band = PhaseBand.from_bytes(model.center, model.band)
        result = BandModel(model.algorithm, {}, band).score([timestamp], [value])
        score, anomaly = result.anomaly_score[0], result.anomaly[0]
        return float(score), bool(anomaly), Tier.MODEL, model.version
    if history is not None and history[1] > 1e-12:
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
        version, algorithm, center, scale, threshold, source, band, guard = spec
        model = ServedModel(
            series_id, version, algorithm, center, scale, threshold, band,
            stuck_after=guard,
        )  # fmt: skip
        table.set_models([model], source)
        by_id[series_id] = model
    return table, by_id


Reading = tuple[str, float, float]  # series id, timestamp, value


def columns_of(batch: list[Reading]) -> tuple[list[str], np.ndarray, np.ndarray]:
    return (
        [s for s, _, _ in batch],
        np.array([t for _, t, _ in batch], np.float64),
        np.array([v for _, _, v in batch], np.float64),
    )


@settings(max_examples=300)
@given(models, histories, readings)
def test_batch_scoring_equals_the_reference(
    served: dict[str, Spec],
    history: dict[str, tuple[float, float]],
    batch: list[Reading],
) -> None:
    table, by_id = table_of(served, history)
    ids, timestamps, values = columns_of(batch)

    scores = table.score(table.rows_of(ids), timestamps, values)

    expected = [reference(by_id.get(s), history.get(s), t, v) for s, t, v in batch]
    assert scores.score.tolist() == [e[0] for e in expected]
    assert scores.anomaly.tolist() == [e[1] for e in expected]
    assert scores.tier.tolist() == [e[2] for e in expected]
    assert scores.version.tolist() == [e[3] for e in expected]


@settings(max_examples=300)
@given(models, histories, readings)
def test_single_reading_path_equals_the_batch_path(
    served: dict[str, Spec],
    history: dict[str, tuple[float, float]],
    batch: list[Reading],
) -> None:
    """Each reading of a batch is answered as it is alone, read in the order a
    batch advances its series' streams (by series, then time)."""
    serving = FakeServing(table_of(served, history)[0])
    ids, timestamps, values = columns_of(batch)
    scores = data_plane.score_batch(serving, ids, timestamps, values).scores
    rows = answers.rows_answer(ids, timestamps, values, scores)
    columns = orjson.loads(
        answers.encode_columns(answers.columns_answer(ids, timestamps, values, scores))
    )

    alone = FakeServing(table_of(served, history)[0])
    one_by_one: list[dict[str, object]] = [{}] * len(batch)
    for i in sorted(range(len(batch)), key=lambda i: batch[i][:2]):
        series_id, timestamp, value = batch[i]
        scored = data_plane.score_one(alone, series_id, timestamp, value)
        one_by_one[i] = answers.reading_answer(series_id, timestamp, value, scored)
    singles = msgspec.json.decode(msgspec.json.encode(one_by_one))

    assert msgspec.json.decode(msgspec.json.encode(rows["results"])) == singles
    for field in (
        "anomaly_score",
        "anomaly",
        "expected",
        "lower",
        "upper",
        "direction",
        "reason",
    ):
        assert columns[field] == [a[field] for a in singles]
    for field in ("version", "stage", "type", "loaded_from"):
        assert columns[field] == [a["model_info"][field] for a in singles]
    assert columns["confidence"] == [a["confidence"] for a in singles]
    assert columns["stale"] == [a["stale"] for a in singles]
    warnings = [a.get("warning") for a in singles]
    assert columns.get("warning", [None] * len(singles)) == warnings
