"""Self-healing: rules that read the platform's own signals and decide what to
do, and the engine's policy over their decisions.

A rule (`Rule`) reads a `Signals` snapshot and returns `Decision`s: an action
on a target (a series, a sensor, a queue, a dependency), why in words, and the
evidence. Before anything is done the engine `judge`s each decision under its
rule's `Policy`:

- a decision whose target's earlier action still stands (a retrain already
  queued, an incident already open: `standing`), or that repeats one recorded
  lately (`Earlier`: the same episode handled, or a decision that did nothing
  less than `repeat_after_s` ago), is a repeat: not acted on, and not
  recorded again (its earlier record says it);
- past the rule's `max_actions_per_hour` (its actions recorded in the hour
  before now, `room`) a decision is `rate_limited`;
- in `dry_run` it is recorded as `dry_run` and nothing is done;
- else it is acted on, and ends `done` or `failed` (or `skipped`, when a
  dependency it needs is left alone for now: a `Circuit`).

A `Circuit` leaves a failing dependency alone for a while, twice as long each
time it fails again; its opening and closing are decisions of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

HOUR_S = 3600.0
REPEAT_AFTER_S = HOUR_S  # a decision that did nothing is not made again sooner
CIRCUIT_RULE = "dependency_circuit"


class Outcome(StrEnum):
    DONE = "done"
    DRY_RUN = "dry_run"
    RATE_LIMITED = "rate_limited"
    FAILED = "failed"
    SKIPPED = "skipped"


# The outcomes of decisions that took (or, in a dry run, would have taken) one
# of the rule's actions: what its rate limit counts.
ACTED = frozenset({Outcome.DONE, Outcome.FAILED, Outcome.DRY_RUN})
# Decisions that changed nothing, made again only after REPEAT_AFTER_S (one
# that failed, or waited for a dependency, is made again at once: the
# dependency's circuit spaces the calls).
IDLE = frozenset({Outcome.DRY_RUN, Outcome.RATE_LIMITED})


@dataclass(frozen=True, slots=True)
class Decision:
    """What a rule decided. `episode` names the occurrence of the condition it
    answers (a silence since a given reading, a backlog since a given job):
    one handled already is not handled again."""

    rule: str
    action: str
    target: str
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)  # JSON
    episode: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.action, self.target


@dataclass(frozen=True, slots=True)
class Policy:
    """How the engine treats a rule's decisions; 0 actions an hour: no limit."""

    enabled: bool = True
    dry_run: bool = False
    max_actions_per_hour: int = 0


@dataclass(frozen=True, slots=True)
class Earlier:
    """The last decision recorded of a rule's action on a target."""

    outcome: Outcome
    at: float  # epoch seconds
    episode: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision and what became of it; `note` says why when not done."""

    decision: Decision
    outcome: Outcome
    note: str = ""


@dataclass(frozen=True, slots=True)
class Judged:
    """`act`: the decisions to carry out now; `settled`: those recorded as they
    are (dry run, rate limited); `repeats`: those not made again."""

    act: list[Decision]
    settled: list[Verdict]
    repeats: list[Verdict]


@dataclass(frozen=True, slots=True)
class DriftSignal:
    """A production version whose recent readings left its training data's."""

    series_id: str
    version: int
    algorithm: str  # its training recipe (what a retrain trains with)
    hyperparameters: Mapping[str, float]
    psi: float
    mean_shift_sigma: float
    recent_points: int


@dataclass(frozen=True, slots=True)
class ConceptSignal:
    """A production version's answers against its baseline: its anomaly rate
    since it serves (within the window) and the feedback labels given on it.

    `scores` and `labels` are the labelled readings' scores against today's band
    (1 is the threshold) and their labels (True: a real anomaly), when enough
    labels exist and the version can be recalibrated; `pending` is a newer
    version waiting in Staging."""

    series_id: str
    version: int
    algorithm: str
    hyperparameters: Mapping[str, float]
    predictions: int
    anomalies: int
    baseline_rate: float | None  # its training anomaly rate
    labels: int
    false_alarms: int
    scores: tuple[float, ...] = ()
    labelled_anomaly: tuple[bool, ...] = ()
    pending: int | None = None

    @property
    def anomaly_rate(self) -> float:
        return self.anomalies / self.predictions if self.predictions else 0.0


