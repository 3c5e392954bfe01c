"""The asset hierarchy: sites, their areas and lines, machines and sensors.

Operators think in sites → areas/lines → machines → sensors → axes; the
platform's series are the axes. A node has an id of its own (a sensor node's
is the platform's sensor id, `core.series.sensor_of`: its series are the
sensor's axes), a kind, a name, a parent of an earlier kind (`RANKS`: a line
may sit in an area or right in a site, a sensor in a machine or higher), the
attributes a site keeps (`type`, `unit`, `criticality`…) and where it is: a
site by latitude and longitude, a machine or a sensor by x/y on its site's
floor plan (in the plan's units).

A tree is checked before anything is written (`check_assets`): every error
names its node, its line in the file it came from, and the rule it broke. A
node's `path` (`/site/area/machine/`) makes every node under another one a
prefix search.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from atalaia.core.series import SERIES_ID_PATTERN

MAX_NAME = 256
MAX_ATTRIBUTES = 32
MAX_DEPTH = 5  # site, area, line, machine, sensor


class AssetKind(StrEnum):
    SITE = "site"
    AREA = "area"
    LINE = "line"
    MACHINE = "machine"
    SENSOR = "sensor"

    @property
    def rank(self) -> int:
        """Its depth in a full tree: a parent's rank is lower than its child's."""
        return RANKS.index(self)

    @property
    def placed_on_plan(self) -> bool:
        """Whether it is placed by x/y on its site's floor plan."""
        return self in (AssetKind.MACHINE, AssetKind.SENSOR)


RANKS = tuple(AssetKind)


@dataclass(frozen=True, slots=True)
class Asset:
    """A node of the hierarchy; `parent` None for a site."""

    id: str
    kind: AssetKind
    name: str
    parent: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    latitude: float | None = None
    longitude: float | None = None
    x: float | None = None
    y: float | None = None


@dataclass(frozen=True, slots=True)
class AssetError:
    """Why a node cannot be taken: `line` in its file (None: not from one)."""

    id: str
    rule: str
    detail: str
    line: int | None = None


class Known(NamedTuple):
    """A node stored already, as checking a tree needs it."""

    kind: AssetKind
    parent: str | None


def check_assets(
    assets: Sequence[Asset],
    known: Mapping[str, Known],
    lines: Sequence[int | None] | None = None,
) -> list[AssetError]:
    """The errors of `assets` (with `lines`, each one's line in its file)
    against each other and the nodes `known` already, which they replace
    where they share an id (a stored node left under one of them that cannot
    stay there is an error too); none when they may all be written.

    >>> site = Asset("plant1", AssetKind.SITE, "Plant 1", latitude=41.1, longitude=-8.6)
    >>> press = Asset("press7", AssetKind.MACHINE, "Press 7", parent="plant1")
    >>> check_assets([site, press], {})
    []
    >>> [e.rule for e in check_assets([press], {})]
    ['asset_parent_exists']
    >>> [e.rule for e in check_assets([Asset("s", AssetKind.SENSOR, "S")], {})]
    ['asset_parent_kind']
    """
    at = list(lines) if lines is not None else [None] * len(assets)
    kinds = {asset_id: node.kind for asset_id, node in known.items()}
    errors: list[AssetError] = []
    seen: set[str] = set()
    for asset, line in zip(assets, at, strict=True):
        if asset.id in seen:
            errors.append(AssetError(asset.id, "asset_id_unique", "named twice", line))
        seen.add(asset.id)
        kinds[asset.id] = asset.kind
    for asset, line in zip(assets, at, strict=True):
        errors += [
            AssetError(asset.id, rule, detail, line)
            for rule, detail in _own_errors(asset) + _parent_errors(asset, kinds)
        ]
    for asset_id, node in known.items():
        if asset_id not in seen and node.parent in seen:
            stays = Asset(asset_id, node.kind, asset_id, node.parent)
            errors += [
                AssetError(asset_id, rule, detail)
                for rule, detail in _parent_errors(stays, kinds)
            ]
    return errors


