"""Prediction answers say where each model came from (`loaded_from`)."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from atalaia.api.inference import answers
from atalaia.core.serving import ServedModel
from atalaia.services.inference import data_plane
from atalaia.services.model_table import ALGORITHMS, ModelTable, Scores, Source
from fixtures.serving import FakeServing

IDS = ["a", "b", "h", "a", "c"]


def scored() -> tuple[ModelTable, Scores]:
    table = ModelTable()
    table.set_models(
        [
            ServedModel("a", 1, "zscore", 0.0, 1.0, 3.0),
            ServedModel("b", 2, "zscore", 0.0, 1.0, 3.0),
            ServedModel("c", 3, "zscore", 0.0, 1.0, 3.0),
        ],
        Source.MEMORY,
    )
    table.set_history(["h"], np.array([0.0]), np.array([1.0]))
    return table, table.score(
        table.rows_of(IDS), np.zeros(len(IDS)), np.zeros(len(IDS))
    )


def encoded(columns: dict[str, Any]) -> Any:
    """A columnar answer as its client reads it."""
    return orjson.loads(answers.encode_columns(columns))


class TestLoadedFrom:
    def test_a_model_fetched_on_a_miss_names_its_source(self) -> None:
        table, scores = scored()
        fetched = {
            table.index["a"]: Source.REDIS,
            table.index["b"]: Source.DATABASE,
            table.index["h"]: Source.REDIS,  # no model: the history answers
        }
        expected = ["redis", "database", "history", "redis", "memory"]
        timestamps = np.zeros(len(IDS))

        columns = encoded(
            answers.columns_answer(IDS, timestamps, timestamps, scores, fetched)
        )
        rows = answers.rows_answer(IDS, timestamps, timestamps, scores, fetched)

        assert columns["loaded_from"] == expected
        results = msgspec.json.decode(msgspec.json.encode(rows["results"]))
        assert [r["model_info"]["loaded_from"] for r in results] == expected

    def test_nothing_fetched_answers_from_memory(self) -> None:
        _table, scores = scored()

        columns = encoded(
            answers.columns_answer(IDS, np.zeros(len(IDS)), np.zeros(len(IDS)), scores)
        )

        assert columns["loaded_from"] == [
            "memory", "memory", "history", "memory", "memory"
        ]  # fmt: skip


# The answers' words, written out: the reference their tables are built to match.
LOADED_FROM = {
    Source.MEMORY: "memory",
    Source.SNAPSHOT: "snapshot",
    Source.REDIS: "redis",
    Source.DATABASE: "database",
}
# A series: a model (version, algorithm, and its Source: any but NONE, which is
# no model's), history alone or nothing; then where a miss fetched it from
# (NONE: nowhere). Few versions: models that differ in nothing else meet often.
Kind = tuple[int, str, Source] | str
kinds_of_series = st.tuples(
    st.one_of(
        st.tuples(
            st.sampled_from([1, 2, 2**31 - 1]),
            st.sampled_from(ALGORITHMS),
            st.sampled_from([s for s in Source if s != Source.NONE]),
        ),
        st.sampled_from(["history", "unknown"]),
    ),
    st.sampled_from(Source),
)


def expected_info(kind: Kind, fetched: Source) -> dict[str, Any]:
    if isinstance(kind, str):  # no model: the history's z-score, or the default
        history = kind == "history"
        return {
            "version": None,
            "stage": None,
            "type": "zscore" if history else "default",
            "loaded_from": "history" if history else "default",
            "role": None,
        }
    version, algorithm, source = kind
    return {
        "version": version,
        "stage": "production",
        "type": algorithm,
        "loaded_from": LOADED_FROM[fetched or source],
        "role": "production",
    }


@settings(max_examples=300)
@given(
    st.lists(kinds_of_series, min_size=1, max_size=12).flatmap(
        lambda kinds: st.tuples(
            st.just(kinds), st.lists(st.integers(0, len(kinds) - 1), min_size=1)
        )
    )
)
def test_every_kind_of_model_answers_with_its_own_info(
    drawn: tuple[list[tuple[Kind, Source]], list[int]],
) -> None:
    kinds, readings = drawn
    table, fetched = ModelTable(), dict[int, Source]()
    for i, (kind, fetched_from) in enumerate(kinds):
        if kind == "history":
            table.set_history([f"s{i}"], np.array([0.0]), np.array([1.0]))
        elif isinstance(kind, tuple):
            version, algorithm, source = kind
            model = ServedModel(f"s{i}", version, algorithm, 0.0, 1.0, 3.0)
            table.set_models([model], source)
        if kind != "unknown":
            fetched[table.index[f"s{i}"]] = fetched_from
    ids = [f"s{i}" for i in readings]
    scores = table.score(table.rows_of(ids), np.zeros(len(ids)), np.zeros(len(ids)))
    timestamps = np.zeros(len(ids))

    columns = encoded(
        answers.columns_answer(ids, timestamps, timestamps, scores, fetched)
    )
    rows = orjson.loads(
        msgspec.json.encode(
            answers.rows_answer(ids, timestamps, timestamps, scores, fetched)
        )
    )

    expected = [expected_info(*kinds[i]) for i in readings]
    assert [r["model_info"] for r in rows["results"]] == expected
    for field in ("version", "stage", "type", "loaded_from", "role"):
        assert columns[field] == [info[field] for info in expected]
    confidence = ["low" if info["stage"] is None else "high" for info in expected]
    assert [r["confidence"] for r in rows["results"]] == confidence
    assert columns["confidence"] == confidence


def answered(ids: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(columnar answer, row answers) to readings of `ids`, as clients read them."""
    table, _scores = scored()
    scores = table.score(table.rows_of(ids), np.zeros(len(ids)), np.zeros(len(ids)))
    timestamps = np.zeros(len(ids))
    columns = encoded(answers.columns_answer(ids, timestamps, timestamps, scores))
    rows = answers.rows_answer(ids, timestamps, timestamps, scores)
    return columns, orjson.loads(msgspec.json.encode(rows["results"]))


class TestUnknownSeriesWarning:
    @given(st.lists(st.sampled_from(["a", "b", "h", "c", "typo", "never"]), min_size=1))
    def test_only_readings_of_unknown_series_carry_it(self, ids: list[str]) -> None:
        unknown = [i in ("typo", "never") for i in ids]
        expected = [answers.UNKNOWN_SERIES_WARNING if u else None for u in unknown]

        columns, rows = answered(ids)

        assert [r.get("warning") for r in rows] == expected
        assert [("warning" in r) for r in rows] == unknown
        if any(unknown):
            assert columns["warning"] == expected
        else:
            assert "warning" not in columns  # known series: the answer keeps its shape

    def test_single_answer_carries_it_only_for_an_unknown_series(self) -> None:
        serving = FakeServing(scored()[0])
        known, unknown = (
            answers.reading_answer(
                s, 0.0, 0.0, data_plane.score_one(serving, s, 0.0, 0.0)
            )
            for s in ("a", "typo")
        )

        assert "warning" not in known
        assert unknown["warning"].startswith("unknown_series: ")
        assert unknown["model_info"]["loaded_from"] == "default"
