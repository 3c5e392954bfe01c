"""Warm load and the change feed: an outage falls back on the snapshot, a bug
surfaces."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from atalaia.core.detectors.multivariate import Multivariate
from atalaia.core.explanations import Reason
from atalaia.core.sensors import StoredSensor
from atalaia.core.series import Readings
from atalaia.core.serving import ServedSensor
from atalaia.errors import DependencyUnavailable
from atalaia.services.inference import LoadState, Predictor, data_plane
from atalaia.services.model_table import REASONS

from .conftest import MODEL, FakeStore


def started_from_snapshot(store: FakeStore, tmp_path: Path) -> Predictor:
    """A predictor started while the database is unavailable, after another
    wrote its snapshot."""
    first = Predictor(store, snapshot_path=tmp_path / "snapshot.npz")
    first.warm_load()
    first.save_snapshot()
    store.failure = DependencyUnavailable("database")
    second = Predictor(store, snapshot_path=tmp_path / "snapshot.npz")
    second.warm_load()
    return second


class TestWarmLoad:
    def test_loads_from_the_database_and_says_so(self, predictor: Predictor) -> None:
        loads: list[tuple[str, float]] = []
        predictor.on_load = lambda source, seconds: loads.append((source, seconds))

        predictor.warm_load()

        assert predictor.loaded_from == "database"
        assert predictor.database_ok
        assert predictor.table.model_of(MODEL.series_id) == MODEL
        assert [source for source, _ in loads] == ["database"]

    def test_falls_back_on_the_snapshot_when_the_database_is_unavailable(
        self, store: FakeStore, tmp_path: Path
    ) -> None:
        second = started_from_snapshot(store, tmp_path)

        assert second.loaded_from is LoadState.SNAPSHOT
        assert f"{second.loaded_from}" == "snapshot"
        assert not second.database_ok
        assert second.table.model_of(MODEL.series_id) == MODEL

    def test_a_bug_surfaces_instead_of_passing_for_an_outage(
        self, predictor: Predictor, store: FakeStore
    ) -> None:
        store.failure = KeyError("a bug")

        with pytest.raises(KeyError):
            predictor.warm_load()
        assert predictor.loaded_from == "nothing"

    def test_the_snapshot_keeps_the_sensor_models(
        self, store: FakeStore, tmp_path: Path
    ) -> None:
        axes = np.random.default_rng(0).normal(size=(2_000, 3))
        axes[:, 1] = axes[:, 0] + 0.1 * axes[:, 1]  # b follows a
        params = Multivariate().fit(axes, Multivariate.defaults)
        sensor = ServedSensor("sensor_001", 2, StoredSensor(("a", "b", "c"), params))
        store.sensors = [sensor]

        second = started_from_snapshot(store, tmp_path)

        [restored] = second.sensors.served()
        assert (restored.sensor_id, restored.version) == ("sensor_001", 2)
        assert restored.model.axes == ("a", "b", "c")
        reading = {"a": 1.0, "b": -1.0, "c": 0.0}  # b leaves a
        assert second.sensors.score("sensor_001", 1.7e9, reading).anomaly

    def test_every_load_keeps_the_stuck_guards(self, tmp_path: Path) -> None:
        guarded = replace(MODEL, stuck_after=6)
        plain = replace(MODEL, series_id="plain")
        store = FakeStore([guarded, plain])
        predictor = Predictor(store, snapshot_path=tmp_path / "live.npz")
        predictor.warm_load()
        warm = predictor.table.model_of(guarded.series_id)
        retrained = replace(guarded, version=2, stuck_after=9)
        store.models[0] = retrained

        predictor.reload_series([guarded.series_id])
        from_snapshot = started_from_snapshot(store, tmp_path).table

        assert warm == guarded
        assert predictor.table.model_of(guarded.series_id) == retrained
        assert from_snapshot.model_of(guarded.series_id) == retrained
        assert from_snapshot.model_of("plain") == plain

    def test_every_load_keeps_the_streams(self, tmp_path: Path) -> None:
        packed = bytes(range(256)) * 2
        streaming = replace(MODEL, stream=packed)
        dropped = replace(MODEL, series_id="dropped", stream=b"\x00\n")
        store = FakeStore([streaming, dropped, replace(MODEL, series_id="plain")])
        predictor = Predictor(store, snapshot_path=tmp_path / "live.npz")
        predictor.warm_load()
        warm = [predictor.table.model_of(m.series_id) for m in store.models]
        retrained = [
            replace(streaming, version=2, stream=packed[::-1]),
            replace(dropped, version=2, stream=None),  # retrained without one
        ]
        store.models[:2] = retrained

        predictor.reload_series([m.series_id for m in retrained])
        from_snapshot = started_from_snapshot(store, tmp_path).table

        assert warm == [streaming, dropped, replace(MODEL, series_id="plain")]
        for table in (predictor.table, from_snapshot):
            assert [table.model_of(m.series_id) for m in store.models] == store.models
        assert from_snapshot.streams == {
            from_snapshot.index[MODEL.series_id]: packed[::-1]
        }


class TestChangeFeed:
    def test_the_first_contact_after_a_snapshot_start_loads_everything(
        self, store: FakeStore, tmp_path: Path
    ) -> None:
        second = started_from_snapshot(store, tmp_path)
        store.failure = None

        second.poll_changes()

        assert second.loaded_from == "database"
        assert second.database_ok

    def test_a_full_load_during_a_poll_keeps_its_own_cursor(
        self,
        predictor: Predictor,
        store: FakeStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        predictor.warm_load()  # the ledger's newest entry: 1
        cursors: list[int] = []

        def changed_since(
            cursor: int,
            *,
            since: datetime,  # noqa: ARG001
        ) -> tuple[int, set[str]]:
            cursors.append(cursor)
            if len(cursors) == 1:
                predictor.reload_all()  # meanwhile, read at entry 1 again
            return cursor + 100, set()

        monkeypatch.setattr(store, "changed_since", changed_since)
        predictor.poll_changes()
        predictor.poll_changes()

        assert cursors == [1, 1]  # the full load's cursor stands, not 101


class TestStreamState:
    def test_a_restart_goes_on_with_the_runs_under_way(self, tmp_path: Path) -> None:
        guarded = replace(MODEL, stuck_after=2)
        path = tmp_path / "snapshot.npz"
        before = Predictor(FakeStore([guarded]), snapshot_path=path)
        before.warm_load()
        for t in (60.0, 120.0):
            data_plane.score_one(before, guarded.series_id, t, 0.5)
        before.save_snapshot()  # as at shutdown

        after = Predictor(FakeStore([guarded]), snapshot_path=path)
        after.warm_load()
        third = data_plane.score_one(after, guarded.series_id, 180.0, 0.5)
        retried = data_plane.score_one(after, guarded.series_id, 120.0, 0.5)

        assert (third.anomaly, REASONS[third.reason]) == (True, Reason.STUCK)
        assert retried.stale

    def test_readings_stored_while_down_go_on_with_the_runs(
        self, tmp_path: Path
    ) -> None:
        guarded = replace(MODEL, stuck_after=3)
        path, store = tmp_path / "snapshot.npz", FakeStore([guarded])
        before = Predictor(store, snapshot_path=path)
        before.warm_load()
        data_plane.score_one(before, guarded.series_id, 60.0, 0.5)
        before.save_snapshot()
        # Sent in meanwhile (to another replica, or while this one was down).
        store.readings[guarded.series_id] = Readings.of(
            [0.0, 60.0, 120.0, 180.0], [0.5, 0.5, 0.5, 0.5]
        )

        after = Predictor(store, snapshot_path=path)
        after.warm_load()
        next_one = data_plane.score_one(after, guarded.series_id, 240.0, 0.5)

        assert (next_one.anomaly, REASONS[next_one.reason]) == (True, Reason.STUCK)
        assert next_one.score == 4 / 3  # the run: 60, 120, 180, 240 (0 is older)

    def test_a_damaged_file_of_state_starts_afresh(
        self, predictor: Predictor, tmp_path: Path
    ) -> None:
        (tmp_path / "snapshot-streams.npz").write_bytes(b"not a snapshot")

        predictor.warm_load()
        scored = data_plane.score_one(predictor, MODEL.series_id, 60.0, 0.5)

        assert predictor.loaded_from == "database"
        assert not scored.stale

    def test_the_state_is_written_only_when_readings_came(
        self, predictor: Predictor
    ) -> None:
        predictor.warm_load()
        path = predictor.snapshot.streams_path

        predictor.snapshot.save_streams()  # nothing read yet
        nothing = path.exists()
        data_plane.score_one(predictor, MODEL.series_id, 60.0, 0.5)
        predictor.snapshot.save_streams()
        written = path.stat().st_mtime_ns
        predictor.snapshot.save_streams()  # nothing read since

        assert not nothing
        assert path.stat().st_mtime_ns == written
