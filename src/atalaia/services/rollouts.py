"""Rollout use cases: start a canary, a shadow or an A/B test, step the
running ones, end one.

A rollout runs a Staging version (the candidate) beside its series'
Production one; inference routes the readings (`services.inference.routing`)
and counts what each version did, and `step_all` — the scheduler's rollout
task — judges those figures (`core.rollout`): a canary grows while its gates
hold, becomes Production at 100 %, and is rolled back (its candidate
archived) the first time a gate fails; a shadow, at its end, passes (and
starts a canary, if asked) or is rejected with its reasons; an A/B test,
at its end, reports (no version moves). Every start, step and end is a
ledger entry with the figures it was decided on, and an audit record; an
end that moves a stage is a lifecycle event for the alerts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.cache import RedisLink, publish_notice
from atalaia.adapters.db.repositories import (
    AuditLog,
    FeedbackStore,
    ModelStore,
    NewRollout,
    RolloutStore,
)
from atalaia.core.registry import (
    RegistryNotice,
    Stage,
    StageChange,
    Strategy,
    plan_direct_promotion,
)
from atalaia.core.rollout import (
    Action,
    CanaryPlan,
    Figures,
    Gates,
    Labels,
    Outcome,
    Rollout,
    RolloutFigures,
    State,
    Verdict,
    ab_report,
    figures_of,
    judge_rollout,
    shadow_verdict,
    step,
)
from atalaia.core.schedule import Task
from atalaia.errors import RolloutConflict, VersionNotPromotable
from atalaia.services.registry import apply_changes, committed
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

SCHEDULER = "scheduler"  # the actor of the steps the scheduler takes
AUDITED = 100  # rollouts named in the audit entry of a run, at most


@dataclass(frozen=True, slots=True)
class RolloutRequest:
    """What a person asks for: a canary of `plan`, or a shadow of
    `duration_s` followed by a canary of `plan` when `then` says so."""

    strategy: Strategy
    plan: CanaryPlan = CanaryPlan()
    gates: Gates = Gates()
    then: str = ""
    duration_s: float = 0.0


def start(
    *,
    session: Session,
    series_id: str,
    version: int,
    request: RolloutRequest,
    actor: str,
    reason: str,
    now: datetime,
) -> Rollout:
    """Start a rollout of a Staging version and commit; RolloutConflict when
    one runs for the series already or it has no Production version."""

    def attempt() -> Rollout:
        models = ModelStore(session)
        models.lock_series(series_id)
        return _started(session, series_id, version, request, actor, reason, now)

    return committed(session, attempt, what=f"rollout of {series_id} v{version}")


def _started(
    session: Session,
    series_id: str,
    version: int,
    request: RolloutRequest,
    actor: str,
    reason: str,
    now: datetime,
) -> Rollout:
    """A new running rollout, in the caller's transaction (the series locked)."""
    models, rollouts = ModelStore(session), RolloutStore(session)
    candidate = models.get(series_id, version)
    if candidate.stage is not Stage.STAGING:
        raise VersionNotPromotable(
            f"{series_id} v{version} is {candidate.stage}; only a staging version "
            "can be rolled out"
        )
    if candidate.sensor is not None:
        raise RolloutConflict(
            f"{series_id} v{version} is a sensor model: promote it directly",
            rule="rollout_of_a_series_model",
        )
    production = models.production(series_id)
    if production is None:
        raise RolloutConflict(
            f"{series_id} has no production version to run v{version} beside: "
            "promote it directly",
            rule="rollout_beside_production",
        )
    running = rollouts.running(series_id)
    if running is not None:
        raise RolloutConflict(
            f"{series_id} has a {running.strategy} of v{running.candidate} "
            f"running (rollout {running.id}): end it first",
            rule="one_rollout_per_series",
        )
    canary = request.strategy is Strategy.CANARY
    shadow = request.strategy is Strategy.SHADOW
    percentage = 0.0 if shadow else request.plan.initial
    first_step = request.plan.interval_s if canary else request.duration_s
    rollout = rollouts.add(
        NewRollout(
            series_id,
            request.strategy.value,
            version,
            production.version,
            percentage,
            request.plan,
            request.gates,
            request.then,
            now + timedelta(seconds=first_step),
            actor,
            reason,
        )  # fmt: skip
    )
    what = {
        Strategy.CANARY: f"canary started at {percentage:g} %",
        Strategy.SHADOW: f"shadow started for {first_step / 3600:g} h",
        Strategy.AB: f"A/B test started: {percentage:g} % for {first_step / 3600:g} h",
    }[request.strategy]
    _note(session, rollout, what, {"percentage": percentage}, actor)
    return rollout


