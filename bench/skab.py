"""SKAB's own protocol, per detector: outliers (F1, FAR, MAR) and changepoints
(NAB).

SKAB (`../shared/data/skab`, see its README) is a test bench sampled once a
second: each labelled experiment is a CSV whose first 400 rows are normal
operation (the training data) and whose other rows (the test rows) hold one
collective anomaly. The timestamps are the `datetime` column as epoch seconds.
Each detector is fitted on the training rows with its default
hyperparameters (`flag_rows`): a sensor family (`multivariate`) takes every
channel of an experiment as one sensor's axes and scores each test row whole;
for the others every channel is a series, and a test row is flagged when any
channel is.

Outliers: F1, the false-alarm rate FP/(FP+TN) and the missed-alarm rate
FN/(FN+TP) over every test row, overall and per folder (`valve1`, `valve2`,
`other`), beside the F1 of flagging every test row. Changepoints: the NAB
score (standard profile, a 60 s window to the right of each true changepoint
of the test rows; bench/nab.py) of the edges of the runs of flagged rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench._verdicts import Tally, flag_rows
from bench.nab import NabTally, edges

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SKAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "skab"
TRAIN_ROWS = 400  # the benchmark's protocol
KINDS = ("valve1", "valve2", "other")


@dataclass(frozen=True, slots=True)
class Experiment:
    """One labelled CSV: rows of channels, and the labels of each row."""

    kind: str
    timestamps: FloatArray  # epoch seconds (the CSV's times read as UTC)
    readings: FloatArray  # rows × channels
    anomaly: BoolArray
    changepoint: BoolArray


def read_experiment(kind: str, path: Path) -> Experiment:
    """One `;`-separated CSV of the folder `kind`."""
    with path.open() as lines:
        header = next(lines).strip().split(";")
        rows = [line.strip().split(";") for line in lines if line.strip()]
    labels = [header.index("anomaly"), header.index("changepoint")]
    channels = range(1, labels[0])
    table = np.array([[float(row[i]) for i in (*channels, *labels)] for row in rows])
    times = np.array([row[0] for row in rows], dtype="datetime64[s]")
    return Experiment(
        kind,
        times.astype(np.int64).astype(np.float64),
        table[:, :-2],
        table[:, -2] > 0.5,
        table[:, -1] > 0.5,
    )


def experiments(root: Path) -> Iterator[Experiment]:
    """Every labelled experiment under `root`, folder by folder."""
    for kind in KINDS:
        for path in sorted((root / kind).glob("*.csv")):
            yield read_experiment(kind, path)


def skab_figures(root: Path, algorithms: Sequence[str]) -> dict[str, float | int]:
    """F1 / FAR / MAR overall and per kind of anomaly, and NAB, per detector."""
    tallies = {(a, k): Tally() for a in algorithms for k in ("all", *KINDS)}
    nab = {a: NabTally() for a in algorithms}
    every_row = Tally()  # the reference: flag every test row
    files = 0
    for e in experiments(root):
        files += 1
        truth = e.anomaly[TRAIN_ROWS:]
        times = e.timestamps[TRAIN_ROWS:]
        every_row.add(np.ones(truth.size, np.bool_), truth)
        for algorithm in algorithms:
            flagged = flag_rows(algorithm, e.timestamps, e.readings, TRAIN_ROWS)
            for where in ("all", e.kind):
                tallies[(algorithm, where)].add(flagged, truth)
            nab[algorithm].add(times[e.changepoint[TRAIN_ROWS:]], times[edges(flagged)])
    if not files:
        raise FileNotFoundError(f"no labelled experiment under {root}")
    figures: dict[str, float | int] = {
        "files": files,
        "flag_all_f1": round(every_row.f1(), 3),
    }
    for (algorithm, where), tally in tallies.items():
        if not tally.tp + tally.fp + tally.tn + tally.fn:
            continue  # no experiment of that kind here
        figures[f"{algorithm}_{where}_f1"] = round(tally.f1(), 3)
        if where == "all":
            figures[f"{algorithm}_far"] = round(tally.far(), 3)
            figures[f"{algorithm}_mar"] = round(tally.mar(), 3)
            if nab[algorithm].windows:
                figures[f"{algorithm}_nab"] = round(nab[algorithm].score(), 2)
    return figures
