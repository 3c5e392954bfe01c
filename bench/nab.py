"""The NAB score of detected changepoints, as SKAB computes it (its evaluation
module, `chp_score(..., metric="nab")` of waico/tsad, with a window to the
right of each true changepoint).

Each true changepoint opens a scoring window [cp, cp + window] (bounds
included); where two overlap, the later one starts where the earlier ends. In a
window only the first detection counts: a true positive worth A_tp at the
changepoint down to A_fp at the window's end, along a tanh curve sampled on
1,000 steps. A window without a detection costs A_fn; a detection outside every
window costs A_fp; the detections in a window after its first cost nothing.
Over all files, with n windows, the score is
100 × (S − n A_fn) / (n A_tp − n A_fn): 100 for a detector that flags every
changepoint as it happens and nothing else, 0 for one that flags nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

WINDOW_S = 60.0
STEPS = 1000  # of the scoring curve


@dataclass(frozen=True, slots=True)
class Profile:
    """The weights of an outcome: a true positive at its best, a false
    positive, a false negative."""

    tp: float
    fp: float
    fn: float


STANDARD = Profile(tp=1.0, fp=-0.11, fn=-1.0)
LOW_FP = Profile(tp=1.0, fp=-0.22, fn=-1.0)
LOW_FN = Profile(tp=1.0, fp=-0.11, fn=-2.0)


@dataclass(slots=True)
class NabTally:
    """The raw NAB sum and the number of windows, over files."""

    profile: Profile = STANDARD
    window_s: float = WINDOW_S
    raw: float = 0.0
    windows: int = 0

    def add(self, changepoints: FloatArray, detections: FloatArray) -> None:
        """One file: the true changepoints' times (s, strictly increasing) and
        the detections' (increasing)."""
        bounds = scoring_windows(changepoints, self.window_s)
        p = self.profile
        outside = np.ones(detections.size, np.bool_)
        for begin, end in bounds:
            inside = (detections >= begin) & (detections <= end)
            outside &= ~inside
            if inside.any():
                first = float(detections[np.argmax(inside)])
                self.raw += curve((first - begin) / (end - begin), p)
            else:
                self.raw += p.fn
        self.raw += p.fp * int(outside.sum())
        self.windows += len(bounds)

    def score(self) -> float:
        """The normalized score (NaN without any window)."""
        null = self.windows * self.profile.fn
        perfect = self.windows * self.profile.tp
        if perfect == null:
            return float("nan")
        return 100 * (self.raw - null) / (perfect - null)


def scoring_windows(
    changepoints: FloatArray, width: float
) -> list[tuple[float, float]]:
    """[cp, cp + width] of each changepoint; an overlapping one starts where
    the one before it ends."""
    bounds: list[tuple[float, float]] = []
    for cp in changepoints.tolist():
        begin = cp
        if bounds and bounds[-1][1] >= begin:
            begin = bounds[-1][1]
        bounds.append((begin, cp + width))
    return bounds


def curve(position: float, p: Profile) -> float:
    """A true positive's worth at `position` (0 … 1) in its window: A_tp at the
    start, A_fp at the end."""
    step = min(int(position * STEPS), STEPS - 1)
    x = -np.pi / 2 + step * np.pi / (STEPS - 1)
    return float((p.tp - p.fp) / 2 * (1 - np.tanh(x) / np.tanh(np.pi / 2)) + p.fp)


def edges(flagged: BoolArray) -> BoolArray:
    """Where a run of flags starts or ends (its first row, the first row after
    it): the changepoints of a detector that only flags rows, as SKAB's
    baselines take them (`abs(prediction.diff())`, the first row as flagged)."""
    before = np.concatenate(([False], flagged[:-1]))
    changed: BoolArray = flagged != before
    return changed