def _own_errors(asset: Asset) -> list[tuple[str, str]]:
    errors = []
    if not SERIES_ID_PATTERN.fullmatch(asset.id):
        errors.append(("asset_id_format", "an id is 1 to 128 of A-Z a-z 0-9 _ . : -"))
    if not 1 <= len(asset.name) <= MAX_NAME:
        errors.append(("asset_name", f"a name is 1 to {MAX_NAME} characters"))
    if len(asset.attributes) > MAX_ATTRIBUTES:
        errors.append(("asset_attributes", f"at most {MAX_ATTRIBUTES} attributes"))
    return errors + _place_errors(asset)


def _place_errors(asset: Asset) -> list[tuple[str, str]]:
    geo, plan = (asset.latitude, asset.longitude), (asset.x, asset.y)
    if asset.kind is AssetKind.SITE:
        if plan != (None, None):
            return [("asset_place", "a site is placed by latitude and longitude")]
        if (geo[0] is None) != (geo[1] is None):
            return [("asset_place", "latitude and longitude go together")]
        if geo[0] is not None and not (
            -90 <= geo[0] <= 90 and -180 <= geo[1] <= 180  # type: ignore[operator]
        ):
            return [("asset_place", "latitude is -90 to 90, longitude -180 to 180")]
        return []
    if geo != (None, None):
        return [("asset_place", f"a {asset.kind} has no latitude or longitude")]
    if not asset.kind.placed_on_plan and plan != (None, None):
        return [("asset_place", f"a {asset.kind} is not placed on a floor plan")]
    if (plan[0] is None) != (plan[1] is None):
        return [("asset_place", "x and y go together")]
    if any(v is not None and not math.isfinite(v) for v in plan):
        return [("asset_place", "x and y are finite numbers")]
    return []


def _parent_errors(
    asset: Asset, kinds: Mapping[str, AssetKind]
) -> list[tuple[str, str]]:
    if asset.parent is None:
        if asset.kind is AssetKind.SITE:
            return []
        return [("asset_parent_kind", f"a {asset.kind} belongs to a site or below")]
    if asset.kind is AssetKind.SITE:
        return [("asset_parent_kind", "a site has no parent")]
    parent = kinds.get(asset.parent)
    if parent is None:
        return [("asset_parent_exists", f"no node {asset.parent!r}")]
    if parent.rank >= asset.kind.rank:
        return [
            (
                "asset_parent_kind",
                f"a {asset.kind} cannot belong to a {parent} ({asset.parent})",
            )
        ]
    return []


def paths(assets: Iterable[Asset], known: Mapping[str, str]) -> dict[str, str]:
    """Each node's path (`/site/…/id/`) from its parent's: among `assets`
    (checked), or `known` (id → path) already.

    >>> paths([Asset("m", AssetKind.MACHINE, "M", parent="p"),
    ...        Asset("p", AssetKind.SITE, "P")], {})
    {'p': '/p/', 'm': '/p/m/'}
    """
    by_id = {a.id: a for a in assets}
    found: dict[str, str] = {}

    def path_of(asset_id: str) -> str:
        if asset_id in found:
            return found[asset_id]
        asset = by_id.get(asset_id)
        if asset is None:
            return known[asset_id]
        head = "/" if asset.parent is None else path_of(asset.parent)
        found[asset_id] = f"{head}{asset_id}/"
        return found[asset_id]

    for asset in sorted(by_id.values(), key=lambda a: a.kind.rank):
        path_of(asset.id)
    return found


@dataclass(frozen=True, slots=True)
class Visible:
    """The nodes a caller limited to some sensors sees: those sensors and the
    nodes above one of them; `children`: how many of those each has (none:
    absent)."""

    ids: frozenset[str]
    children: Mapping[str, int]


def visible_nodes(
    sensor_paths: Iterable[tuple[str, str]], shown: Callable[[str], bool]
) -> Visible:
    """The nodes above the sensors `shown`, of every sensor's (id, path).

    >>> seen = visible_nodes([("s1", "/a/m/s1/"), ("s2", "/a/m/s2/"),
    ...                       ("s3", "/b/s3/")], lambda s: s != "s3")
    >>> sorted(seen.ids), sorted(seen.children.items())
    (['a', 'm', 's1', 's2'], [('a', 1), ('m', 2)])
    """
    ids: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for sensor_id, path in sensor_paths:
        if shown(sensor_id):
            chain = path.strip("/").split("/")
            ids.update(chain)
            edges.update(zip(chain, chain[1:], strict=False))
    return Visible(frozenset(ids), Counter(parent for parent, _ in edges))
