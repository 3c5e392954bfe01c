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
import math
import struct
from dataclasses import dataclass, field, replace
from datetime import datetime
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
    production's (relative) — and within what sampling alone would move two
    rates of so many answers (`SAMPLING_Z` standard errors: a production
    with no anomaly yet is no reason to refuse a candidate's first) — over
    at least `min_predictions` answers."""

    max_error_rate: float = 0.005
    max_p99_ms: float = 100.0
    anomaly_rate_tolerance: float = 0.2
    min_predictions: int = 100


@dataclass(frozen=True, slots=True)
class Figures:
    """A version's answers in a rollout: how many, how many it could not give
    (`errors`), how many were anomalies, and how many took longer than the
    gates' latency (`slow`: the p99 is under it while they are under 1 %)."""

    predictions: int = 0
    errors: int = 0
    anomalies: int = 0
    slow: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.predictions if self.predictions else 0.0

    @property
    def anomaly_rate(self) -> float:
        return self.anomalies / self.predictions if self.predictions else 0.0

    @property
    def slow_share(self) -> float:
        return self.slow / self.predictions if self.predictions else 0.0


# Standard errors two anomaly rates may differ by from sampling alone (99 %).
SAMPLING_Z = 2.576
# The share of answers allowed over `max_p99_ms`: what a 99th percentile is.
SLOW_SHARE = 0.01


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


@dataclass(frozen=True, slots=True)
class Pairs:
    """The readings both versions scored: how many, on how many their verdicts
    agreed (anomaly or not), and the sums that give their scores' correlation
    (production's score x, the candidate's y)."""

    n: int = 0
    agreements: int = 0
    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_xx: float = 0.0
    sum_yy: float = 0.0
    sum_xy: float = 0.0

    @property
    def agreement(self) -> float:
        return self.agreements / self.n if self.n else 0.0

    @property
    def correlation(self) -> float | None:
        """Pearson's r of the two scores; None while either does not vary."""
        n = self.n
        var_x = n * self.sum_xx - self.sum_x**2
        var_y = n * self.sum_yy - self.sum_y**2
        if n < 2 or var_x <= 0 or var_y <= 0:
            return None
        r = (n * self.sum_xy - self.sum_x * self.sum_y) / math.sqrt(var_x * var_y)
        return max(-1.0, min(1.0, r))


@dataclass(frozen=True, slots=True)
class RolloutFigures:
    """What a rollout has seen so far: the candidate's answers (given, or
    only scored beside production's in a shadow), production's answers, and
    production's verdicts on the readings the candidate scored
    (`production_paired`: the reference its anomaly rate is held to)."""

    candidate: Figures = Figures()
    production: Figures = Figures()
    production_paired: Figures = Figures()
    pairs: Pairs = Pairs()


def _sampling(candidate: Figures, production: Figures) -> float:
    """How far two anomaly rates of these many answers may differ by chance:
    SAMPLING_Z standard errors of their difference, at their pooled rate
    (smoothed by one anomaly in two more answers: no anomaly seen yet is not
    a rate of zero)."""
    n_c, n_p = candidate.predictions, production.predictions
    if not n_c or not n_p:
        return 0.0
    pooled = (candidate.anomalies + production.anomalies + 1) / (n_c + n_p + 2)
    return SAMPLING_Z * math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_p))


