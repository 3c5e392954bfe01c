"""Training-data snapshots: the readings each version was fitted on, kept in the
artifact store so that any version can be inspected and trained again.

A chunk of jobs trained together writes one Parquet file in long form — one
row per reading and axis: `job` (the training job, named by the version's
lineage), `axis` ("" for a series), `timestamp`, `value` — sorted by job;
the file's metadata holds each job's range of rows, so one version's data is
read from the row groups that hold it. Timestamps are byte-stream split (a
regular clock costs ~0.1 byte), values zstd-compressed as they are (quantized
readings compress best so). Its key is the digest of what it holds: writing
the same chunk twice writes the same file.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atalaia.core.sensors import SensorData
from atalaia.core.series import Readings

TrainingData = Readings | SensorData
PREFIX = "training-data/"
ROW_GROUP = 65_536
ROWS_KEY = b"atalaia.job_rows"  # {job id: [first row, end row]}
LABELS = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema(
    [
        ("job", LABELS),
        ("axis", LABELS),
        ("timestamp", pa.float64()),
        ("value", pa.float64()),
    ]
)


def encode(data: Mapping[str, TrainingData]) -> tuple[str, bytes]:
    """The snapshot of `data` (by job id): its key and its bytes."""
    jobs: list[str] = []
    axes: list[str] = []
    timestamps: list[np.ndarray] = []
    values: list[np.ndarray] = []
    rows: dict[str, list[int]] = {}
    end = 0
    for job_id in sorted(data):
        start = end
        for axis, stamps, readings in _axes(data[job_id]):
            jobs.append(job_id)
            axes.append(axis)
            timestamps.append(stamps)
            values.append(readings)
            end += stamps.size
        rows[job_id] = [start, end]
    lengths = [t.size for t in timestamps]
    table = pa.table(
        [
            _repeated(jobs, lengths),
            _repeated(axes, lengths),
            pa.array(np.concatenate(timestamps)),
            pa.array(np.concatenate(values)),
        ],
        schema=SCHEMA.with_metadata({ROWS_KEY: json.dumps(rows).encode()}),
    )
    out = io.BytesIO()
    pq.write_table(
        table,
        out,
        row_group_size=ROW_GROUP,
        compression="zstd",
        compression_level=1,
        use_dictionary=["job", "axis"],
        use_byte_stream_split=["timestamp"],
    )
    body = out.getvalue()
    return f"{PREFIX}{hashlib.sha256(body).hexdigest()[:32]}.parquet", body


def _repeated(names: list[str], lengths: list[int]) -> pa.Array:
    """`names[i]` `lengths[i]` times each, dictionary-encoded (no Python object
    per row)."""
    dictionary, index = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    indices = np.repeat(index.astype(np.int32), lengths)
    return pa.DictionaryArray.from_arrays(indices, pa.array(dictionary, pa.string()))


def read(body: bytes, job_id: str) -> pa.Table:
    """The rows of job `job_id` in a snapshot (job, axis, timestamp, value);
    KeyError when it holds none."""
    file = pq.ParquetFile(pa.BufferReader(body))
    metadata = file.schema_arrow.metadata or {}
    start, end = json.loads(metadata[ROWS_KEY])[job_id]
    groups, first = [], 0
    for i in range(file.num_row_groups):
        size = file.metadata.row_group(i).num_rows
        if first < end and start < first + size:
            groups.append(i)
        first += size
    skipped = sum(file.metadata.row_group(i).num_rows for i in range(groups[0]))
    table = file.read_row_groups(groups)
    return table.slice(start - skipped, end - start)


def decode(body: bytes, job_id: str) -> TrainingData:
    """The data job `job_id` was fitted on."""
    table = read(body, job_id)
    axes = table.column("axis").to_pylist()
    timestamps = table.column("timestamp").to_numpy()
    values = table.column("value").to_numpy()
    names = sorted(set(axes))
    if names == [""]:
        return Readings(timestamps, values)
    per_axis = np.asarray(axes, dtype=object)
    first = per_axis == names[0]
    matrix = np.column_stack([values[per_axis == name] for name in names])
    return SensorData(tuple(names), timestamps[first], matrix)


def _axes(data: TrainingData) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if isinstance(data, Readings):
        return [("", data.timestamps, data.values)]
    return [
        (axis, data.timestamps, data.values[:, i]) for i, axis in enumerate(data.axes)
    ]
