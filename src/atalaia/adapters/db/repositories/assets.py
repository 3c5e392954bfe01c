"""The asset hierarchy (`core.assets`): its nodes with their paths, and the
series under a node (the axes of the sensors under it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import AssetRow, SeriesRow
from atalaia.core.assets import Asset, AssetKind, Known, paths
from atalaia.errors import Conflict, NotFound


class StoredAsset(NamedTuple):
    asset: Asset
    path: str


def _stored(row: AssetRow) -> StoredAsset:
    asset = Asset(
        row.id, AssetKind(row.kind), row.name, row.parent_id, dict(row.attributes),
        row.latitude, row.longitude, row.x, row.y,
    )  # fmt: skip
    return StoredAsset(asset, row.path)


def _columns(asset: Asset, path: str, at: datetime) -> dict[str, Any]:
    return {
        "id": asset.id, "kind": asset.kind.value, "name": asset.name,
        "parent_id": asset.parent, "path": path, "attributes": dict(asset.attributes),
        "latitude": asset.latitude, "longitude": asset.longitude, "x": asset.x,
        "y": asset.y, "updated_at": at,
    }  # fmt: skip


class AssetStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def known(self) -> dict[str, Known]:
        """Every node's kind and parent (what checking a tree needs)."""
        stmt = select(AssetRow.id, AssetRow.kind, AssetRow.parent_id)
        return {
            asset_id: Known(AssetKind(kind), parent)
            for asset_id, kind, parent in self.session.execute(stmt)
        }

    def put(self, assets: Sequence[Asset], *, at: datetime) -> tuple[int, int]:
        """Create or replace `assets` (checked against the tree as stored),
        parents first; (created, replaced). A node moved elsewhere takes the
        nodes under it along."""
        stored = dict(self.session.execute(select(AssetRow.id, AssetRow.path)).all())
        found = paths(assets, stored)
        fresh = [a for a in assets if a.id not in stored]
        known = [a for a in assets if a.id in stored]
        ordered = sorted(fresh, key=lambda a: a.kind.rank)
        if ordered:
            rows = [_columns(a, found[a.id], at) for a in ordered]
            self.session.execute(insert(AssetRow), rows)
        if known:
            rows = [_columns(a, found[a.id], at) for a in known]
            self.session.execute(update(AssetRow), rows)
        if any(stored[a.id] != found[a.id] for a in known):
            self._repath()
        return len(fresh), len(known)

    def _repath(self) -> None:
        """Every node's path again from its parent's (after a move)."""
        rows = self.session.execute(
            select(AssetRow.id, AssetRow.kind, AssetRow.parent_id, AssetRow.path)
        ).all()
        tree = [Asset(r.id, AssetKind(r.kind), r.id, r.parent_id) for r in rows]
        found = paths(tree, {})
        moved = [
            {"id": r.id, "path": found[r.id]} for r in rows if r.path != found[r.id]
        ]
        if moved:
            self.session.execute(update(AssetRow), moved)

    def get(self, asset_id: str) -> StoredAsset:
        found = self.find(asset_id)
        if found is None:
            raise NotFound(f"asset {asset_id!r} does not exist", rule="asset_exists")
        return found

    def find(self, asset_id: str) -> StoredAsset | None:
        row = self.session.get(AssetRow, asset_id)
        return None if row is None else _stored(row)

    def ancestors(self, stored: StoredAsset) -> list[StoredAsset]:
        """The nodes above `stored`, its site first."""
        ids = stored.path.strip("/").split("/")[:-1]
        found = self.session.scalars(select(AssetRow).where(AssetRow.id.in_(ids)))
        rows = {row.id: row for row in found}
        return [_stored(rows[i]) for i in ids if i in rows]

    def page(
        self,
        *,
        kind: AssetKind | None = None,
        parent: str | None = None,
        under: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[StoredAsset]:
        """Nodes in path order (a tree's order), after the path `after`."""
        stmt = select(AssetRow).order_by(AssetRow.path).limit(limit)
        if kind is not None:
            stmt = stmt.where(AssetRow.kind == kind.value)
        if parent is not None:
            stmt = stmt.where(AssetRow.parent_id == parent)
        if under is not None:
            top = self.get(under).path
            stmt = stmt.where(AssetRow.path.startswith(top, autoescape=True))
        if after is not None:
            stmt = stmt.where(AssetRow.path > after)
        return [_stored(row) for row in self.session.scalars(stmt)]

    def counts(self, asset_ids: Iterable[str]) -> dict[str, int]:
        """How many children each of `asset_ids` has (none: absent)."""
        stmt = (
            select(AssetRow.parent_id, func.count())
            .where(AssetRow.parent_id.in_(list(asset_ids)))
            .group_by(AssetRow.parent_id)
        )
        return {str(parent): int(n) for parent, n in self.session.execute(stmt)}

    def remove(self, asset_id: str) -> None:
        """Delete a node with nothing under it; Conflict (`asset_has_children`)
        otherwise."""
        self.get(asset_id)
        if self.counts([asset_id]):
            raise Conflict(
                f"asset {asset_id!r} has nodes under it: move or delete them first",
                rule="asset_has_children",
            )
        self.session.execute(delete(AssetRow).where(AssetRow.id == asset_id))

    def sensors_under(self, asset_id: str) -> Select[str]:
        """The sensor nodes at or under a node, as a select to filter by
        (NotFound when there is no such node)."""
        top = self.get(asset_id).path
        return select(AssetRow.id).where(
            AssetRow.kind == AssetKind.SENSOR.value,
            AssetRow.path.startswith(top, autoescape=True),
        )

    def series_under(self, asset_id: str) -> Select[str]:
        """The series under a node: the axes of the sensor nodes at or under
        it, as a select to filter by."""
        sensors = self.sensors_under(asset_id)
        return select(SeriesRow.series_id).where(SeriesRow.sensor_id.in_(sensors))

    def count_series_under(self, asset_id: str) -> int:
        stmt = select(func.count()).select_from(self.series_under(asset_id).subquery())
        return int(self.session.scalar(stmt) or 0)

    def set_floorplan(self, site_id: str, plan: dict[str, Any]) -> None:
        self.session.execute(
            update(AssetRow).where(AssetRow.id == site_id).values(floorplan=plan)
        )

    def floorplan_of(self, site_id: str) -> dict[str, Any] | None:
        stmt = select(AssetRow.floorplan).where(AssetRow.id == site_id)
        return self.session.scalar(stmt)

    def sensor_paths(self) -> list[tuple[str, str]]:
        """(id, path) of every sensor node."""
        stmt = select(AssetRow.id, AssetRow.path).where(
            AssetRow.kind == AssetKind.SENSOR.value
        )
        return [(asset_id, path) for asset_id, path in self.session.execute(stmt)]
