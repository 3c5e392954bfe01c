"""The hot path's body parsers accept exactly what the Pydantic schemas accept, and
its answers are what the schemas document."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from atalaia.api.inference import answers
from atalaia.api.inference.bodies import parse_batch, parse_reading
from atalaia.api.inference.schemas import (
    BatchBody,
    BatchView,
    ColumnsBody,
    ColumnsView,
    PredictionView,
    Reading,
)
from atalaia.core.serving import ServedModel
from atalaia.errors import InvalidInput
from atalaia.services.inference import data_plane
from atalaia.services.model_table import ModelTable, Source
from fixtures.serving import FakeServing

# JSON values a client may send where a number is due: numbers of every kind,
# and the usual mistakes (strings, booleans, null, containers).
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
mistakes = st.one_of(
    st.booleans(), st.none(), st.text(max_size=5), st.lists(st.booleans(), max_size=2)
)
json_number = st.one_of(numbers, numbers, mistakes)
series_ids = st.one_of(
    st.sampled_from(["sensor_001_radial", "pump-7", "a", "x" * 128]),
    st.text(max_size=130),
    st.booleans(),
)


def readings(keys: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(keys, json_number, max_size=4)


def reference(schema: type[BaseModel], data: Any) -> BaseModel | None:
    """What the schema makes of a body; None if refused. (Series ids meet their
    rule in the route: see test_inference_routes.)"""
    try:
        return schema.model_validate(data)
    except ValidationError:
        return None


@given(readings(st.sampled_from(["timestamp", "value", "extra"])))
def test_single_reading_matches_its_schema(data: dict[str, Any]) -> None:
    expected = reference(Reading, data)
    body = orjson.dumps(data)

    if expected is None:
        with pytest.raises(InvalidInput) as refused:
            parse_reading(body)
        assert refused.value.rule == "request_schema"
    else:
        assert isinstance(expected, Reading)
        assert parse_reading(body) == (expected.timestamp, expected.value)


point = st.fixed_dictionaries(
    {"series_id": series_ids, "timestamp": json_number, "value": json_number},
    optional={"extra": st.booleans()},
)


@settings(max_examples=200)
@given(
    st.one_of(
        st.fixed_dictionaries({"points": st.lists(point, max_size=4)}),
        st.fixed_dictionaries(
            {"points": st.lists(point, max_size=4)}, optional={"more": st.booleans()}
        ),
        st.dictionaries(st.sampled_from(["points", "series_id"]), json_number),
    )
)
def test_row_batches_match_their_schema(data: dict[str, Any]) -> None:
    expected = reference(BatchBody, data)

    if expected is None:
        with pytest.raises(InvalidInput):
            parse_batch(orjson.dumps(data))
    else:
        assert isinstance(expected, BatchBody)
        batch = parse_batch(orjson.dumps(data))
        assert not batch.columnar
        assert batch.series_ids == [p.series_id for p in expected.points]
        assert batch.timestamps.tolist() == [p.timestamp for p in expected.points]
        assert batch.values.tolist() == [p.value for p in expected.points]


@settings(max_examples=200)
@given(
    st.integers(min_value=0, max_value=4).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "series_id": st.lists(series_ids, min_size=n, max_size=n + 1),
                "timestamp": st.lists(json_number, min_size=n, max_size=n),
                "value": st.lists(json_number, min_size=n, max_size=n),
            },
            optional={"extra": st.booleans()},
        )
    )
)
def test_columnar_batches_match_their_schema(data: dict[str, Any]) -> None:
    expected = reference(ColumnsBody, data)

    if expected is None:
        with pytest.raises(InvalidInput):
            parse_batch(orjson.dumps(data))
    else:
        assert isinstance(expected, ColumnsBody)
        batch = parse_batch(orjson.dumps(data))
        assert batch.columnar
        assert batch.series_ids == expected.series_id
        assert batch.timestamps.tolist() == expected.timestamp
        assert batch.values.tolist() == expected.value


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{", "body: invalid JSON"),
        (b'{"timestamp": 1}', "missing required field `value`"),
        (
            b'{"timestamp": "1", "value": 2}',
            "Expected `float`, got `str` - at `$.timestamp`",
        ),
        (b'{"timestamp": 1, "value": 2, "x": 3}', "unknown field `x`"),
        (b'{"timestamp": 1e999, "value": 2}', "out of range - at `$.timestamp`"),
        (b"[1, 2]", "Expected `object`, got `array`"),
    ],
)
def test_refusals_name_the_field_and_the_rule(body: bytes, detail: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_reading(body)

    assert refused.value.rule == "request_schema"
    assert detail in refused.value.detail


def documented(view: type[BaseModel], data: dict[str, Any]) -> bool:
    """Every field of an answer is one its schema documents (they allow extras)."""
    return set(data) <= set(view.model_fields)


@settings(max_examples=100)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "series_id": st.sampled_from(["served", "typo_of_served"]),
                "timestamp": numbers,
                "value": numbers,
            }
        ),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_answers_match_their_schemas(
    points: list[dict[str, Any]], columnar: bool
) -> None:
    body: dict[str, Any] = {"points": points}
    if columnar:
        body = {key: [p[key] for p in points] for key in points[0]}
    batch = parse_batch(orjson.dumps(body))
    table = ModelTable()
    table.set_models([ServedModel("served", 1, "zscore", 0.0, 1.0, 3.0)], Source.MEMORY)
    rows = table.rows_of(batch.series_ids)
    ids, timestamps, values = batch.series_ids, batch.timestamps, batch.values
    scores = table.score(rows, timestamps, values)

    if columnar:
        data = orjson.loads(
            answers.encode_columns(
                answers.columns_answer(ids, timestamps, values, scores)
            )
        )
        assert documented(ColumnsView, data)
        ColumnsView.model_validate(data)
    else:
        data = msgspec.json.decode(
            msgspec.json.encode(answers.rows_answer(ids, timestamps, values, scores))
        )
        assert all(documented(PredictionView, r) for r in data["results"])
        BatchView.model_validate(data)
    scored = data_plane.score_one(FakeServing(table), ids[0], 0.0, 0.0)
    single = answers.reading_answer(ids[0], 0.0, 0.0, scored)
    assert documented(PredictionView, single)
    assert PredictionView.model_validate(single).warning == single.get("warning")
