"""Isolation forest detector: a reading is anomalous when the pattern of its
recent readings is isolated faster than the training readings' ever were.

Each reading is described by causal windowed features (`windows.py`) of its
residual from the value expected at its time: the centre of the `seasonal`
model for the period found in the data (one flat centre when the series does
not repeat), in sigmas of that model's spread. An isolation forest
(scikit-learn, a fixed seed) is grown on the training readings' features and
kept as arrays (`trees.py`), scoring beyond the training range too. The
windows holding a training reading outside the band (below) are left out: a
few spikes among the training readings would otherwise widen the range the
trees take for normal, and hide the next ones.

The threshold is the training scores' (1 − `false_alarm_rate`) quantile,
extrapolated along an exponential tail fitted to the excesses over their top
TAIL (peaks over threshold): a model trained on fewer readings than
1 / `false_alarm_rate` still gets a threshold for that rate.

The band is expected ± `threshold_sigma` sigmas of the spread at that time
(4.5, as `seasonal`'s): where a lone reading's residual alone is unusual. The
anomaly score is the larger of the trees'
score over their threshold and the reading's distance from the expected value
in band half-widths: above 1 is an anomaly. The trees' score saturates (a
reading 50 sigmas out isolates hardly faster than one 10 sigmas out, and a
reading without readings before it shows only its residual), so a reading far
outside the band is an anomaly, and a larger one, whatever its window; a
pattern inside the band (a stuck sensor, a burst of noise) is the trees' call
(`isolated`).

Hyperparameters: `window` (readings), `trees`, `samples` (readings per tree),
`false_alarm_rate` (of the trees), `threshold_sigma` (of the band), and
`period_s`, `phases` as `seasonal` takes them.

Two things follow from the windows. A lasting offset is flagged as it begins:
once its window is full, only the residual and the mean are unusual, and a
random split seldom picks one of two features of five early. A spike makes
the `window − 1` readings after it unusual too (their windows hold it).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from atalaia.core.detectors.base import FloatArray, check_hyperparameters
from atalaia.core.detectors.phases import BandPools, PhaseBand, Widths
from atalaia.core.detectors.seasonal import Seasonal
from atalaia.core.detectors.trees import MAX_SAMPLES, Float32Array, Trees
from atalaia.core.detectors.windows import FEATURES, window_features
from atalaia.core.explanations import Reason
from atalaia.errors import InvalidHyperparameters, InvalidSeries

AnyArray = npt.NDArray[Any]

NAME = "isolation_forest"
ISOLATED = Reason.ISOLATED_PATTERN
DEFAULTS = {
    "window": 5.0,
    "trees": 300.0,
    "samples": 256.0,
    "false_alarm_rate": 1e-4,
    "threshold_sigma": Seasonal.defaults["threshold_sigma"],
}
OPTIONAL = frozenset({"period_s", "phases"})  # as `seasonal` takes them
# Whole-number hyperparameters and their bounds.
COUNTS = {"window": (2, 1000), "trees": (1, 1000), "samples": (2, MAX_SAMPLES)}
SEED = 0
TAIL, MIN_EXCESSES = 0.01, 10  # the training scores the tail is fitted to
MIN_WINDOWS = 64  # training readings with a full window, at the least
# Features beyond it are clipped to it, so that float32 keeps them finite.
MAX_FEATURE = 1e30
FORMAT = "atalaia.isolation_forest.2"


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Per reading: the anomaly score (1 at the threshold), the expected value,
    the band's half-width, and whether the trees gave the score (an isolated
    pattern) rather than the band."""

    score: FloatArray
    expected: FloatArray
    half_width: FloatArray
    isolated: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Forest:
    """A fitted isolation forest of one series."""

    hyperparameters: dict[str, float]
    spread: PhaseBand  # the expected value and one sigma, per phase
    typical: FloatArray  # each feature's training median
    trees: Trees
    threshold: float  # the trees' score at which the anomaly score is 1

    def score(self, timestamps: FloatArray, values: FloatArray) -> Verdicts:
        """Score consecutive readings (timestamps increasing)."""
        expected, sigma = _spread_at(self.spread, timestamps)
        features = window_features(values, expected, sigma, self.window, self.typical)
        pattern = self.trees.scores(_float32(features)) / self.threshold
        half_width = sigma * self.hyperparameters["threshold_sigma"]
        outside = np.abs(values - expected) / half_width
        isolated = pattern >= outside
        return Verdicts(
            np.where(isolated, pattern, outside), expected, half_width, isolated
        )

    @property
    def band(self) -> PhaseBand:
        """The explanation's band: expected ± z sigmas at each phase (`score`'s
        `expected` and `half_width`)."""
        z = self.hyperparameters["threshold_sigma"]
        spread = self.spread
        return PhaseBand(spread.period, spread.base, spread.departure, spread.width * z)

    @property
    def window(self) -> int:
        """How many readings a reading's features look at, its own included."""
        return int(self.hyperparameters["window"])

    @property
    def nbytes(self) -> int:
        """The bytes its arrays hold in memory."""
        return sum(a.nbytes for a in self._arrays().values())

    def to_bytes(self) -> bytes:
        """The model as an .npz blob of plain arrays: loading it runs no code."""
        out = io.BytesIO()
        np.savez(out, **self._arrays())  # type: ignore[arg-type]
        return out.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Forest:
        """The model `to_bytes` stored; ValueError for anything else."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            if str(arrays.pop("format")) != FORMAT:
                raise ValueError("another format")
            return cls._of(arrays)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"not an {NAME} model ({FORMAT}): {exc}") from exc

    def _arrays(self) -> dict[str, AnyArray]:
        names = sorted(self.hyperparameters)
        band = self.spread
        return {
            "format": np.array(FORMAT),
            "hyperparameter_names": np.array(names),
            "hyperparameter_values": np.array([self.hyperparameters[n] for n in names]),
            "spread.period": np.array(band.period),
            "spread.base": np.array(band.base),
            "spread.departure": band.departure,
            "spread.width": band.width,
            "typical": self.typical,
            "threshold": np.array(self.threshold),
        } | {f"trees.{name}": array for name, array in self.trees.arrays().items()}

    @classmethod
    def _of(cls, arrays: dict[str, AnyArray]) -> Forest:
        names = arrays["hyperparameter_names"].tolist()
        values = arrays["hyperparameter_values"].tolist()
        spread = PhaseBand(
            float(arrays["spread.period"]),
            float(arrays["spread.base"]),
            arrays["spread.departure"].astype(np.float32),
            _widths(arrays["spread.width"]),
        )
        trees = {k[6:]: v for k, v in arrays.items() if k.startswith("trees.")}
        return cls(
            hyperparameters=dict(zip(names, values, strict=True)),
            spread=spread,
            typical=arrays["typical"].astype(np.float64),
            trees=Trees.from_arrays(trees),
            threshold=float(arrays["threshold"]),
        )


def _widths(stored: AnyArray) -> Widths:
    """Widths as stored: float32 phases, or a flat band's exact float64."""
    if stored.dtype not in (np.float32, np.float64):
        raise ValueError(f"widths of type {stored.dtype}")
    widths: Widths = stored
    return widths


