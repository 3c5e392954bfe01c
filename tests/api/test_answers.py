"""Prediction answers say where each model came from (`loaded_from`)."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from atalaia.api.inference import answers
from atalaia.core.serving import ServedModel
from atalaia.services.model_table import ALGORITHMS, ModelTable, Scores, Source, Tier

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
    return table, table.score(table.rows_of(IDS), np.zeros(len(IDS)))


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

        columns = encoded(answers.columns_answer(IDS, timestamps, scores, fetched))
        rows = answers.rows_answer(IDS, timestamps, scores, fetched)

        assert columns["loaded_from"] == expected
        results = msgspec.json.decode(msgspec.json.encode(rows["results"]))
        assert [r["model_info"]["loaded_from"] for r in results] == expected

    def test_nothing_fetched_answers_from_memory(self) -> None:
        _table, scores = scored()

        columns = encoded(answers.columns_answer(IDS, np.zeros(len(IDS)), scores))

        assert columns["loaded_from"] == [
            "memory", "memory", "history", "memory", "memory"
        ]  # fmt: skip


def test_the_kinds_of_model_info_fit_their_bits() -> None:
    # answers._kinds packs these into 2, 4, 3 and 3 bits.
    assert max(Tier) < 4
    assert len(ALGORITHMS) <= 16
    assert max(Source) < 8


def answered(ids: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(columnar answer, row answers) to readings of `ids`, as clients read them."""
    table, _scores = scored()
    scores = table.score(table.rows_of(ids), np.zeros(len(ids)))
    timestamps = np.zeros(len(ids))
    columns = encoded(answers.columns_answer(ids, timestamps, scores))
    rows = answers.rows_answer(ids, timestamps, scores)
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
        table, _scores = scored()
        known, unknown = (
            answers.reading_answer(s, 0.0, 0.0, table.record(s)[1], 0, known=k)
            for s, k in (("a", True), ("typo", False))
        )

        assert "warning" not in known
        assert unknown["warning"].startswith("unknown_series: ")
        assert unknown["model_info"]["loaded_from"] == "default"
