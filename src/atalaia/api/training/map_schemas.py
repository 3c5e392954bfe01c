"""Answers of the map routes: sensors on a map, a site's floor plan."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from atalaia.adapters.db.repositories import StoredAsset
from atalaia.api.training.asset_schemas import AssetView
from atalaia.core.fleet_states import LEGEND
from atalaia.services.maps import Placed, SiteSummary

_STATE = (
    f"Its state in the fleet grid ({', '.join(LEGEND)}); null: no series of it is known"
)
_INCIDENTS = "Its incidents going at some time of the last `days` (the heat map's)"


class SensorOnMap(BaseModel):
    id: str
    name: str
    site: str
    latitude: float
    longitude: float
    x: float | None = Field(description="On its site's floor plan, in its pixels")
    y: float | None
    state: str | None = Field(description=_STATE)

    @classmethod
    def of(
        cls, site: StoredAsset, sensor: StoredAsset, state: str | None
    ) -> SensorOnMap:
        s = sensor.asset
        return cls(
            id=s.id, name=s.name, site=site.asset.id,
            latitude=site.asset.latitude or 0.0, longitude=site.asset.longitude or 0.0,
            x=s.x, y=s.y, state=state,
        )  # fmt: skip


class SensorsOnMap(BaseModel):
    sensors: list[SensorOnMap]


class Floorplan(BaseModel):
    media_type: str
    width: int = Field(description="Pixels: the x of a node placed on it is 0 to this")
    height: int
    url: str

    @classmethod
    def of(cls, site_id: str, plan: dict[str, Any]) -> Floorplan:
        return cls(
            media_type=plan["media_type"], width=plan["width"], height=plan["height"],
            url=f"/api/v1/sites/{site_id}/floorplan",
        )  # fmt: skip


class PlacedView(BaseModel):
    id: str
    kind: str
    name: str
    parent: str | None
    x: float
    y: float
    state: str | None = Field(description=_STATE + " (a machine: its worst sensor's)")
    incidents: int = Field(description=f"{_INCIDENTS} (a machine: its sensors')")

    @classmethod
    def of(cls, placed: Placed) -> PlacedView:
        a = placed.asset.asset
        return cls(
            id=a.id, kind=a.kind.value, name=a.name, parent=a.parent, x=a.x or 0.0,
            y=a.y or 0.0, state=placed.state, incidents=placed.incidents,
        )  # fmt: skip


class SiteSummaryView(BaseModel):
    site: AssetView
    sensors: int
    by_state: dict[str, int] = Field(
        description="Its sensors by state in the fleet grid; `unknown`: no series "
        "of it is known"
    )
    alerting: int = Field(description="Sensors anomalous now or in an incident")
    worst: str | None = Field(description="Its worst sensor's state")
    incidents: int = Field(description=_INCIDENTS)

    @classmethod
    def of(cls, summary: SiteSummary) -> SiteSummaryView:
        return cls(
            site=AssetView.of(summary.site, 0), sensors=summary.sensors,
            by_state={s or "unknown": n for s, n in summary.by_state.items()},
            alerting=summary.alerting, worst=summary.worst,
            incidents=summary.incidents,
        )  # fmt: skip


class SiteSummaries(BaseModel):
    sites: list[SiteSummaryView]
    incidents_since: float = Field(description="Epoch seconds: `days` ago")


class SitePlan(BaseModel):
    site: AssetView
    floorplan: Floorplan | None
    placed: list[PlacedView]
    incidents_since: float = Field(description="Epoch seconds: `days` ago")
