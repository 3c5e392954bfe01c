"""The change feed after many changes at once (a fleet operation): a full load
instead of reading each series again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from atalaia.core.serving import ServedModel
from atalaia.services.inference import Predictor
from atalaia.services.inference.follower import RELOAD_ALL_MIN

from .conftest import FakeStore


def version_of(predictor: Predictor, series_id: str) -> int | None:
    served = predictor.table.model_of(series_id)
    return served.version if served else None


def fleet(n: int) -> list[ServedModel]:
    return [ServedModel(f"s_{i:06d}", 1, "zscore", 0.0, 1.0, 3.0) for i in range(n)]


@pytest.mark.parametrize(
    ("changed", "full_loads"),
    [(RELOAD_ALL_MIN, 0), (RELOAD_ALL_MIN + 1, 1)],
)
def test_many_changed_series_are_read_with_the_whole_fleet(
    tmp_path: Path, changed: int, full_loads: int
) -> None:
    store = FakeStore(fleet(4 * RELOAD_ALL_MIN))
    predictor = Predictor(store, snapshot_path=tmp_path / "snapshot.npz")
    predictor.warm_load()
    loads: list[str] = []
    predictor.on_load = lambda source, _seconds: loads.append(source)
    store.models[:changed] = [replace(m, version=2) for m in store.models[:changed]]
    store.changed = {m.series_id for m in store.models[:changed]}

    assert predictor.poll_changes() == changed

    assert loads == ["database"] * full_loads
    versions = [version_of(predictor, m.series_id) for m in store.models]
    assert versions == [2] * changed + [1] * (len(versions) - changed)


def test_full_loads_take_half_the_time_at_most_while_changes_keep_coming(
    tmp_path: Path,
) -> None:
    store = FakeStore(fleet(4 * RELOAD_ALL_MIN))
    predictor = Predictor(store, snapshot_path=tmp_path / "snapshot.npz")
    predictor.warm_load()
    # The feed's moments: the first full load takes 2 s; the next changes come
    # 1 s after it (too soon), then 2.5 s after it.
    moments = iter([0.0, 0.0, 2.0, 3.0, 4.5, 4.5, 5.0])
    predictor.follower.clock = lambda: next(moments)
    many = RELOAD_ALL_MIN + 1

    def change(version: int) -> None:
        store.models[:many] = [replace(m, version=version) for m in store.models[:many]]
        store.changed = {m.series_id for m in store.models[:many]}

    change(2)
    first = predictor.poll_changes()
    change(3)
    too_soon = predictor.poll_changes()
    meanwhile = version_of(predictor, store.models[0].series_id)
    store.changed = {m.series_id for m in store.models[:many]}  # read again
    later = predictor.poll_changes()

    assert (first, too_soon, later) == (many, 0, many)
    assert meanwhile == 2
    assert version_of(predictor, store.models[0].series_id) == 3