def fit_forest(
    timestamps: FloatArray, values: FloatArray, given: Mapping[str, object]
) -> Forest:
    """Fit an isolation forest on validated readings (timestamps increasing)."""
    resolved = resolve_hyperparameters(given)
    window, rate = int(resolved["window"]), resolved["false_alarm_rate"]
    _check_trainable(values, window)
    seasonal = {"threshold_sigma": 1.0} | {
        k: v for k, v in resolved.items() if k in OPTIONAL
    }
    spread = Seasonal().fit_band(timestamps, values, seasonal)
    band_sigma = resolved["threshold_sigma"]
    features = _training_features(timestamps, values, spread, window, band_sigma)
    training = _float32(features)
    trees = Trees.grow(
        training,
        trees=int(resolved["trees"]),
        samples=int(resolved["samples"]),
        seed=SEED,
    )
    threshold = tail_quantile(trees.scores(training), rate)
    return Forest(resolved, spread, np.median(features, axis=0), trees, threshold)


def _check_trainable(values: FloatArray, window: int) -> None:
    least = MIN_WINDOWS + window - 1
    if values.size < least:
        raise InvalidSeries(
            f"{NAME} needs at least {least} readings (window {window}), "
            f"got {values.size}",
            rule="min_points",
        )
    if not np.ptp(values) > 0:
        raise InvalidSeries(f"{NAME} needs readings that vary", rule="non_constant")


