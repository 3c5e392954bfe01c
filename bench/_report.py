"""Print a benchmark's figures and append a dated row to bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 / max of durations in seconds, as milliseconds."""
    ms = np.asarray(samples_s) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": float(ms.max())}


def p50_p99(name: str, samples_s: list[float]) -> dict[str, float]:
    """`{name}_p50_ms` and `{name}_p99_ms` of durations in seconds, rounded."""
    found = percentiles(samples_s)
    return {f"{name}_{k}": round(float(found[k]), 1) for k in ("p50_ms", "p99_ms")}


def _commit() -> str:
    """The short commit, with `+changes` when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            # RESULTS.md itself changes with every recorded run
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!bench/RESULTS.md",
            ],  # fmt: skip
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    return f"{head or '?'}{'+changes' if dirty else ''}"


def report(name: str, figures: dict[str, float | int], *, record: bool) -> None:
    cells = ", ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in figures.items()
    )
    sys.stdout.write(f"{name}: {cells}\n")
    if not record:
        return
    python = platform.python_version()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, python {python}"
    command = "python -m bench " + " ".join(sys.argv[1:])
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {machine} | {_commit()} "
        f"| `{command}` | {cells} |\n"
    )
    with RESULTS.open("a") as out:
        out.write(row)
