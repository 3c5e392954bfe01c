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
