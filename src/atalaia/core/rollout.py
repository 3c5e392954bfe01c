"""Canary rollouts, as rules: which readings the candidate answers, whether its
figures pass the gates against production's, and what a step does.

A reading goes to the candidate when its draw, a hash of (series, timestamp)
in [0, 1), falls below the rollout's share: the same reading always goes the
same way (a replay gives the same answer), every replica agrees, and growing
the share only moves readings from production to the candidate, never back.
Every `interval_s` a step compares the candidate's figures with production's
(`judge`): the share grows by `increment` while the gates hold, the candidate
takes over at 100 %, and the first failed gate rolls it back (`step`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
KeyArray = npt.NDArray[np.uint64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_TOP_53 = np.uint64(11)  # a double's mantissa: the high 53 bits make [0, 1)


def series_key(series_id: str) -> int:
    """A stable 64-bit key of a series id (the same on every process)."""
    digest = hashlib.blake2b(series_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def draws(keys: KeyArray, timestamps: FloatArray) -> FloatArray:
    """Each reading's draw in [0, 1): SplitMix64's finaliser of its series' key
    and its timestamp's bits, uniform and independent of both's patterns."""
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as meant
        z = keys ^ (timestamps.astype(np.float64).view(np.uint64) * _GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        z ^= z >> np.uint64(31)
    drawn: FloatArray = (z >> _TOP_53).astype(np.float64) / float(2**53)
    return drawn


_MASK = 2**64 - 1
_FLOAT_BITS = struct.Struct("<d")
_UINT_BITS = struct.Struct("<Q")


def draw(key: int, timestamp: float) -> float:
    """One reading's draw, as `draws` gives it, in plain integers (a single
    prediction pays ~1 µs, not numpy's ~10 µs per call)."""
    bits: int = _UINT_BITS.unpack(_FLOAT_BITS.pack(timestamp))[0]
    z = key ^ ((bits * 0x9E3779B97F4A7C15) & _MASK)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return (z >> 11) / float(2**53)


def to_candidate(
    keys: KeyArray, timestamps: FloatArray, share: float
) -> npt.NDArray[np.bool_]:
    """Which readings the candidate answers at `share` (a fraction, 0–1)."""
    return draws(keys, timestamps) < share


@dataclass(frozen=True, slots=True)
class CanaryPlan:
    """The shares of a canary, in percent: `initial`, then `increment` more
    every `interval_s` while the gates hold."""

    initial: float = 5.0
    increment: float = 15.0
    interval_s: float = 2 * 3600.0

    def __post_init__(self) -> None:
        for name in ("initial", "increment"):
            if not 0 < getattr(self, name) <= 100:
                raise ValueError(f"{name} is a percentage in (0, 100]")
        if not self.interval_s > 0:
            raise ValueError("interval_s must be positive")


@dataclass(frozen=True, slots=True)
class Gates:
    """What a candidate must show at each step: an error rate and a p99
    latency below these, an anomaly rate within `anomaly_rate_tolerance` of
    production's (relative), over at least `min_predictions` answers."""

    max_error_rate: float = 0.005
    max_p99_ms: float = 100.0
    anomaly_rate_tolerance: float = 0.2
    min_predictions: int = 100


@dataclass(frozen=True, slots=True)
class Figures:
    """A version's answers over a step: how many, how many failed, how many
    were anomalies, and the 99th percentile of their latency."""

    predictions: int
    errors: int
    anomalies: int
    p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.predictions if self.predictions else 0.0

    @property
    def anomaly_rate(self) -> float:
        return self.anomalies / self.predictions if self.predictions else 0.0


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    TOO_FEW = "too_few"  # not enough answers yet to judge: wait


@dataclass(frozen=True, slots=True)
class Verdict:
    """A step's judgement, with the figures that decided it (for the ledger)."""

    outcome: Outcome
    reasons: tuple[str, ...]
    evidence: dict[str, float] = field(default_factory=dict)


def judge(candidate: Figures, production: Figures, gates: Gates) -> Verdict:
    """Whether the candidate's figures pass the gates against production's."""
    evidence = {
        "candidate_predictions": float(candidate.predictions),
        "candidate_error_rate": candidate.error_rate,
        "candidate_p99_ms": candidate.p99_ms,
        "candidate_anomaly_rate": candidate.anomaly_rate,
        "production_predictions": float(production.predictions),
        "production_anomaly_rate": production.anomaly_rate,
    }
    if candidate.predictions < gates.min_predictions:
        reason = f"{candidate.predictions} answers, fewer than {gates.min_predictions}"
        return Verdict(Outcome.TOO_FEW, (reason,), evidence)
    reasons = []
    if candidate.error_rate >= gates.max_error_rate:
        reasons.append(
            f"error rate {candidate.error_rate:.2%} ≥ {gates.max_error_rate:.2%}"
        )
    if candidate.p99_ms >= gates.max_p99_ms:
        reasons.append(f"p99 {candidate.p99_ms:.1f} ms ≥ {gates.max_p99_ms:.0f} ms")
    # Production's rate is the reference only over enough answers of its own.
    expected = production.anomaly_rate
    allowed = gates.anomaly_rate_tolerance * expected
    if production.predictions >= gates.min_predictions and (
        abs(candidate.anomaly_rate - expected) > allowed
    ):
        reasons.append(
            f"anomaly rate {candidate.anomaly_rate:.2%} is not within "
            f"±{gates.anomaly_rate_tolerance:.0%} of production's {expected:.2%}"
        )
    outcome = Outcome.FAILED if reasons else Outcome.PASSED
    return Verdict(outcome, tuple(reasons), evidence)


@dataclass(frozen=True, slots=True)
class Canary:
    """A series' canary: `candidate` answers `percentage` % of its readings,
    `production` the rest; the next step is due at `next_step_at`."""

    series_id: str
    candidate: int
    production: int | None
    percentage: float
    plan: CanaryPlan
    next_step_at: float

    @property
    def share(self) -> float:
        return self.percentage / 100.0


def start(
    series_id: str, candidate: int, production: int | None, plan: CanaryPlan, now: float
) -> Canary:
    """A canary at its initial share, its first step `plan.interval_s` away."""
    return Canary(
        series_id, candidate, production, plan.initial, plan, now + plan.interval_s
    )


class Action(StrEnum):
    WAIT = "wait"  # too few answers: judge again at the next step
    GROW = "grow"
    PROMOTE = "promote"  # the next share is 100 %: the candidate becomes Production
    ROLL_BACK = "roll_back"


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    canary: Canary  # as it goes on (WAIT, GROW), or as it ended
    verdict: Verdict


def step(canary: Canary, verdict: Verdict, now: float) -> Step:
    """What a due step does with its verdict."""
    later = now + canary.plan.interval_s
    if verdict.outcome is Outcome.FAILED:
        return Step(Action.ROLL_BACK, canary, verdict)
    if verdict.outcome is Outcome.TOO_FEW:
        return Step(Action.WAIT, replace(canary, next_step_at=later), verdict)
    grown = min(100.0, canary.percentage + canary.plan.increment)
    if grown >= 100.0:  # all readings would be the candidate's: it is Production
        return Step(Action.PROMOTE, replace(canary, percentage=100.0), verdict)
    return Step(
        Action.GROW, replace(canary, percentage=grown, next_step_at=later), verdict
    )