def judge(candidate: Figures, production: Figures, gates: Gates) -> Verdict:
    """Whether the candidate's figures pass the gates against production's."""
    evidence = {
        "candidate_predictions": float(candidate.predictions),
        "candidate_error_rate": candidate.error_rate,
        "candidate_slow_share": candidate.slow_share,
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
    if candidate.slow_share > SLOW_SHARE:
        reasons.append(
            f"p99 latency ≥ {gates.max_p99_ms:.0f} ms "
            f"({candidate.slow_share:.1%} of answers slower)"
        )
    # Production's rate is the reference only over enough answers of its own.
    expected = production.anomaly_rate
    allowed = gates.anomaly_rate_tolerance * expected + _sampling(candidate, production)
    evidence["anomaly_rate_allowed"] = allowed
    if production.predictions >= gates.min_predictions and (
        abs(candidate.anomaly_rate - expected) > allowed
    ):
        reasons.append(
            f"anomaly rate {candidate.anomaly_rate:.2%} is not within "
            f"±{gates.anomaly_rate_tolerance:.0%} of production's {expected:.2%} "
            f"(±{allowed:.2%} with sampling)"
        )
    outcome = Outcome.FAILED if reasons else Outcome.PASSED
    return Verdict(outcome, tuple(reasons), evidence)


# A rollout's counters, as inference keeps them and the database adds them up.
COUNTERS = (
    "candidate_predictions", "candidate_errors", "candidate_anomalies",
    "candidate_slow", "production_predictions", "production_errors",
    "production_anomalies", "paired", "paired_agreements",
    "paired_production_anomalies", "sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy",
)  # fmt: skip


def figures_of(counts: dict[str, float]) -> RolloutFigures:
    """A rollout's figures from its COUNTERS (missing ones: zero)."""
    c = {name: counts.get(name, 0) for name in COUNTERS}
    paired = int(c["paired"])
    return RolloutFigures(
        candidate=Figures(
            int(c["candidate_predictions"]), int(c["candidate_errors"]),
            int(c["candidate_anomalies"]), int(c["candidate_slow"]),
        ),
        production=Figures(
            int(c["production_predictions"]), int(c["production_errors"]),
            int(c["production_anomalies"]),
        ),
        production_paired=Figures(
            paired, anomalies=int(c["paired_production_anomalies"])
        ),
        pairs=Pairs(
            paired, int(c["paired_agreements"]), c["sum_x"], c["sum_y"],
            c["sum_xx"], c["sum_yy"], c["sum_xy"],
        ),
    )  # fmt: skip


def judge_rollout(figures: RolloutFigures, gates: Gates) -> Verdict:
    """`judge` of a rollout's candidate against production's verdicts on the
    same readings (all of a shadow's; a canary's routed ones), or against
    production's own answers while too few readings were scored by both; the
    evidence says how far their verdicts and scores agreed."""
    paired = figures.production_paired
    reference = (
        paired if paired.predictions >= gates.min_predictions else figures.production
    )
    verdict = judge(figures.candidate, reference, gates)
    pairs = figures.pairs
    evidence = verdict.evidence | {
        "production_answers": float(figures.production.predictions),
        "paired_readings": float(pairs.n),
        "agreement": pairs.agreement,
    }
    if pairs.correlation is not None:
        evidence["score_correlation"] = pairs.correlation
    return replace(verdict, evidence=evidence)


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


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two proportions (the challenger's x_b of n_b against production's x_a of
    n_a) and the two-sided p-value of their difference (a z-test, pooled);
    None while an arm would expect fewer than MIN_EVENTS events or non-events
    at the pooled rate (too few for the normal approximation)."""

    production: float
    challenger: float
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < SIGNIFICANCE


SIGNIFICANCE = 0.05
MIN_EVENTS = 5  # expected per arm, of each outcome: the normal approximation's rule


def compare(x_a: int, n_a: int, x_b: int, n_b: int) -> Comparison:
    """Production's x_a / n_a against the challenger's x_b / n_b.

    >>> compare(100, 10_000, 160, 10_000).significant
    True
    >>> compare(100, 10_000, 110, 10_000).significant
    False
    >>> compare(0, 2_000, 900, 900).significant  # none against all
    True
    >>> compare(0, 20, 1, 10).p_value is None  # too few to tell
    True
    """
    rate_a = x_a / n_a if n_a else 0.0
    rate_b = x_b / n_b if n_b else 0.0
    pooled = (x_a + x_b) / (n_a + n_b) if n_a + n_b else 0.0
    expected = min(n_a, n_b) * min(pooled, 1 - pooled)
    if expected < MIN_EVENTS:
        return Comparison(rate_a, rate_b, None)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (rate_b - rate_a) / spread
    return Comparison(rate_a, rate_b, math.erfc(abs(z) / math.sqrt(2)))


@dataclass(frozen=True, slots=True)
class Labels:
    """Feedback on a version's anomalies: how many labelled, how many confirmed."""

    labelled: int = 0
    confirmed: int = 0


def ab_report(
    figures: RolloutFigures, production: Labels, challenger: Labels
) -> dict[str, float]:
    """An A/B test's result, as figures: each arm's answers, anomaly rate and
    feedback precision, and each difference's p-value (-1: too few to test)
    and whether it is significant (1) or not (0) at SIGNIFICANCE."""
    a, b = figures.production, figures.candidate
    rates = compare(a.anomalies, a.predictions, b.anomalies, b.predictions)
    precision = compare(
        production.confirmed, production.labelled,
        challenger.confirmed, challenger.labelled,
    )  # fmt: skip
    report = {
        "production_answers": float(a.predictions),
        "challenger_answers": float(b.predictions),
        "challenger_errors": float(b.errors),
        "production_labels": float(production.labelled),
        "challenger_labels": float(challenger.labelled),
    }
    for name, found in (("anomaly_rate", rates), ("precision", precision)):
        report[f"production_{name}"] = found.production
        report[f"challenger_{name}"] = found.challenger
        report[f"{name}_p_value"] = -1.0 if found.p_value is None else found.p_value
        report[f"{name}_significant"] = float(found.significant)
    return report


class State(StrEnum):
    RUNNING = "running"
    PROMOTED = "promoted"  # a canary reached 100 %: its candidate is Production
    ROLLED_BACK = "rolled_back"  # a canary failed its gates, or was rolled back
    PASSED = "passed"  # a shadow's comparison passed (a canary follows if asked)
    REJECTED = "rejected"  # a shadow's comparison failed
    REPORTED = "reported"  # an A/B test's period ended: its report says
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Rollout:
    """A canary or a shadow of `candidate` beside `production` (versions of
    `series_id`), as stored: a shadow's `plan.interval_s` is its length, and
    `then` what follows when it passes ("canary", or "" for a report)."""

    id: int
    series_id: str
    strategy: str  # "canary", "shadow" or "ab"
    candidate: int
    production: int
    percentage: float
    plan: CanaryPlan
    gates: Gates
    then: str
    state: State
    started_at: datetime
    next_step_at: datetime
    ended_at: datetime | None
    actor: str
    reason: str
    outcome: str
    evidence: dict[str, float]

    @property
    def canary(self) -> Canary:
        return Canary(
            self.series_id, self.candidate, self.production, self.percentage,
            self.plan, self.next_step_at.timestamp(),
        )  # fmt: skip


def shadow_verdict(verdict: Verdict) -> Verdict:
    """A shadow's verdict at its end: too few readings to judge is a failure."""
    if verdict.outcome is Outcome.TOO_FEW:
        return replace(verdict, outcome=Outcome.FAILED)
    return verdict
