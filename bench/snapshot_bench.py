"""Training-data snapshots: what keeping a chunk's data costs beside fitting it."""

from __future__ import annotations

import statistics
import time

import numpy as np

from atalaia.adapters import training_snapshots
from atalaia.core.fitting import fit_series
from atalaia.core.series import Readings


def training_snapshot(
    series: int, points: int, runs: int, algorithm: str
) -> dict[str, float | int]:
    """Write the snapshot of a chunk of `series` × `points` readings (a regular
    minute clock, readings quantized to 0.01) and fit it, in turns; the median
    seconds of each, their ratio, the bytes a reading and one job's read."""
    rng = np.random.default_rng(0)
    clock = 1.7e9 + 60.0 * np.arange(points, dtype=np.float64)
    chunk = {
        f"job-{i:06d}": Readings(clock, np.round(rng.normal(20.0, 3.0, points), 2))
        for i in range(series)
    }
    fits, writes = [], []
    for _ in range(runs):
        start = time.perf_counter()
        fit_series(algorithm, {}, list(chunk.values()))
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        _, body = training_snapshots.encode(chunk)
        writes.append(time.perf_counter() - start)
    start = time.perf_counter()
    training_snapshots.decode(body, f"job-{series // 2:06d}")
    read_ms = (time.perf_counter() - start) * 1e3
    fit_s, write_s = statistics.median(fits), statistics.median(writes)
    return {
        "series": series,
        "points": points,
        "fit_s": fit_s,
        "snapshot_s": write_s,
        "snapshot_to_fit": write_s / fit_s,
        "bytes_per_reading": len(body) / (series * points),
        "read_one_ms": read_ms,
    }
