"""The table's generation (a new table numbers its rows afresh, a growing one
not), and its pools of seasonal phases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.serving import ServedModel
from atalaia.services import model_table
from atalaia.services.model_table import ModelTable, Source


class TestGeneration:
    def test_each_new_table_is_of_a_later_generation(self) -> None:
        first, second = ModelTable(), ModelTable()

        assert second.generation > first.generation

    def test_a_table_keeps_its_generation_as_series_arrive(self) -> None:
        table = ModelTable()
        generation = table.generation

        table.set_models([ServedModel("a", 1, "zscore", 0, 1, 3)], Source.MEMORY)
        table.set_history(["b"], np.array([1.0]), np.array([0.5]))

        assert table.generation == generation
        assert table.ids == ["", "a", "b"]


def seasonal(series_id: str, version: int, phases: int, shift: float) -> ServedModel:
    band = PhaseBand(
        3600.0, 0.0, np.full(phases, shift, np.float32), np.ones(phases, np.float32)
    )
    return ServedModel(series_id, version, "seasonal", 10.0, 0.25, 4.0, band.to_bytes())


def expected_at(table: ModelTable, series_id: str) -> float:
    rows = table.rows_of([series_id])
    return float(table.score(rows, np.array([1.7e9]), np.array([0.0])).expected[0])


class TestSeasonalPools:
    def test_a_replaced_band_is_served_and_its_old_phases_compacted(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(model_table, "COMPACT_GARBAGE", 100)
        table = ModelTable()
        table.set_models(
            [seasonal(f"s{i}", 1, 24, float(i)) for i in range(10)], Source.MEMORY
        )
        for version in range(2, 14):  # 12 × 24 phases replaced
            table.set_models([seasonal("s0", version, 24, -1.0)], Source.MEMORY)

        pools = table.cols.pools
        assert pools.garbage < 12 * 24  # compacted on the way
        assert pools.used - pools.garbage == 10 * 24
        assert expected_at(table, "s0") == 9.0
        assert [expected_at(table, f"s{i}") for i in range(1, 10)] == [
            10.0 + i for i in range(1, 10)
        ]
        assert table.model_of("s0") == seasonal("s0", 13, 24, -1.0)

    def test_a_reader_of_the_columns_before_the_pools_grew_reads_them_whole(
        self,
    ) -> None:
        table = ModelTable()
        table.set_models([seasonal("s0", 1, 24, 0.0)], Source.MEMORY)
        row = table.rows_of(["s0"])[0]
        before = table.cols  # a scoring call's snapshot, taken before the growth

        table.set_models(  # more phases than the pools hold: new pools
            [
                seasonal("s0", 2, 24, 5.0),
                *(seasonal(f"t{i}", 1, 24, 0.0) for i in range(9)),
            ],
            Source.MEMORY,
        )

        record = before.serving[row]
        assert table.cols.pools is not before.pools
        assert record["offset"] + record["phases"] <= before.pools.used
        assert table.cols.serving[row]["version"] == 2

    def test_a_flat_model_replacing_a_seasonal_one_frees_its_phases(self) -> None:
        table = ModelTable()
        table.set_models([seasonal("s", 1, 24, 1.0)], Source.MEMORY)
        table.set_models([ServedModel("s", 2, "zscore", 5.0, 1.0, 3.0)], Source.MEMORY)

        assert table.cols.pools.garbage == 24
        assert expected_at(table, "s") == 5.0
        assert table.model_of("s") == ServedModel("s", 2, "zscore", 5.0, 1.0, 3.0)

    def test_the_snapshot_keeps_the_bands(self, tmp_path: Path) -> None:
        table = ModelTable()
        table.set_models(
            [seasonal("a", 1, 24, 2.0), ServedModel("b", 1, "zscore", 0, 1, 3)],
            Source.MEMORY,
        )
        table.save(tmp_path / "snapshot.npz")

        loaded = ModelTable.load(tmp_path / "snapshot.npz")

        assert expected_at(loaded, "a") == 12.0
        assert loaded.model_of("a") == seasonal("a", 1, 24, 2.0)


class TestHeavyModels:
    def test_artifact_keys_follow_their_rows_and_the_snapshot(
        self, tmp_path: Path
    ) -> None:
        forest = ServedModel(
            "f", 1, "isolation_forest", 0.3, 0.01, 3.9, None, "models/f/ab.npz"
        )
        table = ModelTable()
        table.set_models(
            [forest, ServedModel("z", 1, "zscore", 0, 1, 3)], Source.MEMORY
        )
        table.save(tmp_path / "snapshot.npz")
        loaded = ModelTable.load(tmp_path / "snapshot.npz")
        table.set_models([ServedModel("f", 2, "zscore", 0, 1, 3)], Source.MEMORY)

        assert loaded.model_of("f") == forest
        assert loaded.artifact_of(loaded.index["z"]) is None
        assert table.artifact_of(table.index["f"]) is None  # replaced: no key
        assert table.artifacts == {}


class TestStuckGuard:
    GUARDED = ServedModel("g", 1, "robust", 0.0, 1.0, 4.0, None, None, 6)

    def table(self) -> ModelTable:
        table = ModelTable()
        table.set_models(
            [self.GUARDED, ServedModel("z", 1, "zscore", 0, 1, 3)], Source.MEMORY
        )
        table.set_history(["h", "g"], np.array([1.0, 2.0]), np.array([0.5, 0.5]))
        return table

    def test_records_carry_the_limit_of_model_rows_only(self) -> None:
        table = self.table()

        rows = table.rows_of(["g", "z", "h", "?"])
        scores = table.score(rows, np.full(4, 1.7e9), np.zeros(4))

        assert table.model_of("g") == self.GUARDED
        assert scores.stuck_after.tolist() == [6, 0, 0, 0]
        assert scores.stuck_after.dtype == np.int32
        limits = [table.record(s, 1.7e9)[1].stuck_after for s in ("g", "z", "h", "?")]
        assert limits == [6, 0, 0, 0]
        assert model_table.UNKNOWN_RECORD.stuck_after == 0

    def test_a_cleared_or_replaced_model_drops_its_limit(self) -> None:
        table, cleared = self.table(), self.table()

        table.set_models([ServedModel("g", 2, "zscore", 0, 1, 3)], Source.MEMORY)
        cleared.clear_model("g")

        for emptied in (table, cleared):
            assert emptied.record("g", 1.7e9)[1].stuck_after == 0
        assert table.model_of("g") == ServedModel("g", 2, "zscore", 0, 1, 3)
        assert cleared.cols.stuck_after[cleared.index["g"]] == 0

    def test_columns_given_no_limits_have_none(self) -> None:
        table = self.table()

        table.set_model_columns(
            ["g"], np.array([2]), np.zeros(1, np.int8), np.zeros(1), np.ones(1),
            np.ones(1), Source.MEMORY,
        )  # fmt: skip

        model = table.model_of("g")
        assert model is not None
        assert model.stuck_after == 0

    def test_growth_and_the_snapshot_keep_the_limits(self, tmp_path: Path) -> None:
        models = [
            ServedModel(f"s{i}", 1, "zscore", 0, 1, 3, stuck_after=i % 7 * 2)
            for i in range(3000)  # past the first capacity
        ]
        table = ModelTable()
        table.set_models(models, Source.MEMORY)
        table.save(tmp_path / "snapshot.npz")

        loaded = ModelTable.load(tmp_path / "snapshot.npz")

        assert [loaded.model_of(m.series_id) for m in models] == models
        rows = loaded.rows_of([m.series_id for m in models])
        limits = loaded.score(rows, np.full(rows.size, 1.7e9), np.zeros(rows.size))
        assert limits.stuck_after.tolist() == [m.stuck_after for m in models]


def streaming(series_id: str, version: int, packed: bytes) -> ServedModel:
    return ServedModel(series_id, version, "robust", 0.0, 1.0, 4.0, stream=packed)


class TestStreams:
    PACKED = bytes(range(256)) + b"\n\x00" * 40  # any byte, a few hundred of them

    def table(self) -> ModelTable:
        table = ModelTable()
        table.set_models(
            [streaming("s", 1, self.PACKED), ServedModel("z", 1, "zscore", 0, 1, 3)],
            Source.MEMORY,
        )
        return table

    def test_a_row_keeps_its_models_packed_state(self) -> None:
        table, plain = self.table(), ModelTable()
        plain.set_models([ServedModel("z", 1, "zscore", 0, 1, 3)], Source.MEMORY)
        plain.set_history(["s"], np.array([1.0]), np.array([0.5]))

        assert table.model_of("s") == streaming("s", 1, self.PACKED)
        assert table.stream_of(table.index["s"]) == self.PACKED
        assert table.stream_of(table.index["z"]) is None
        assert table.nbytes() == plain.nbytes() + len(self.PACKED)

    def test_a_replaced_or_cleared_model_keeps_only_what_replaced_it(self) -> None:
        replaced, retrained, cleared, columns = (self.table() for _ in range(4))

        replaced.set_models([ServedModel("s", 2, "zscore", 0, 1, 3)], Source.MEMORY)
        retrained.set_models([streaming("s", 2, b"\x01\x02")], Source.MEMORY)
        cleared.clear_model("s")
        columns.set_model_columns(
            ["s"], np.array([2]), np.zeros(1, np.int8), np.zeros(1), np.ones(1),
            np.ones(1), Source.MEMORY,
        )  # fmt: skip

        assert retrained.model_of("s") == streaming("s", 2, b"\x01\x02")
        assert cleared.model_of("s") is None
        for emptied in (replaced, cleared, columns):
            assert emptied.streams == {}
            assert emptied.stream_of(emptied.index["s"]) is None

    def test_the_snapshot_keeps_the_streams(self, tmp_path: Path) -> None:
        models = [
            streaming(f"s{i}", 1, bytes([i % 256]) * (i % 300))  # some empty: none
            if i % 3
            else ServedModel(f"s{i}", 1, "zscore", 0, 1, 3)
            for i in range(3000)  # past the first capacity
        ]
        table, empty = ModelTable(), ModelTable()
        table.set_models(models, Source.MEMORY)
        empty.set_models(models[::3], Source.MEMORY)  # none with a stream
        table.save(tmp_path / "snapshot.npz")
        empty.save(tmp_path / "empty.npz")

        loaded = ModelTable.load(tmp_path / "snapshot.npz")

        expected = [m if m.stream else replace(m, stream=None) for m in models]
        assert [loaded.model_of(m.series_id) for m in models] == expected
        assert loaded.streams == table.streams
        assert len(loaded.streams) == sum(bool(m.stream) for m in models)
        assert ModelTable.load(tmp_path / "empty.npz").streams == {}


# What the snapshot keeps of the streams, since atalaia.model-table.5.
STREAM_ARRAYS = {"stream_rows", "stream_bytes", "stream_lengths"}


class TestSnapshotLayout:
    def test_algorithms_are_read_back_by_name(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        table = ModelTable()
        table.set_models([ServedModel("a", 1, "zscore", 0, 1, 3)], Source.MEMORY)
        table.save(tmp_path / "snapshot.npz")
        # A later release with another family sorted before zscore.
        monkeypatch.setattr(model_table, "ALGORITHMS", ("aaa", *model_table.ALGORITHMS))

        loaded = ModelTable.load(tmp_path / "snapshot.npz")

        assert loaded.cols.algorithm[loaded.index["a"]] == model_table.ALGORITHMS.index(
            "zscore"
        )

    def test_an_older_layout_is_refused(self, tmp_path: Path) -> None:
        np.savez(tmp_path / "old.npz", ids=np.zeros(0, np.uint8))

        with pytest.raises(model_table.SnapshotUnreadable):
            ModelTable.load(tmp_path / "old.npz")

    @pytest.mark.parametrize(
        ("layout", "lacking"),
        [
            ("atalaia.model-table.3", {"stuck_after", *STREAM_ARRAYS}),
            ("atalaia.model-table.4", STREAM_ARRAYS),
        ],
    )
    def test_a_layout_before_stuck_guards_or_streams_is_refused(
        self, tmp_path: Path, layout: str, lacking: set[str]
    ) -> None:
        table = ModelTable()
        table.set_models([ServedModel("a", 1, "zscore", 0, 1, 3)], Source.MEMORY)
        table.save(tmp_path / "snapshot.npz")
        with np.load(tmp_path / "snapshot.npz") as data:
            arrays = {name: data[name] for name in data.files if name not in lacking}
        arrays["layout"] = np.array(layout)
        np.savez(tmp_path / "old.npz", **arrays)

        with pytest.raises(model_table.SnapshotUnreadable):
            ModelTable.load(tmp_path / "old.npz")