@dataclass(frozen=True, slots=True)
class PromotedSignal:
    """A production version promoted lately, against the one it replaced:
    its answers and anomalies in the hours since (the hour of the promotion
    left out), the replaced version's in as many hours before, and the
    feedback labels given on it."""

    series_id: str
    version: int
    promoted_at: float
    after: tuple[int, int]  # (answers, anomalies)
    before: tuple[int, int]
    labels: int
    false_alarms: int


@dataclass(frozen=True, slots=True)
class SilentSeries:
    """A series with no reading for longer than its usual interval allows."""

    series_id: str
    sensor_id: str
    last_ts: float
    interval_s: float  # its readings' usual interval
    last_value: float | None


@dataclass(frozen=True, slots=True)
class Silence:
    """A sensor's silence the engine opened an incident for, its episode, and
    the series of it that report again (all: it is over)."""

    sensor_id: str
    episode: str
    series: tuple[str, ...]
    resumed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueueSignal:
    """The training queue: jobs waiting and the oldest one's age; the jobs that
    failed within `failure_window_s`, with the latest few errors."""

    queued: int
    oldest_job: str | None
    oldest_age_s: float
    failures: int
    failure_window_s: float
    latest_errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dependency:
    """A dependency as last seen: `failing` since `failures` calls in a row;
    `open` while a circuit (recorded) leaves it alone."""

    name: str
    failing: bool
    failures: int
    last_error: str
    open: bool
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class Signals:
    """A snapshot of what the rules read, at `at` (epoch seconds). A source
    not read for this snapshot is empty."""

    at: float
    drifted: tuple[DriftSignal, ...] = ()
    concept: tuple[ConceptSignal, ...] = ()
    promoted: tuple[PromotedSignal, ...] = ()
    silent: tuple[SilentSeries, ...] = ()
    silences: tuple[Silence, ...] = ()
    queue: QueueSignal | None = None
    dependencies: tuple[Dependency, ...] = ()


class Rule(Protocol):
    """A rule: its `name` (the key of its policy), what it watches, and its
    decisions on a snapshot."""

    name: str
    description: str

    def decide(self, signals: Signals) -> list[Decision]: ...


def room(policy: Policy, taken: int) -> int | None:
    """How many more actions a rule may take now, having taken `taken` in the
    last hour; None: no limit.

    >>> room(Policy(max_actions_per_hour=5), 3), room(Policy(), 99)
    (2, None)
    """
    if not policy.max_actions_per_hour:
        return None
    return max(policy.max_actions_per_hour - taken, 0)


def repeat_of(
    decision: Decision,
    *,
    standing: Mapping[tuple[str, str], str],
    earlier: Earlier | None,
    now: float,
    repeat_after_s: float = REPEAT_AFTER_S,
) -> str | None:
    """Why `decision` is not made again (None: it is new)."""
    if (why := standing.get(decision.key)) is not None:
        return why
    if earlier is None:
        return None
    if decision.episode and earlier.episode == decision.episode:
        if earlier.outcome in (Outcome.DONE, Outcome.DRY_RUN):
            return f"{earlier.outcome} already for this episode"
    if earlier.outcome in IDLE and now - earlier.at < repeat_after_s:
        return f"{earlier.outcome} {now - earlier.at:.0f} s ago"
    return None


