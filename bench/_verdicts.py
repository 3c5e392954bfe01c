"""The library's verdicts on labelled rows, and their confusion counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from atalaia import detection

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def flag_rows(
    algorithm: str, timestamps: FloatArray, values: FloatArray, train: int
) -> BoolArray:
    """The rows after the first `train` that `algorithm` flags, fitted with its
    defaults on those first rows (`values`: rows × columns).

    A family that takes the columns (axes, channels) whole
    (`detection.MATRIX_ALGORITHMS`: the sensor families, and `auto`, which
    models several together) is fitted on the training rows and scores each
    test row whole. For the others each column is its own series, fitted and
    scored through `atalaia.detection`, and a row is flagged when any column
    is, as the per-series detectors serve a sensor's axes.
    """
    if algorithm in detection.MATRIX_ALGORITHMS:
        model = detection.fit(algorithm, timestamps[:train], values[:train])
        return model.score(timestamps[train:], values[train:]).anomaly
    flagged = np.zeros(timestamps.size - train, np.bool_)
    for column in values.T:
        model = detection.fit(algorithm, timestamps[:train], column[:train])
        flagged |= model.score(timestamps[train:], column[train:]).anomaly
    return flagged


@dataclass(slots=True)
class Tally:
    """Confusion counts of flagged rows against labels."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, flagged: BoolArray, truth: BoolArray) -> None:
        self.tp += int((flagged & truth).sum())
        self.fp += int((flagged & ~truth).sum())
        self.tn += int((~flagged & ~truth).sum())
        self.fn += int((~flagged & truth).sum())

    def f1(self) -> float:
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1)

    def far(self) -> float:
        """The false-alarm rate FP / (FP + TN)."""
        return self.fp / max(self.fp + self.tn, 1)

    def mar(self) -> float:
        """The missed-alarm rate FN / (FN + TP)."""
        return self.fn / max(self.fn + self.tp, 1)

    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)
