"""The asset hierarchy as people write it: a CSV file (a node a line) or a
YAML file (nodes nested under their parents' `children`), read into nodes
with their line numbers, for `core.assets.check_assets`.

CSV: a header with `id`, `kind` and any of `name` (default: the id),
`parent`, `latitude`, `longitude`, `x`, `y`; every other column is an
attribute (`type`, `unit`, `criticality`…), empty cells left out. YAML: a list
of nodes (or `{assets: [...]}`), each a mapping of those fields with
`attributes:` and `children:`; a child's parent is the node it is nested in,
a top-level node without a kind is a site.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atalaia.core.assets import MAX_ATTRIBUTES, Asset, AssetError, AssetKind

_FIELDS = ("id", "kind", "name", "parent", "latitude", "longitude", "x", "y")
_LINE = "__line__"


class AssetSpec(BaseModel):
    """A node as a file or a request gives it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    kind: AssetKind = AssetKind.SITE
    name: str | None = Field(default=None, max_length=256)
    parent: str | None = Field(default=None, max_length=128)
    latitude: float | None = None
    longitude: float | None = None
    x: float | None = None
    y: float | None = None
    attributes: dict[str, str] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)

    def asset(self) -> Asset:
        return Asset(
            self.id, self.kind, self.name or self.id, self.parent,
            dict(self.attributes), self.latitude, self.longitude, self.x, self.y,
        )  # fmt: skip


Parsed = tuple[list[Asset], list[int | None], list[AssetError]]


def read_csv(text: str) -> Parsed:
    """The nodes of a CSV file, their lines, and the lines that could not be
    read."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"id", "kind"} - set(reader.fieldnames or ())
    if missing:
        detail = f"the header names no {', '.join(sorted(missing))} column"
        return [], [], [AssetError("", "asset_file_header", detail, 1)]
    specs: list[tuple[dict[str, Any], int | None]] = []
    for row in reader:
        cells = {k: v.strip() for k, v in row.items() if k is not None and v}
        fields: dict[str, Any] = {k: v for k, v in cells.items() if k in _FIELDS}
        fields["attributes"] = {k: v for k, v in cells.items() if k not in _FIELDS}
        specs.append((fields, reader.line_num))
    return _taken(specs)


def read_yaml(text: str) -> Parsed:
    """The nodes of a YAML file (nested), their lines, and those that could
    not be read."""
    try:
        loaded = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return [], [], [AssetError("", "asset_file_yaml", str(exc)[:300], line)]
    if isinstance(loaded, dict) and set(loaded) - {_LINE} == {"assets"}:
        loaded = loaded["assets"]
    if not isinstance(loaded, list):
        detail = "a YAML file of assets is a list of nodes (or assets: [...])"
        return [], [], [AssetError("", "asset_file_yaml", detail, 1)]
    return _taken(list(_flattened(loaded, None)))


def _flattened(
    nodes: list[Any], parent: str | None
) -> Iterator[tuple[dict[str, Any], int | None]]:
    for node in nodes:
        if not isinstance(node, dict):
            yield {"id": ""}, None
            continue
        fields = {k: v for k, v in node.items() if k not in (_LINE, "children")}
        if parent is not None:
            fields.setdefault("parent", parent)
        yield fields, node.get(_LINE)
        children = node.get("children") or []
        if isinstance(children, list):
            yield from _flattened(children, str(node.get("id", "")))


def _taken(specs: list[tuple[dict[str, Any], int | None]]) -> Parsed:
    assets: list[Asset] = []
    lines: list[int | None] = []
    errors: list[AssetError] = []
    for fields, line in specs:
        try:
            assets.append(AssetSpec.model_validate(fields).asset())
            lines.append(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "node"
            detail = f"{where}: {first['msg']}"
            errors.append(
                AssetError(str(fields.get("id", "")), "asset_field", detail, line)
            )
    return assets, lines, errors


class _LineLoader(yaml.SafeLoader):
    """A safe loader that notes each mapping's line."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:  # noqa: FBT001, FBT002
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping
