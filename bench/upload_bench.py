"""Upload ingest into PostgreSQL: readings/s from a Parquet and a CSV file.

A long-form file (`series_id, timestamp, value`) of `readings` readings of
`series` series, a reading of each series per second, is written in both
formats; each is submitted (`services.uploads.submit_upload`, as the route
does once the body is spooled) into a fresh PostgreSQL database and ingested by
an `UploadRunner` driven here a chunk at a time, until it is done: readings/s
is the readings stored over that time. Targets: ≥ 1 M/s from Parquet,
≥ 0.5 M/s from CSV. A second pass of the Parquet file (everything already
stored) gives the cost of the idempotence checks.

The reference, in the same run: the same readings stored by
`ReadingStore.append_many` straight from arrays, in chunks of the same size,
a transaction each (no file, no conversion, no progress): what the database
takes on this machine. `*_cpu_s` is this process's CPU time (the database
server's is not counted).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.adapters.uploads.files import PARQUET_BATCH_ROWS
from atalaia.core.series import Readings, TimeRange
from atalaia.core.uploads import LayoutRequest, Upload
from atalaia.services.upload_runner import UploadRunner
from atalaia.services.uploads import (
    UploadRequest,
    get_upload,
    new_upload_id,
    submit_upload,
)
from bench._fleet import fresh_database
from bench.predict_bench import Figures, judge

START = 1_733_011_200.0
TARGETS = [
    ("parquet_readings_per_s", "≥", 1_000_000),
    ("csv_readings_per_s", "≥", 500_000),
]


def long_table(readings: int, series: int) -> pa.Table:
    """`readings` readings, one per series per second, in time order."""
    steps = -(-readings // series)
    ids = np.array([f"sensor_{i:06d}_radial" for i in range(series)], dtype=object)
    rng = np.random.default_rng(7)
    return pa.table(
        {
            "series_id": pa.array(np.tile(ids, steps)[:readings], pa.string()),
            "timestamp": np.repeat(START + np.arange(steps), series)[:readings],
            "value": rng.normal(0.3, 0.05, readings),
        }
    )


def write_files(folder: Path, readings: int, series: int) -> dict[str, Path]:
    table = long_table(readings, series)
    files = {"parquet": folder / "readings.parquet", "csv": folder / "readings.csv"}
    pq.write_table(table, files["parquet"], row_group_size=1 << 20)
    pacsv.write_csv(table, files["csv"])
    return files


def store_seconds(db_url: str, table: pa.Table) -> tuple[float, float]:
    """Wall and CPU seconds of storing the table's readings from arrays."""
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    ids, codes = np.unique(table["series_id"].to_numpy(), return_inverse=True)
    ts, vs = table["timestamp"].to_numpy(), table["value"].to_numpy()
    wall, cpu = time.perf_counter(), time.process_time()
    for a in range(0, len(table), PARQUET_BATCH_ROWS):
        b = a + PARQUET_BATCH_ROWS
        order = np.argsort(codes[a:b], kind="stable")
        chunk_codes = codes[a:b][order]
        cuts = np.flatnonzero(np.diff(chunk_codes)) + 1
        batch = {
            str(ids[c[0]]): Readings(t, v)
            for c, t, v in zip(
                np.split(chunk_codes, cuts), np.split(ts[a:b][order], cuts),
                np.split(vs[a:b][order], cuts), strict=True,
            )
        }  # fmt: skip
        with sessions() as session:
            ReadingStore(session).append_many(batch)
            session.commit()
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    return elapsed


def ingest_seconds(
    db_url: str, source: Path, home: Path
) -> tuple[float, float, Upload]:
    """Submit a copy of `source` and ingest it; the wall and CPU seconds from
    the first chunk to the last, and the upload as it ended."""
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    upload_id = new_upload_id()
    spool = home / f"{upload_id}.part"
    shutil.copyfile(source, spool)
    artifacts = LocalArtifactStore(home / "artifacts")
    with sessions() as session:
        submit_upload(
            session=session, upload_id=upload_id, spool=spool,
            artifacts=artifacts, file_name=source.name,
            request=UploadRequest(LayoutRequest()), actor="bench",
        )  # fmt: skip
        session.commit()
    runner = UploadRunner(
        sessions, artifacts=artifacts, spool_dir=home, time_range=TimeRange()
    )
    wall, cpu = time.perf_counter(), time.process_time()
    while runner.step():
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with sessions() as session:
        upload = get_upload(session=session, upload_id=upload_id)
    engine.dispose()
    return wall, cpu, upload


def upload(readings: int, series: int, url: str | None) -> tuple[Figures, str]:
    """Readings/s of each format's ingest and of the reference (see the module)."""
    figures: Figures = {"readings": readings, "series": series}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_files(folder, readings, series)
        with fresh_database(url, "bench_upload_reference") as db_url:
            upgrade_database(db_url)
            wall, cpu = store_seconds(db_url, pq.read_table(files["parquet"]))
            _add(figures, "reference", readings, wall, cpu)
        for kind, path in files.items():
            with fresh_database(url, f"bench_upload_{kind}") as db_url:
                upgrade_database(db_url)
                wall, cpu, done = ingest_seconds(db_url, path, folder)
                assert done.readings_stored == readings, done
                figures[f"{kind}_mb"] = round(path.stat().st_size / 1e6, 1)
                _add(figures, kind, readings, wall, cpu)
                if kind == "parquet":
                    wall, cpu, twice = ingest_seconds(db_url, path, folder)
                    assert twice.readings_stored == 0, twice
                    _add(figures, "parquet_again", readings, wall, cpu)
    lines = [
        f"{kind}: {figures[f'{kind}_s']} s ({figures[f'{kind}_cpu_s']} s CPU here), "
        f"{figures[f'{kind}_readings_per_s']:,} readings/s"
        for kind in ("reference", "parquet", "parquet_again", "csv")
    ]
    lines.extend(judge(figures, TARGETS))
    return figures, "\n".join(lines)


def _add(figures: Figures, kind: str, readings: int, wall: float, cpu: float) -> None:
    figures[f"{kind}_s"] = round(wall, 2)
    figures[f"{kind}_cpu_s"] = round(cpu, 2)
    figures[f"{kind}_readings_per_s"] = round(readings / wall)