@dataclass
class StepReport:
    """What one pass over the running rollouts did, by rollout id."""

    judged: int = 0
    actions: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        if not self.failed:
            return None
        return f"{len(self.failed)} of {self.judged} rollouts failed to step"

    def detail(self) -> dict[str, object]:
        """The report for the audit log: the actions counted, the first
        AUDITED of each list."""
        return {
            "task": Task.ROLLOUT.value,
            "judged": self.judged,
            "counts": dict(Counter(self.actions.values())),
            "actions": dict(islice(self.actions.items(), AUDITED)),
            "failed": dict(islice(self.failed.items(), AUDITED)),
            "error": self.error,
        }


def run_steps(
    *, sessions: SessionFactory, now: datetime, redis: RedisLink | None = None
) -> StepReport:
    """`step_all`, and the scheduler's audit record of the run (its last run
    times the next)."""
    report = step_all(sessions=sessions, now=now, redis=redis)
    with sessions() as session:
        AuditLog(session).record(
            actor=SCHEDULER, action=Task.ROLLOUT.audit_action, target="rollouts",
            **report.detail(),
        )  # fmt: skip
        session.commit()
    return report


def step_all(
    *,
    sessions: SessionFactory,
    now: datetime,
    redis: RedisLink | None = None,
) -> StepReport:
    """Judge every running rollout and take the step it calls for: roll a
    canary back at once when a gate fails, else grow, promote or wait when its
    step is due; end a shadow or an A/B test whose time is up. A transaction
    for each rollout that moves, none for the others."""
    report = StepReport()
    with sessions() as session:
        running = RolloutStore(session).all_running()
        counts = RolloutStore(session).counts(r.id for r in running)
    for rollout in running:
        report.judged += 1
        figures = figures_of(counts.get(rollout.id, {}))
        if now < rollout.next_step_at and not (
            rollout.strategy == Strategy.CANARY
            and judge_rollout(figures, rollout.gates).outcome is Outcome.FAILED
        ):
            continue  # nothing due, no gate failed: nothing to do
        try:
            with sessions() as session:
                action = _step_one(session, rollout, figures, now)
        except Exception as exc:  # one rollout's failure stops no other
            log.error("rollouts.step_failed", rollout=rollout.id, exc_info=True)
            report.failed[rollout.id] = f"{type(exc).__name__}: {exc}"
            continue
        if action is not None:
            report.actions[rollout.id] = action
            announce(redis, rollout, action)
    return report


def _step_one(
    session: Session, rollout: Rollout, figures: RolloutFigures, now: datetime
) -> str | None:
    """The step `rollout` takes on its `figures` at `now`, committed; None
    for none (nothing due)."""

    def attempt() -> str | None:
        ModelStore(session).lock_series(rollout.series_id)
        current = RolloutStore(session).get(rollout.id)
        if current.state is not State.RUNNING:
            return None  # ended by someone else meanwhile
        if current.strategy == Strategy.AB:
            return _ab_step(session, current, figures, now)
        verdict = judge_rollout(figures, rollout.gates)
        if current.strategy == Strategy.SHADOW:
            return _shadow_step(session, current, verdict, now)
        return _canary_step(session, current, verdict, now)

    return committed(session, attempt, what=f"step of rollout {rollout.id}")


def _canary_step(
    session: Session, rollout: Rollout, verdict: Verdict, now: datetime
) -> str | None:
    due = now >= rollout.next_step_at
    if verdict.outcome is not Outcome.FAILED and not due:
        return None
    taken = step(rollout.canary, verdict, now.timestamp())
    evidence = _evidence(verdict)
    rollouts = RolloutStore(session)
    if taken.action is Action.ROLL_BACK:
        _roll_back(session, rollout, "; ".join(verdict.reasons), evidence, SCHEDULER)
    elif taken.action is Action.PROMOTE:
        _promote(session, rollout, evidence)
    else:
        grown = taken.canary.percentage
        at = datetime.fromtimestamp(taken.canary.next_step_at, now.tzinfo)
        rollouts.moved(rollout.id, percentage=grown, next_step_at=at,
                       evidence=evidence)  # fmt: skip
        what = (
            f"canary {rollout.percentage:g} % → {grown:g} %: gates held"
            if taken.action is Action.GROW
            else f"canary stays at {grown:g} %: {'; '.join(verdict.reasons)}"
        )
        _note(session, rollout, what, evidence, SCHEDULER)
    return taken.action.value


