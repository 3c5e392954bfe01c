"""The asset hierarchy's store on SQLite and PostgreSQL: paths kept through a
move, and the series under a node."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AssetStore, ReadingStore
from atalaia.core.assets import Asset, AssetKind
from atalaia.core.series import Readings
from atalaia.errors import Conflict

Sessions = sessionmaker[Session]
AT = datetime(2026, 12, 1, tzinfo=UTC)
TREE = [
    Asset("plant_1", AssetKind.SITE, "Plant 1"),
    Asset("line_1", AssetKind.LINE, "Line 1", parent="plant_1"),
    Asset("line_2", AssetKind.LINE, "Line 2", parent="plant_1"),
    Asset("m_1", AssetKind.MACHINE, "M 1", parent="line_1"),
    Asset("pump_1", AssetKind.SENSOR, "Pump", parent="m_1"),
    Asset("pump_2", AssetKind.SENSOR, "Pump", parent="line_2"),
]


@pytest.fixture
def tree(sessions: Sessions) -> Sessions:
    with sessions() as session:
        assert AssetStore(session).put(TREE, at=AT) == (6, 0)
        one = Readings(np.array([1.0]), np.array([0.5]))
        ReadingStore(session).append_many(
            {"pump_1_x": one, "pump_1_y": one, "pump_2_x": one, "pump_10_x": one}
        )
        session.commit()
    return sessions


def under(sessions: Sessions, node: str) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(AssetStore(session).series_under(node)))


def test_the_series_under_a_node_are_its_sensors_axes(tree: Sessions) -> None:
    assert under(tree, "plant_1") == ["pump_1_x", "pump_1_y", "pump_2_x"]
    assert under(tree, "m_1") == ["pump_1_x", "pump_1_y"]
    assert under(tree, "pump_2") == ["pump_2_x"]


def test_a_moved_node_takes_its_subtree_along(tree: Sessions) -> None:
    moved = Asset("m_1", AssetKind.MACHINE, "M 1", parent="line_2")

    with tree() as session:
        assert AssetStore(session).put([moved], at=AT) == (0, 1)
        session.commit()

    with tree() as session:
        store = AssetStore(session)
        assert store.get("pump_1").path == "/plant_1/line_2/m_1/pump_1/"
        listed = [s.asset.id for s in store.page(under="line_2")]
    assert listed == ["line_2", "m_1", "pump_1", "pump_2"]
    assert under(tree, "line_1") == []


def test_only_a_leaf_is_removed(tree: Sessions) -> None:
    with tree() as session:
        store = AssetStore(session)
        with pytest.raises(Conflict):
            store.remove("m_1")
        store.remove("pump_1")
        session.commit()
        assert store.counts(["m_1", "plant_1"]) == {"plant_1": 2}
