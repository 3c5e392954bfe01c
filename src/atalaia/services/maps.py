"""Where things are: a site's floor plan (an uploaded image) with its machines
and sensors placed on it, and the sensors of the sites within a map's
bounding box; each placed node with its state in the fleet grid
(`core.fleet_states`: a machine's, the worst of its sensors').

No tile server, nothing fetched at run time: a site is a point (latitude,
longitude), a floor plan an image whose pixels are the plan's x/y (origin at
its top left corner).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    AssetStore,
    AuditLog,
    IncidentFilter,
    IncidentStore,
    StoredAsset,
)
from atalaia.core.assets import AssetKind
from atalaia.core.fleet_states import LEGEND
from atalaia.core.ports import ArtifactStore
from atalaia.errors import InvalidInput, NotFound
from atalaia.services import assets

# The images a floor plan may be (SVG may carry scripts: refused), by the
# format Pillow names.
FLOORPLAN_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
MAX_PIXELS = 50_000_000  # a plan's width × height, at most
ALL = 1_000_000  # nodes read at once: more than a fleet's
# Which sensors a view shows (a token's sensor groups), and with them which
# nodes: those above one of them (None: every sensor and node).
SensorFilter = Callable[[str], bool]


class BoundingBox(NamedTuple):
    """A map's bounds, in degrees."""

    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, text: str) -> BoundingBox:
        """`west,south,east,north` (GeoJSON's order); InvalidInput (`bbox`)."""
        try:
            west, south, east, north = (float(v) for v in text.split(","))
        except ValueError:
            raise InvalidInput(
                f"bbox is west,south,east,north in degrees, not {text[:80]!r}",
                rule="bbox",
            ) from None
        box = cls(west, south, east, north)
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise InvalidInput(
                "bbox's west ≤ east within ±180 and south ≤ north within ±90",
                rule="bbox",
            )
        return box

    def holds(self, latitude: float, longitude: float) -> bool:
        return (
            self.south <= latitude <= self.north and self.west <= longitude <= self.east
        )


@dataclass(frozen=True, slots=True)
class Placed:
    """A machine or sensor on its site's floor plan, with its state (None: a
    sensor the platform has no series of) and its incidents of a period (a
    machine: its sensors')."""

    asset: StoredAsset
    state: str | None
    incidents: int = 0


def put_floorplan(
    *,
    session: Session,
    artifacts: ArtifactStore,
    site_id: str,
    data: bytes,
    media_type: str,
    actor: str,
) -> dict[str, Any]:
    """Keep a site's floor plan (a PNG, JPEG or WebP image) and commit; its
    media type and size in pixels."""
    store = AssetStore(session)
    _site(store, site_id)
    width, height = _checked_image(data, media_type)
    plan = {"media_type": media_type, "width": width, "height": height}
    artifacts.put(_key(site_id), data)
    store.set_floorplan(site_id, plan)
    AuditLog(session).record(
        actor=actor, action="asset.floorplan", target=f"asset/{site_id}", **plan
    )
    session.commit()
    return plan


def floorplan(
    *,
    session: Session,
    artifacts: ArtifactStore,
    site_id: str,
    shown: SensorFilter | None = None,
) -> tuple[bytes, str]:
    """A site's floor plan image and its media type (a site with none of the
    sensors `shown`: NotFound)."""
    store = AssetStore(session)
    site = _site(store, site_id)
    if shown is not None:
        assets.visible_to(session=session, shown=shown, including=site_id)
    plan = store.floorplan_of(site.asset.id)
    if plan is None:
        raise NotFound(f"site {site_id!r} has no floor plan", rule="floorplan_exists")
    return artifacts.get(_key(site_id)), str(plan["media_type"])


def site_plan(
    *,
    session: Session,
    site_id: str,
    states: Mapping[str, int],
    since: float,
    shown: SensorFilter | None = None,
) -> tuple[StoredAsset, dict[str, Any] | None, list[Placed]]:
    """A site, its floor plan's facts (None: no plan) and the machines and
    sensors placed on it (the sensors `shown` and the nodes above them), with
    their states (`states`: the grid's code of each sensor) and their
    incidents going at or after `since`."""
    store = AssetStore(session)
    site = _site(store, site_id)
    under = store.page(under=site_id, limit=ALL)
    if shown is not None:
        visible = assets.visible_to(session=session, shown=shown, including=site_id)
        under = [node for node in under if node.asset.id in visible.ids]
    incidents = IncidentStore(session).by_sensor(
        IncidentFilter(asset=site_id, start=since)
    )
    worst: dict[str, int] = {}
    counted: Counter[str] = Counter()
    for sensor in (s for s in under if s.asset.kind is AssetKind.SENSOR):
        code = states.get(sensor.asset.id)
        for ancestor in sensor.path.strip("/").split("/")[:-1]:
            if code is not None and code > worst.get(ancestor, -1):
                worst[ancestor] = code
            counted[ancestor] += incidents.get(sensor.asset.id, 0)
    placed = [
        Placed(
            node,
            _named(states.get(node.asset.id, worst.get(node.asset.id))),
            incidents.get(node.asset.id, counted[node.asset.id]),
        )
        for node in under
        if node.asset.kind.placed_on_plan and node.asset.x is not None
    ]
    return site, store.floorplan_of(site_id), placed


