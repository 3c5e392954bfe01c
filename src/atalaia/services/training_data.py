"""A version's training data, read back from its snapshot in the artifact store
(as Parquet or CSV: a `timestamp` column, then `value` or one column per axis)."""

from __future__ import annotations

import io
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from atalaia.adapters import training_snapshots
from atalaia.adapters.db.repositories import ModelStore
from atalaia.core.ports import ArtifactStore
from atalaia.core.series import Readings
from atalaia.errors import NotFound

Format = Literal["parquet", "csv"]
MEDIA_TYPES: dict[Format, str] = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
}


class SnapshotNotKept(NotFound):
    rule = "training_data_kept"


def training_data(
    session: Session,
    artifacts: ArtifactStore,
    series_id: str,
    version: int,
    fmt: Format,
) -> tuple[bytes, str]:
    """The data version `version` of `series_id` was fitted on, in `fmt`, and
    a file name for it; SnapshotNotKept for a version trained without one."""
    lineage = ModelStore(session).get(series_id, version).lineage
    if lineage.data_snapshot is None:
        raise SnapshotNotKept(
            f"version {version} of {series_id!r} was trained before training "
            "data was kept: it has no snapshot"
        )
    body = artifacts.get(lineage.data_snapshot)
    table = _wide(training_snapshots.decode(body, lineage.job_id))
    out = io.BytesIO()
    if fmt == "csv":
        pa_csv.write_csv(table, out)
    else:
        pq.write_table(table, out, compression="zstd")
    return out.getvalue(), f"{series_id}-v{version}-training-data.{fmt}"


def _wide(data: training_snapshots.TrainingData) -> pa.Table:
    if isinstance(data, Readings):
        return pa.table({"timestamp": data.timestamps, "value": data.values})
    columns = {axis: data.values[:, i] for i, axis in enumerate(data.axes)}
    return pa.table({"timestamp": data.timestamps, **columns})
