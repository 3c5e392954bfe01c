"""The healing engine: monitor → decide → judge → act → record.

Each run reads a `Signals` snapshot (the monitor's, or the drift check's),
lets every enabled rule decide, judges the decisions under the rules'
policies (`core.healing.judge`), carries out those to act on (`act`), and
records every decision but the repeats: a row of `healing_actions` and an
audit-log entry each, and each one counted in `healing_decisions_total`.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, Counter

from atalaia.adapters.db.repositories import AuditLog, HealingLog
from atalaia.core.healing import (
    CIRCUIT_RULE,
    HOUR_S,
    Decision,
    Judged,
    Outcome,
    Policy,
    Signals,
    Verdict,
    judge,
)
from atalaia.core.ports import BatchSubmitter
from atalaia.logging import REQUEST_ID
from atalaia.services.healing import monitor
from atalaia.services.healing.act import ACTOR, Actor, Submitted
from atalaia.services.healing.policies import policies
from atalaia.services.healing.rules import build_rules
from atalaia.services.training_chunk import SessionFactory
from atalaia.settings import Settings

log = structlog.get_logger()

AUDIT_ACTION = "scheduler.healing"  # a completed run (`core.schedule.Task.HEALING`)
# The concept signals sum a window of every series' hourly rollups (~5 s for
# 285,000 series over a day on PostgreSQL): read at most this often.
CONCEPT_EVERY_S = 3600.0


class HealingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "healing_decisions",
            "Self-healing decisions by rule, action and outcome",
            ["rule", "action", "outcome"],
            registry=registry,
        )

    def count(self, verdicts: Sequence[Verdict]) -> None:
        tally = Tally(
            (v.decision.rule, v.decision.action, v.outcome.value) for v in verdicts
        )
        for labels, n in tally.items():
            self.decisions.labels(*labels).inc(n)


@dataclass(slots=True)
class Run:
    """A run's verdicts (repeats included) and what its retraining queued."""

    verdicts: list[Verdict]
    submitted: Submitted

    def count(self, outcome: Outcome, action: str | None = None) -> int:
        return sum(
            1
            for v in self.verdicts
            if v.outcome is outcome and action in (None, v.decision.action)
        )


@dataclass(slots=True)
class HealingReport:
    """A healing task run, as the scheduler reports it."""

    task: str
    decisions: dict[str, int]  # "rule.action.outcome" → how many
    error: str | None = None

    def detail(self) -> dict[str, object]:
        return {"task": self.task, "decisions": self.decisions, "error": self.error}


@dataclass(eq=False)
class Healer:
    """The engine, its rules built from `settings`; `clock` gives epoch seconds."""

    sessions: SessionFactory
    settings: Settings
    submitter: BatchSubmitter
    metrics: HealingMetrics | None = None
    clock: Callable[[], float] = time.time
    actor: Actor = field(init=False)
    _concept_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.actor = Actor(self.sessions, self.submitter)

    def run_task(self, now: datetime) -> HealingReport:
        """The scheduler's healing task: the monitor's snapshot at `now` (with
        the concept signals once in CONCEPT_EVERY_S), healed."""
        at = now.timestamp()
        concept = self._concept_at is None or at - self._concept_at >= CONCEPT_EVERY_S
        if concept:
            self._concept_at = at
        signals = monitor.snapshot(
            self.sessions, self.settings, now=at, concept=concept
        )
        run = self.heal(signals)
        tally = Tally(
            f"{v.decision.rule}.{v.decision.action}.{v.outcome}" for v in run.verdicts
        )
        report = HealingReport("healing", dict(sorted(tally.items())))
        report.error = run.submitted.error
        with self.sessions() as session:
            action = AUDIT_ACTION + ("_failed" if report.error else "")
            AuditLog(session).record(
                actor="scheduler", action=action, target="platform", **report.detail()
            )
            session.commit()
        return report

    def heal(
        self, signals: Signals, *, retrain_window_hours: float | None = None
    ) -> Run:
        """Let every enabled rule decide on `signals`, then judge, act, record."""
        with self.sessions() as session:
            in_force = policies(session, self.settings)
        decided = {
            rule.name: rule.decide(signals)
            for rule in build_rules(self.settings)
            if in_force[rule.name].enabled
        }
        return self.carry_out(
            decided, in_force, now=signals.at,
            window_hours=retrain_window_hours
            or self.settings.scheduler_retrain_window_hours,
        )  # fmt: skip

    def carry_out(
        self, decided: Mapping[str, list[Decision]], in_force: Mapping[str, Policy],
        *, now: float, window_hours: float,
    ) -> Run:  # fmt: skip
        judged = self._judge(decided, in_force, now)
        to_act = [d for j in judged.values() for d in j.act]
        circuit = in_force.get(CIRCUIT_RULE, Policy())
        acted = self.actor.act(
            to_act, now=now, window_hours=window_hours,
            hold=circuit.enabled and not circuit.dry_run,
        )  # fmt: skip
        recorded = [v for j in judged.values() for v in j.settled] + acted.verdicts
        if circuit.enabled:
            done = Outcome.DRY_RUN if circuit.dry_run else Outcome.DONE
            recorded += [Verdict(d, done) for d in acted.circuit]
        self._record(recorded, now)
        repeats = [v for j in judged.values() for v in j.repeats]
        if self.metrics is not None:
            self.metrics.count(recorded + repeats)
        if recorded:
            log.info(
                "healing.decided", recorded=len(recorded), repeats=len(repeats),
                error=acted.submitted.error,
            )  # fmt: skip
        return Run(recorded + repeats, acted.submitted)

    def _judge(
        self, decided: Mapping[str, list[Decision]], in_force: Mapping[str, Policy],
        now: float,
    ) -> dict[str, Judged]:  # fmt: skip
        keys = [d.key for decisions in decided.values() for d in decisions]
        if not keys:
            return {}
        since = datetime.fromtimestamp(now - HOUR_S, UTC)
        judged = {}
        with self.sessions() as session:
            stands = monitor.standing(session, keys)
            history = HealingLog(session)
            for rule, decisions in decided.items():
                if not decisions:
                    continue
                judged[rule] = judge(
                    decisions, policy=in_force[rule],
                    taken=history.taken(rule, since=since), standing=stands,
                    earlier=history.earlier(rule, {d.target for d in decisions}),
                    now=now,
                )  # fmt: skip
        return judged

    def _record(self, verdicts: Sequence[Verdict], now: float) -> None:
        """Each verdict in the decisions' table and the audit log, at once."""
        if not verdicts:
            return
        at = datetime.fromtimestamp(now, UTC)
        request_id = REQUEST_ID.get() or f"healing-{uuid.uuid4().hex[:16]}"
        with self.sessions() as session:
            HealingLog(session).record(verdicts, at=at, request_id=request_id)
            audit = AuditLog(session)
            for v in verdicts:
                d = v.decision
                audit.record(
                    actor=ACTOR, action=f"healing.{d.action}", target=d.target[:256],
                    rule=d.rule, outcome=v.outcome.value, reason=d.reason,
                    note=v.note, evidence=dict(d.evidence), request_id=request_id,
                )  # fmt: skip
            session.commit()
