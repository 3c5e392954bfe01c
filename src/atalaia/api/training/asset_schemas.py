"""Request and response bodies of the asset hierarchy (`/assets`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from atalaia.adapters.db.repositories import StoredAsset
from atalaia.core.assets import Asset, AssetKind
from atalaia.services.asset_files import AssetSpec


class AssetBody(BaseModel):
    """A node as `PUT /assets/{id}` takes it (its id from the path)."""

    model_config = ConfigDict(extra="forbid")

    kind: AssetKind
    name: str | None = Field(
        default=None, max_length=256, description="Default: the id"
    )
    parent: str | None = Field(default=None, max_length=128, description="None: a site")
    latitude: float | None = Field(default=None, description="A site's")
    longitude: float | None = Field(default=None, description="A site's")
    x: float | None = Field(
        default=None, description="A machine's or sensor's, on its site's floor plan"
    )
    y: float | None = None
    attributes: dict[str, str] = Field(
        default_factory=dict, description="type, unit, criticality, …"
    )

    def asset(self, asset_id: str) -> Asset:
        return AssetSpec(id=asset_id, **self.model_dump()).asset()


class AssetView(BaseModel):
    id: str
    kind: AssetKind
    name: str
    parent: str | None
    path: str = Field(description="Its ancestors' ids and its own: /site/…/id/")
    attributes: dict[str, str]
    latitude: float | None
    longitude: float | None
    x: float | None
    y: float | None
    children: int

    @classmethod
    def of(cls, stored: StoredAsset, children: int) -> AssetView:
        a = stored.asset
        return cls(
            id=a.id, kind=a.kind, name=a.name, parent=a.parent, path=stored.path,
            attributes=dict(a.attributes), latitude=a.latitude, longitude=a.longitude,
            x=a.x, y=a.y, children=children,
        )  # fmt: skip


class AssetDetail(AssetView):
    ancestors: list[AssetView] = Field(description="From its site down")
    series: int = Field(description="Series under it (the axes of its sensors)")


class AssetPage(BaseModel):
    assets: list[AssetView]
    next_cursor: str | None = Field(description="The last path of this page")


class AssetsPut(BaseModel):
    created: int
    replaced: int
