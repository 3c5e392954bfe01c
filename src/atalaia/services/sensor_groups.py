"""The series a multivariate model takes together: a sensor's axes, or a
group of sensors that the asset hierarchy names.

A model's id is a sensor's (its axes are the series `{sensor}_{axis}`), or a
node of the hierarchy above the sensors — a machine, a line, an area: then
its axes are every series under the node, each named by its series id (a
machine's sensors watched together: one leaving the others is an anomaly even
within its own range).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AssetStore, ReadingStore
from atalaia.core.assets import AssetKind
from atalaia.errors import InvalidInput

MAX_AXES = 64  # what a sensor prediction carries, at most


def axes_of(session: Session, model_id: str) -> dict[str, str]:
    """The series of the model `model_id`, by axis name (empty: none stored);
    InvalidInput (`group_size`) for a group of more than `MAX_AXES` series."""
    assets = AssetStore(session)
    node = assets.find(model_id)
    if node is None or node.asset.kind is AssetKind.SENSOR:
        return ReadingStore(session).axes_of(model_id)
    series = sorted(session.scalars(assets.series_under(model_id)))
    if len(series) > MAX_AXES:
        raise InvalidInput(
            f"{node.asset.kind} {model_id!r} has {len(series)} series; a group "
            f"model takes at most {MAX_AXES} (model a node lower in the hierarchy)",
            rule="group_size",
        )
    return {series_id: series_id for series_id in series}
