"""Detection quality on labelled data: SKAB's outlier protocol, per detector and
per kind of anomaly.

SKAB (`../shared/data/skab`, see its README) is a test bench sampled once a
second: each labelled experiment is a CSV whose first 400 rows are normal
operation (the training data) and whose other rows hold one collective anomaly.
Every channel of an experiment is a series: each detector is fitted on each
channel's training rows with its default hyperparameters, and a test row is
flagged when any channel is (the axes of a sensor, seen one by one, as the
per-series detectors serve them). Scores are F1, the false-alarm rate FP/(FP+TN)
and the missed-alarm rate FN/(FN+TP) over every test row, overall and per folder
(`valve1`, `valve2`, `other`), beside the F1 of flagging every test row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from atalaia.core.detectors import DETECTORS, fit_rows, score_columns

SKAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "skab"
TRAIN_ROWS = 400  # the benchmark's protocol
KINDS = ("valve1", "valve2", "other")


@dataclass(slots=True)
class Tally:
    """Confusion counts of flagged rows against labels."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, flagged: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> None:
        self.tp += int((flagged & truth).sum())
        self.fp += int((flagged & ~truth).sum())
        self.tn += int((~flagged & ~truth).sum())
        self.fn += int((~flagged & truth).sum())

    def f1(self) -> float:
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1)

    def far(self) -> float:
        return self.fp / max(self.fp + self.tn, 1)

    def mar(self) -> float:
        return self.fn / max(self.fn + self.tp, 1)


def read_experiment(
    path: Path,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(readings: rows × channels, anomaly labels) of one SKAB CSV."""
    with path.open() as lines:
        header = next(lines).strip().split(";")
        rows = [line.strip().split(";") for line in lines if line.strip()]
    label = header.index("anomaly")
    channels = [i for i, name in enumerate(header[1:], 1) if i < label]
    table = np.array([[float(row[i]) for i in (*channels, label)] for row in rows])
    return table[:, :-1], table[:, -1] > 0.5


def experiments(root: Path) -> Iterator[tuple[str, Path]]:
    """(kind, CSV) of every labelled experiment under `root`."""
    for kind in KINDS:
        for path in sorted((root / kind).glob("*.csv")):
            yield kind, path


def flag_rows(
    algorithm: str, readings: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """The test rows any channel's model flags, fitted on the training rows."""
    models = fit_rows(algorithm, readings[:TRAIN_ROWS].T, {})
    _, anomaly = score_columns(
        models.center[:, None],
        models.scale[:, None],
        models.threshold[:, None],
        readings[TRAIN_ROWS:].T,
    )
    flagged: npt.NDArray[np.bool_] = np.any(anomaly, axis=0)
    return flagged


def quality(root: Path = SKAB) -> dict[str, float | int]:
    """F1 / FAR / MAR of every detector, overall and per kind of anomaly."""
    tallies = {(a, k): Tally() for a in sorted(DETECTORS) for k in ("all", *KINDS)}
    every_row = Tally()  # the reference: flag every test row
    files = 0
    for kind, path in experiments(root):
        readings, labels = read_experiment(path)
        files += 1
        every_row.add(np.ones(labels.size - TRAIN_ROWS, np.bool_), labels[TRAIN_ROWS:])
        for algorithm in sorted(DETECTORS):
            flagged = flag_rows(algorithm, readings)
            for where in ("all", kind):
                tallies[(algorithm, where)].add(flagged, labels[TRAIN_ROWS:])
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
    return figures
