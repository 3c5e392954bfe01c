"""The hashed id index finds the rows a dict of the same ids finds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.series import MAX_SERIES_ID_LENGTH
from atalaia.core.serving import ServedModel
from atalaia.services.id_index import IdIndex
from atalaia.services.model_table import HASHED_LOOKUP, ModelTable, Source

# Any text but NUL: ids the API refuses may still be asked about.
ids = st.text(
    st.characters(blacklist_characters="\x00"),
    min_size=1,
    max_size=MAX_SERIES_ID_LENGTH,
)
chunks = st.lists(st.lists(ids, max_size=300), max_size=6)


def indexed(chunks: list[list[str]]) -> tuple[IdIndex, dict[str, int]]:
    """The chunks' distinct ids added in turn, and the dict of the same rows."""
    index, rows = IdIndex(), dict[str, int]()
    for chunk in chunks:
        new = [s for s in dict.fromkeys(chunk) if s not in rows]
        index.add(new, len(rows) + 1)
        rows.update((s, len(rows) + 1) for s in new)
    return index, rows


@given(chunks, st.lists(ids, max_size=200))
def test_finds_each_row_of_the_ids_added_and_none_of_the_others(
    chunks: list[list[str]], others: list[str]
) -> None:
    index, rows = indexed(chunks)
    asked = [*rows, *others]

    found = index.rows_of(asked)

    assert found is not None
    assert found.tolist() == [rows.get(s, 0) for s in asked]


def test_grows_past_its_first_table() -> None:
    index, rows = indexed([[f"s{i}" for i in range(n, n + 700)] for n in (0, 700)])
    index.add([f"t{i}" for i in range(5000)], len(rows) + 1)

    found = index.rows_of(["s3", "s1399", "t0", "t4999", "u"])

    assert found is not None
    assert found.tolist() == [4, 1400, 1401, 6400, 0]


def test_refuses_batches_it_cannot_tell_apart() -> None:
    index, _ = indexed([["a", "b"]])

    assert index.rows_of(["a\x00"]) is None  # numpy would drop the trailing NUL
    assert index.rows_of(["a", "x" * (MAX_SERIES_ID_LENGTH + 1)]) is None


def test_an_id_it_cannot_hash_sends_every_batch_elsewhere() -> None:
    index, _ = indexed([["a", "b\x00"]])

    assert index.rows_of(["a"]) is None


@given(st.lists(st.sampled_from([*map(str, range(40)), "b\x00", "x" * 200])))
def test_the_model_table_finds_batches_as_it_finds_single_ids(asked: list[str]) -> None:
    table = ModelTable()
    known = [str(i) for i in range(0, 40, 3)]
    table.set_models(
        [ServedModel(s, 1, "zscore", 0, 1, 3) for s in known], Source.MEMORY
    )
    batch = asked * (HASHED_LOOKUP // max(1, len(asked)) + 1)

    rows = table.rows_of(batch)

    assert rows.tolist() == [table.index.get(s, 0) for s in batch]


def test_a_series_loaded_twice_gets_one_row() -> None:
    table = ModelTable()
    loaded = [("a", 1), ("b", 1), ("a", 2)]
    table.set_models(
        [ServedModel(s, v, "zscore", 0, 1, 3) for s, v in loaded], Source.MEMORY
    )
    batch = ["a", "b", "c"] * HASHED_LOOKUP

    rows = table.rows_of(batch)

    assert table.ids == ["", "a", "b"]
    assert rows.tolist() == [1, 2, 0] * HASHED_LOOKUP