def _training_features(
    timestamps: FloatArray,
    values: FloatArray,
    spread: PhaseBand,
    window: int,
    band_sigma: float,
) -> FloatArray:
    """The features of the readings with a full window, but those whose window
    holds a reading outside the band (`band_sigma` sigmas; unless too few
    others remain)."""
    expected, sigma = _spread_at(spread, timestamps)
    unknown = np.full(len(FEATURES), np.nan)
    features = window_features(values, expected, sigma, window, unknown)
    outside = np.abs(features[:, 0]) > band_sigma
    kept = ~sliding_window_view(outside, window).any(axis=1)
    full = features[window - 1 :]
    return full[kept] if kept.sum() >= MIN_WINDOWS else full


def resolve_hyperparameters(given: Mapping[str, object]) -> dict[str, float]:
    """Validate `given` and fill in the defaults (InvalidHyperparameters)."""
    resolved = check_hyperparameters(NAME, DEFAULTS, given, OPTIONAL)
    check(resolved)
    return resolved


def check(resolved: Mapping[str, float]) -> None:
    """The family's rules beyond "a number > 0": whole counts within bounds,
    a false-alarm rate below 1, `phases` as `seasonal` takes them."""
    Seasonal.check(resolved)
    for name, (low, high) in COUNTS.items():
        count = resolved[name]
        if count != int(count) or not low <= count <= high:
            raise InvalidHyperparameters(
                f"{NAME}.{name} must be a whole number in {low} … {high}, "
                f"got {count:g}",
                rule="hyperparameters_range",
            )
    if not resolved["false_alarm_rate"] < 1:
        raise InvalidHyperparameters(
            f"{NAME}.false_alarm_rate must be below 1", rule="hyperparameters_range"
        )


def tail_quantile(scores: FloatArray, rate: float) -> float:
    """The (1 − rate) quantile of `scores`, extrapolated beyond the data along
    an exponential tail fitted to the excesses over their top TAIL (at least
    MIN_EXCESSES scores).

    >>> scores = np.random.default_rng(0).exponential(size=100_000)
    >>> round(tail_quantile(scores, 1e-4), 1), round(-math.log(1e-4), 1)
    (9.4, 9.2)
    """
    top = min(max(TAIL, MIN_EXCESSES / scores.size), 1.0)
    if rate >= top:
        return float(np.quantile(scores, 1.0 - rate))
    base = float(np.quantile(scores, 1.0 - top))
    excess = scores[scores > base] - base
    scale = float(excess.mean()) if excess.size else 0.0
    return base + scale * math.log(top / rate)


def _float32(features: FloatArray) -> Float32Array:
    clipped: Float32Array = np.clip(features, -MAX_FEATURE, MAX_FEATURE).astype(
        np.float32
    )
    return clipped


def _spread_at(
    band: PhaseBand, timestamps: FloatArray
) -> tuple[FloatArray, FloatArray]:
    rows = np.zeros(timestamps.size, np.int64)
    return BandPools.of([band]).at(rows, timestamps)