def judge(
    decisions: Iterable[Decision],
    *,
    policy: Policy,
    taken: int,
    standing: Mapping[tuple[str, str], str],
    earlier: Mapping[tuple[str, str], Earlier],
    now: float,
) -> Judged:
    """Sort one rule's decisions into those to act on, to record as they are,
    and the repeats (see the module); `taken`: its actions in the last hour."""
    left = room(policy, taken)
    judged = Judged([], [], [])
    seen: set[tuple[str, str]] = set()
    for decision in decisions:
        why = repeat_of(
            decision, standing=standing, earlier=earlier.get(decision.key), now=now
        )
        if decision.key in seen:
            why = "decided twice in one run"
        seen.add(decision.key)
        if why is not None:
            judged.repeats.append(Verdict(decision, Outcome.SKIPPED, why))
        elif left is not None and left <= 0:
            note = f"over {policy.max_actions_per_hour} actions an hour"
            judged.settled.append(Verdict(decision, Outcome.RATE_LIMITED, note))
        else:
            left = None if left is None else left - 1
            if policy.dry_run:
                judged.settled.append(Verdict(decision, Outcome.DRY_RUN, "dry run"))
            else:
                judged.act.append(decision)
    return judged


def recalibrated_cut(
    scores: Sequence[float], anomalous: Sequence[bool], target: float
) -> float:
    """The lowest threshold, in today's band widths (1 is today's), at which
    the labelled readings it flags (score above it) hold a share of false
    alarms of at most `target`.

    It never goes below 1: the labels cover readings the model flagged (and a
    few it missed), not the quiet ones a lower threshold would flag.

    >>> scores = [1.2, 1.5, 2.0, 3.0, 4.0]
    >>> recalibrated_cut(scores, [False, False, True, False, True], 0.5)
    1.2
    """
    s = np.asarray(scores, np.float64)
    false = ~np.asarray(anomalous, np.bool_)
    for cut in np.concatenate([[1.0], np.unique(s[s > 1.0])]):
        if _false_share(s, false, float(cut)) <= target:
            return float(cut)
    return float(s.max(initial=1.0))


def _false_share(
    scores: npt.NDArray[np.float64], false: npt.NDArray[np.bool_], cut: float
) -> float:
    flagged = scores > cut
    n = int(flagged.sum())
    return float((flagged & false).sum()) / n if n else 0.0


@dataclass(slots=True)
class Circuit:
    """Closed while calls to dependency `name` succeed; after
    `failures_to_open` failures in a row, open (calls are not made) for
    `base_s`, doubling with each opening in a row up to `cap_s`; then one
    trial call: its success closes it, its failure opens it again.

    >>> c = Circuit("training_api", base_s=60)
    >>> c.failed(0.0, "ConnectError").action, c.allow(30.0), c.allow(60.0)
    ('open_circuit', False, True)
    >>> c.failed(60.0, "ConnectError").evidence["backoff_s"]
    120.0
    >>> c.succeeded(200.0).action
    'close_circuit'
    """

    name: str
    failures_to_open: int = 1
    base_s: float = 60.0
    cap_s: float = HOUR_S
    failures: int = 0
    openings: int = 0
    open_until: float | None = None
    last_error: str = ""

    def allow(self, now: float) -> bool:
        return self.open_until is None or now >= self.open_until

    def state(self) -> Dependency:
        return Dependency(
            self.name, self.failures > 0, self.failures, self.last_error,
            self.open_until is not None, self.open_until,
        )  # fmt: skip

    def succeeded(self, now: float) -> Decision | None:
        """A call succeeded: closed; the decision, if it was open."""
        was_open = self.open_until is not None
        self.failures, self.openings, self.open_until = 0, 0, None
        if not was_open:
            return None
        return Decision(
            CIRCUIT_RULE, "close_circuit", self.name,
            f"a trial call to {self.name} succeeded: calls go through again",
            {"closed_at": now},
        )  # fmt: skip

    def failed(self, now: float, error: str) -> Decision | None:
        """A call failed: the decision to open, if it opens."""
        self.failures += 1
        self.last_error = error
        if self.open_until is None and self.failures < self.failures_to_open:
            return None
        backoff = min(self.base_s * 2.0**self.openings, self.cap_s)
        self.openings += 1
        self.open_until = now + backoff
        return Decision(
            CIRCUIT_RULE, "open_circuit", self.name,
            f"{self.failures} failed calls to {self.name} in a row ({error}): "
            f"left alone for {backoff:.0f} s",
            {"failures": self.failures, "last_error": error, "backoff_s": backoff,
             "open_until": self.open_until, "openings": self.openings},
        )  # fmt: skip
