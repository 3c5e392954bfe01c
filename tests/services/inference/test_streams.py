"""Each series' stream state, kept by the rows of the table being served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atalaia.core.serving import ServedModel
from atalaia.services.inference.streams import SeriesStreams, StreamsUnreadable
from atalaia.services.model_table import UNKNOWN_ROW, ModelTable, Source


def table_of(*series_ids: str) -> ModelTable:
    table = ModelTable()
    models = [ServedModel(s, 1, "zscore", 0.0, 1.0, 3.0) for s in series_ids]
    table.set_models(models, Source.MEMORY)
    return table


def test_a_new_table_takes_each_series_state_to_its_new_row() -> None:
    streams = SeriesStreams()
    first = table_of("a", "b", "c")
    for t in (60.0, 120.0):
        streams.many(first, first.rows_of(["a", "b"]), np.full(2, t), np.ones(2))

    second = table_of("c", "b", "d")  # rows numbered afresh; "a" gone
    runs = streams.many(
        second, second.rows_of(["b", "d"]), np.array([180.0, 180.0]), np.ones(2)
    )
    late = streams.one(second, second.index["b"], 120.0, 1.0)

    assert runs.run.tolist() == [3, 1]  # "b" goes on, "d" starts
    assert late == (3, True)


def test_rows_added_to_the_table_start_empty_and_the_unknown_row_keeps_none() -> None:
    streams = SeriesStreams()
    table = table_of("a")
    streams.one(table, table.index["a"], 60.0, 1.0)
    table.set_models(
        [ServedModel(f"s{i}", 1, "zscore", 0.0, 1.0, 3.0) for i in range(5000)],
        Source.MEMORY,
    )  # past the state's first size: it grows

    grown = streams.one(table, table.index["s4999"], 60.0, 1.0)
    again = streams.one(table, table.index["a"], 120.0, 1.0)
    unknown = [streams.one(table, UNKNOWN_ROW, 60.0, 1.0) for _ in range(2)]
    mixed = streams.many(
        table, np.array([UNKNOWN_ROW, table.index["a"]]), np.full(2, 180.0), np.ones(2)
    )

    assert grown == (1, False)
    assert again == (2, False)
    assert unknown == [(1, False)] * 2
    assert mixed.run.tolist() == [1, 3]
    assert mixed.stale.tolist() == [False, False]


def test_the_state_written_is_taken_back_by_series(tmp_path: Path) -> None:
    streams, path = SeriesStreams(), tmp_path / "streams.npz"
    first = table_of("a", "b")
    streams.many(first, first.rows_of(["a", "b"]), np.array([60.0, 60.0]), np.ones(2))
    streams.one(first, first.index["a"], 120.0, 1.0)

    written = streams.save(path)
    restored = SeriesStreams()
    taken = restored.restore(path)
    later = table_of("b", "a")  # other rows
    runs = restored.many(
        later, later.rows_of(["a", "b"]), np.full(2, 120.0), np.ones(2)
    )

    assert (written, taken) == (2, 2)
    assert runs.run.tolist() == [2, 2]
    assert runs.stale.tolist() == [True, False]


def test_a_file_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "streams.npz"
    np.savez(path, layout=np.array("atalaia.streams.0"))

    with pytest.raises(StreamsUnreadable):
        SeriesStreams().restore(path)
