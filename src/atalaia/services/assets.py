"""Asset hierarchy use cases: import a tree from a file, put or remove a
node, read the tree; each change checked against the whole stored tree first
and audited."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AssetStore, AuditLog
from atalaia.core.assets import Asset, AssetError, Visible, check_assets, visible_nodes
from atalaia.errors import InvalidAssets, NotFound
from atalaia.services.asset_files import read_csv, read_yaml

MAX_ERRORS = 100  # errors an answer lists, at most


class AssetFormat(StrEnum):
    CSV = "csv"
    YAML = "yaml"


@dataclass(frozen=True, slots=True)
class Imported:
    created: int
    replaced: int


def import_assets(
    *, session: Session, text: str, form: AssetFormat, actor: str
) -> Imported:
    """Create or replace the nodes of a file and commit; InvalidAssets, with
    every error (its line, node and rule), when any node breaks a rule:
    then nothing is written."""
    read = read_csv if form is AssetFormat.CSV else read_yaml
    assets, lines, errors = read(text)
    if not assets and not errors:
        errors = [AssetError("", "asset_file_empty", "the file holds no node", None)]
    return _put(session, assets, lines, errors, actor=actor, source=form.value)


def put_asset(*, session: Session, asset: Asset, actor: str) -> Imported:
    """Create or replace one node and commit (InvalidAssets when it breaks a
    rule)."""
    return _put(session, [asset], [None], [], actor=actor, source="api")


def remove_asset(*, session: Session, asset_id: str, actor: str) -> None:
    """Delete a node with nothing under it and commit."""
    AssetStore(session).remove(asset_id)
    AuditLog(session).record(
        actor=actor, action="asset.removed", target=f"asset/{asset_id}"
    )
    session.commit()


def visible_to(
    *, session: Session, shown: Callable[[str], bool], including: str | None = None
) -> Visible:
    """The nodes above the sensors `shown` (those a caller limited to sensor
    groups sees), with how many of them each has as children. A node
    `including` names that is not among them answers as one that does not
    exist (404): whether it exists is not the caller's to learn."""
    visible = visible_nodes(AssetStore(session).sensor_paths(), shown)
    if including is not None and including not in visible.ids:
        raise NotFound(f"asset {including!r} does not exist", rule="asset_exists")
    return visible


def _put(
    session: Session,
    assets: Sequence[Asset],
    lines: Sequence[int | None],
    errors: list[AssetError],
    *,
    actor: str,
    source: str,
) -> Imported:
    store = AssetStore(session)
    errors = errors + check_assets(assets, store.known(), lines)
    if errors:
        raise InvalidAssets([_shown(e) for e in errors[:MAX_ERRORS]])
    created, replaced = store.put(assets, at=datetime.now(UTC))
    AuditLog(session).record(
        actor=actor, action="asset.put", target="assets", source=source,
        created=created, replaced=replaced, first=[a.id for a in assets[:20]],
    )  # fmt: skip
    session.commit()
    return Imported(created, replaced)


def _shown(error: AssetError) -> dict[str, object]:
    return {k: v for k, v in asdict(error).items() if v is not None}