def _shadow_step(
    session: Session, rollout: Rollout, verdict: Verdict, now: datetime
) -> str | None:
    if now < rollout.next_step_at:
        return None
    final = shadow_verdict(verdict)
    evidence = _evidence(final)
    rollouts = RolloutStore(session)
    if final.outcome is Outcome.FAILED:
        outcome = "rejected: " + "; ".join(final.reasons)
        rollouts.ended(rollout.id, State.REJECTED, outcome=outcome, evidence=evidence)
        _note(session, rollout, f"shadow {outcome}", evidence, SCHEDULER)
        return "reject"
    outcome = "passed: the candidate answered as production's gates ask"
    rollouts.ended(rollout.id, State.PASSED, outcome=outcome, evidence=evidence)
    _note(session, rollout, f"shadow {outcome}", evidence, SCHEDULER)
    if rollout.then != Strategy.CANARY:
        return "pass"
    request = RolloutRequest(Strategy.CANARY, rollout.plan, rollout.gates)
    _started(
        session, rollout.series_id, rollout.candidate, request, SCHEDULER,
        f"after shadow {rollout.id} passed", now,
    )  # fmt: skip
    return "canary"


def _ab_step(
    session: Session, rollout: Rollout, figures: RolloutFigures, now: datetime
) -> str | None:
    """At its end, an A/B test's report: no version moves."""
    if now < rollout.next_step_at:
        return None
    labels = FeedbackStore(session).labels_by_version(
        rollout.series_id, since=rollout.started_at
    )
    report = ab_report(
        figures,
        labels.get(rollout.production, Labels()),
        labels.get(rollout.candidate, Labels()),
    )
    outcome = _ab_outcome(rollout, report)
    RolloutStore(session).ended(
        rollout.id, State.REPORTED, outcome=outcome, evidence=report
    )
    _note(session, rollout, f"A/B test {outcome}", report, SCHEDULER)
    return "report"


def _ab_outcome(rollout: Rollout, report: dict[str, float]) -> str:
    """An A/B report in words."""
    parts = []
    for name, what in (("anomaly_rate", "anomaly rate"), ("precision", "precision")):
        p_value = report[f"{name}_p_value"]
        a, b = report[f"production_{name}"], report[f"challenger_{name}"]
        said = (
            "too few to test" if p_value < 0
            else f"p = {p_value:.3g}, "
            + ("significant" if report[f"{name}_significant"] else "not significant")
        )  # fmt: skip
        parts.append(
            f"{what} v{rollout.production} {a:.2%} vs v{rollout.candidate} {b:.2%} "
            f"({said})"
        )
    return "reported: " + "; ".join(parts)


def _promote(session: Session, rollout: Rollout, evidence: dict[str, float]) -> None:
    """The candidate becomes Production and production is archived."""
    models = ModelStore(session)
    changes = plan_direct_promotion(
        models.get(rollout.series_id, rollout.candidate),
        models.production(rollout.series_id),
        archive_existing=True,
    )
    reason = f"canary {rollout.id} reached 100 %: gates held at every step"
    evidence = {"rollout_id": rollout.id, **evidence}
    apply_changes(session, changes, actor=SCHEDULER, action="model.promoted",
                  reason=reason, evidence=evidence)  # fmt: skip
    RolloutStore(session).ended(
        rollout.id, State.PROMOTED, outcome=reason, evidence=evidence,
        percentage=100.0,
    )  # fmt: skip


def _roll_back(
    session: Session,
    rollout: Rollout,
    why: str,
    evidence: dict[str, float],
    actor: str,
) -> list[StageChange]:
    """End a running canary: its candidate archived, production untouched."""
    change = StageChange(
        rollout.series_id, rollout.candidate, Stage.STAGING, Stage.ARCHIVED
    )
    reason = f"canary {rollout.id} rolled back at {rollout.percentage:g} %: {why}"
    evidence = {"rollout_id": rollout.id, **evidence}
    apply_changes(session, [change], actor=actor, action="model.rolled_back",
                  reason=reason, evidence=evidence)  # fmt: skip
    RolloutStore(session).ended(
        rollout.id, State.ROLLED_BACK, outcome=reason, evidence=evidence
    )
    return [change]