@dataclass(frozen=True, slots=True)
class SiteSummary:
    """A site, its sensors by state (`None`: no series of it known) and its
    incidents of a period."""

    site: StoredAsset
    by_state: dict[str | None, int]
    incidents: int = 0  # going at or after the period's start

    @property
    def sensors(self) -> int:
        return sum(self.by_state.values())

    @property
    def worst(self) -> str | None:
        known = [LEGEND.index(s) for s in self.by_state if s is not None]
        return LEGEND[max(known)] if known else None

    @property
    def alerting(self) -> int:
        """Its sensors anomalous now or in an incident."""
        return sum(n for s, n in self.by_state.items() if s in ALERTING)


ALERTING = ("anomalous", "minor", "major", "critical")


def site_summaries(
    *,
    session: Session,
    states: Mapping[str, int],
    since: float,
    shown: SensorFilter | None = None,
) -> list[SiteSummary]:
    """Every site with its sensors (those `shown`; a site with none of them
    left out) counted by state and their incidents going at or after `since`,
    in tree order: what a map of the fleet shows, without a row per sensor."""
    store = AssetStore(session)
    sites = store.page(kind=AssetKind.SITE, limit=ALL)
    counts: dict[str, Counter[str | None]] = {s.asset.id: Counter() for s in sites}
    incidents = IncidentStore(session).by_sensor(IncidentFilter(start=since))
    per_site: Counter[str] = Counter()
    for sensor_id, path in store.sensor_paths():
        if shown is not None and not shown(sensor_id):
            continue
        site = path.split("/")[1]
        counts[site][_named(states.get(sensor_id))] += 1
        per_site[site] += incidents.get(sensor_id, 0)
    return [
        SiteSummary(s, dict(counts[s.asset.id]), per_site[s.asset.id])
        for s in sites
        if shown is None or counts[s.asset.id]
    ]


def sensors_in(
    *,
    session: Session,
    box: BoundingBox,
    states: Mapping[str, int],
    shown: SensorFilter | None = None,
) -> list[tuple[StoredAsset, StoredAsset, str | None]]:
    """(site, sensor, state) of every sensor `shown` of the sites within `box`."""
    store = AssetStore(session)
    sites = {
        s.asset.id: s
        for s in store.page(kind=AssetKind.SITE, limit=ALL)
        if s.asset.latitude is not None
        and box.holds(s.asset.latitude, s.asset.longitude or 0.0)
    }
    if not sites:
        return []
    sensors = store.page(kind=AssetKind.SENSOR, limit=ALL)  # one read, tree order
    return [
        (sites[site], sensor, _named(states.get(sensor.asset.id)))
        for sensor in sensors
        if (site := sensor.path.split("/")[1]) in sites
        and (shown is None or shown(sensor.asset.id))
    ]


def _named(code: int | None) -> str | None:
    return None if code is None else LEGEND[code]


def _site(store: AssetStore, site_id: str) -> StoredAsset:
    found = store.get(site_id)
    if found.asset.kind is not AssetKind.SITE:
        raise NotFound(
            f"{site_id!r} is a {found.asset.kind}, not a site", rule="site_exists"
        )
    return found


def _checked_image(data: bytes, media_type: str) -> tuple[int, int]:
    """The image's width and height; InvalidInput (`floorplan_image`) when it
    is not an image of `media_type` that decodes."""
    expected = FLOORPLAN_TYPES.get(media_type)
    if expected is None:
        raise InvalidInput(
            f"a floor plan is {', '.join(FLOORPLAN_TYPES)}, not {media_type or 'none'}",
            rule="floorplan_image",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            found, size = image.format, image.size
            if size[0] * size[1] > MAX_PIXELS:
                raise InvalidInput(
                    f"a floor plan has at most {MAX_PIXELS:,} pixels",
                    rule="floorplan_image",
                )
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise InvalidInput(
            f"the body is not a {media_type} image that decodes",
            rule="floorplan_image",
        ) from None
    if found != expected:
        raise InvalidInput(
            f"the body is a {found} image, not {media_type}", rule="floorplan_image"
        )
    return size


def _key(site_id: str) -> str:
    return f"floorplans/{site_id}"
