"""Prediction answers say where each model came from (`loaded_from`)."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import orjson

from atalaia.adapters.db.repositories import ServedModel
from atalaia.api.inference import answers
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