def roll_back_running(
    *, session: Session, series_id: str, actor: str, reason: str
) -> list[StageChange] | None:
    """Roll back the series' running canary, or end its shadow, and commit;
    None when none runs (the caller rolls production back instead)."""

    def attempt() -> list[StageChange] | None:
        ModelStore(session).lock_series(series_id)
        running = RolloutStore(session).running(series_id)
        if running is None:
            return None
        why = f"by {actor}" + (f": {reason}" if reason else "")
        if running.strategy != Strategy.CANARY:
            ended = f"{running.strategy} ended {why}"
            _end(session, running, State.CANCELLED, ended, actor)
            return []
        return _roll_back(session, running, why, running.evidence, actor)

    return committed(session, attempt, what=f"rollback of {series_id}'s rollout")


def cancel(*, session: Session, rollout_id: int, actor: str, reason: str) -> Rollout:
    """End a running rollout, its candidate left in Staging, and commit."""

    def attempt() -> Rollout:
        rollout = RolloutStore(session).get(rollout_id)
        ModelStore(session).lock_series(rollout.series_id)
        rollout = RolloutStore(session).get(rollout_id)
        if rollout.state is not State.RUNNING:
            raise RolloutConflict(
                f"rollout {rollout_id} is {rollout.state}: only a running one can "
                "be cancelled",
                rule="rollout_running",
            )
        why = f"cancelled by {actor}" + (f": {reason}" if reason else "")
        _end(session, rollout, State.CANCELLED, why, actor)
        return RolloutStore(session).get(rollout_id)

    return committed(session, attempt, what=f"cancel of rollout {rollout_id}")


def _end(
    session: Session, rollout: Rollout, state: State, outcome: str, actor: str
) -> None:
    RolloutStore(session).ended(
        rollout.id, state, outcome=outcome, evidence=rollout.evidence
    )
    _note(session, rollout, f"{rollout.strategy} {outcome}", rollout.evidence, actor)


def _note(
    session: Session,
    rollout: Rollout,
    what: str,
    evidence: dict[str, float],
    actor: str,
) -> None:
    """A ledger entry (which also has inference read the series again) and
    an audit record of a rollout's decision."""
    figures = {"rollout_id": rollout.id, **evidence}
    ModelStore(session).note(
        rollout.series_id, rollout.candidate, Stage.STAGING, actor=actor,
        reason=f"rollout {rollout.id}: {what}", evidence=figures,
    )  # fmt: skip
    AuditLog(session).record(
        actor=actor, action=f"rollout.{rollout.strategy}",
        target=f"{rollout.series_id}/v{rollout.candidate}", rollout_id=rollout.id,
        what=what, evidence=evidence,
    )  # fmt: skip
    log.info("rollouts.decided", rollout=rollout.id, series_id=rollout.series_id,
             what=what)  # fmt: skip


def describe(rollout: Rollout, counts: dict[str, float]) -> dict[str, Any]:
    """A rollout as the API shows it: its plan, state, the live split, its
    figures so far (`core.rollout.COUNTERS` read as figures) and the ones its
    last decision was taken on."""
    figures = figures_of(counts)
    canary = rollout.strategy == Strategy.CANARY
    answers = rollout.strategy != Strategy.SHADOW  # a shadow's candidate never does
    decision = {State.PASSED: "canary", State.REJECTED: "reject"}.get(rollout.state)
    return {
        "id": rollout.id,
        "series_id": rollout.series_id,
        "strategy": rollout.strategy,
        "state": rollout.state.value,
        "decision": decision,
        "candidate_version": rollout.candidate,
        "production_version": rollout.production,
        "percentage": rollout.percentage,
        "split": {
            "candidate": rollout.percentage if answers else 0.0,
            "production": 100.0 - rollout.percentage if answers else 100.0,
        },
        "plan": {
            "initial_percentage": rollout.plan.initial,
            "increment_percentage": rollout.plan.increment,
            "increment_interval_hours": rollout.plan.interval_s / 3600.0,
        },
        "duration_hours": None if canary else _hours(rollout),
        "then": rollout.then or None,
        "gates": asdict(rollout.gates),
        "started_at": rollout.started_at,
        "next_step_at": rollout.next_step_at
        if rollout.state is State.RUNNING
        else None,
        "ended_at": rollout.ended_at,
        "actor": rollout.actor,
        "reason": rollout.reason,
        "outcome": rollout.outcome,
        "figures": {
            "candidate": _figures(figures.candidate),
            "production": _figures(figures.production),
            "paired": {
                "readings": figures.pairs.n,
                "agreement": figures.pairs.agreement,
                "score_correlation": figures.pairs.correlation,
                "production_anomaly_rate": figures.production_paired.anomaly_rate,
            },
        },
        "evidence": rollout.evidence,
        "report": _report(rollout) if rollout.state is State.REPORTED else None,
    }


def _report(test: Rollout) -> dict[str, Any]:
    """An A/B test's report (its evidence) by measure: each arm's figure, the
    p-value of their difference (None: too few to test), whether significant."""
    found = test.evidence
    return {
        name: {
            "production": found[f"production_{name}"],
            "challenger": found[f"challenger_{name}"],
            "p_value": None
            if found[f"{name}_p_value"] < 0
            else found[f"{name}_p_value"],
            "significant": bool(found[f"{name}_significant"]),
        }
        for name in ("anomaly_rate", "precision")
    } | {
        "answers": {
            "production": int(found["production_answers"]),
            "challenger": int(found["challenger_answers"]),
        },
        "labels": {
            "production": int(found["production_labels"]),
            "challenger": int(found["challenger_labels"]),
        },
    }


def _hours(shadow: Rollout) -> float:
    """A shadow's length: from its start to its (only) step."""
    return (shadow.next_step_at - shadow.started_at).total_seconds() / 3600.0


def _figures(figures: Figures) -> dict[str, float]:
    return {
        "predictions": figures.predictions,
        "errors": figures.errors,
        "error_rate": figures.error_rate,
        "anomalies": figures.anomalies,
        "anomaly_rate": figures.anomaly_rate,
        "slow_share": figures.slow_share,
    }


def _evidence(verdict: Verdict) -> dict[str, float]:
    return {k: float(v) for k, v in verdict.evidence.items()}


def announce(redis: RedisLink | None, rollout: Rollout, event: str) -> None:
    """Tell every inference replica the series' rollout changed (best effort:
    the ledger's change feed tells them anyway)."""
    if redis is not None:
        notice = RegistryNotice(
            rollout.series_id, rollout.candidate, Stage.STAGING.value, event
        )
        publish_notice(redis, notice)


def deployment_config(*, session: Session, series_id: str) -> dict[str, Any]:
    """What serves the series now (the live split while a canary or an A/B
    test runs), its running canary, its latest shadow and A/B test, and how
    it got there."""
    models, rollouts = ModelStore(session), RolloutStore(session)
    production = models.production(series_id)
    staging = [
        v.version for v in models.versions(series_id) if v.stage is Stage.STAGING
    ]
    running = rollouts.running(series_id)
    latest = {
        kind: rollouts.page(series_id=series_id, strategy=kind, limit=1)
        for kind in (Strategy.SHADOW, Strategy.AB)
    }
    shown = {r.id: r for r in [*latest[Strategy.SHADOW], *latest[Strategy.AB],
                               *([running] if running else [])]}  # fmt: skip
    counts = rollouts.counts(shown)
    views = {i: describe(r, counts.get(i, {})) for i, r in shown.items()}
    canary = running if running and running.strategy == Strategy.CANARY else None
    shadow, ab = (latest[k][0].id if latest[k] else None for k in latest)
    return {
        "series_id": series_id,
        "strategy": running.strategy if running else Strategy.DIRECT.value,
        "production_version": production.version if production else None,
        "production_algorithm": production.algorithm if production else None,
        "staging_versions": staging,
        "split": views[running.id]["split"] if running else None,
        "canary": views[canary.id] if canary else None,
        "shadow": views[shadow] if shadow else None,
        "ab": views[ab] if ab else None,
        "history": [
            {
                "version": e.version,
                "from_stage": e.from_stage,
                "to_stage": e.to_stage,
                "actor": e.actor,
                "reason": e.reason,
                "at": e.at.isoformat(),
                "evidence": e.evidence,
            }
            for e in models.ledger(series_id)[-20:]
        ],
    }
