"""What the healing engine does, through the platform's own paths: retraining
goes to the training service as batches (one per recipe, like the scheduler's,
behind a `Circuit`), a recalibration registers a Staging version, a silent
sensor's incident goes through the anomaly log to the alerter, an alert is a
platform event."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    AnomalyLog,
    AuditLog,
    JobStore,
    ModelStore,
    SignalLogs,
)
from atalaia.core.detectors import ModelParams
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.healing import Circuit, Decision, Outcome, Verdict
from atalaia.core.incidents import Recovery
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.ports import BatchSubmitter
from atalaia.core.registry import ModelVersion, Stage
from atalaia.core.serving import ScoredAnomaly
from atalaia.errors import AtalaiaError
from atalaia.services import platform_events, registry
from atalaia.services.training import new_job_id
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

ACTOR = "healing"
SUBMIT_CHUNK = 20_000  # series per batch request
SILENT = "silent"  # the reason of a silent sensor's anomaly (data quality)


@dataclass(slots=True)
class Submitted:
    """What retraining queued: as the scheduler's reports say it."""

    accepted: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class Acted:
    """The verdicts of the decisions acted on, what retraining queued, and the
    circuit's own decisions meanwhile."""

    verdicts: list[Verdict] = field(default_factory=list)
    submitted: Submitted = field(default_factory=Submitted)
    circuit: list[Decision] = field(default_factory=list)


@dataclass(eq=False)
class Actor:
    """Carries out decisions. `hold`: whether the training service's circuit
    holds calls back (its rule's policy: on, and not in a dry run)."""

    sessions: SessionFactory
    submitter: BatchSubmitter
    circuit: Circuit = field(default_factory=lambda: Circuit("training_service"))

    def act(
        self, decisions: Sequence[Decision], *, now: float, window_hours: float,
        hold: bool,
    ) -> Acted:  # fmt: skip
        acted = Acted()
        by_action: dict[str, list[Decision]] = defaultdict(list)
        for decision in decisions:
            by_action[decision.action].append(decision)
        for action, chosen in by_action.items():
            if action == "retrain":
                self._retrain(chosen, acted, now, window_hours, hold)
            else:
                acted.verdicts += ACTIONS[action](self.sessions, chosen, now)
        return acted

    def _retrain(
        self, decisions: list[Decision], acted: Acted, now: float,
        window_hours: float, hold: bool,
    ) -> None:  # fmt: skip
        """Queue each recipe's series as batches; a failing training service
        opens the circuit, and the batches after it wait."""
        for (algorithm, hyperparameters), members in _by_recipe(decisions).items():
            for start in range(0, len(members), SUBMIT_CHUNK):
                piece = members[start : start + SUBMIT_CHUNK]
                if hold and not self.circuit.allow(now):
                    until = _iso(self.circuit.open_until or now)
                    note = f"{self.circuit.name} left alone until {until}"
                    acted.verdicts += [Verdict(d, Outcome.SKIPPED, note) for d in piece]
                    continue
                try:
                    batch = self.submitter.submit(
                        [d.target for d in piece], algorithm=algorithm,
                        hyperparameters=dict(hyperparameters),
                        window_hours=window_hours,
                    )  # fmt: skip
                except AtalaiaError as exc:
                    acted.submitted.error = exc.detail
                    acted.verdicts += [
                        Verdict(d, Outcome.FAILED, exc.detail) for d in piece
                    ]
                    _note(acted, self.circuit.failed(now, exc.detail))
                    continue
                _note(acted, self.circuit.succeeded(now))
                acted.verdicts += _queued(piece, batch.batch_id, batch.rejected)
                acted.submitted.accepted += batch.accepted
                acted.submitted.rejected += batch.rejected
                if batch.accepted:  # a batch refused whole queued nothing
                    acted.submitted.batches.append(batch.batch_id)


def _note(acted: Acted, decision: Decision | None) -> None:
    if decision is not None:
        acted.circuit.append(decision)


Recipe = tuple[str, tuple[tuple[str, float], ...]]


def _by_recipe(decisions: list[Decision]) -> dict[Recipe, list[Decision]]:
    recipes: dict[Recipe, list[Decision]] = defaultdict(list)
    for d in decisions:
        hyperparameters: Mapping[str, float] = d.evidence.get("hyperparameters", {})
        recipe = str(d.evidence["algorithm"]), tuple(sorted(hyperparameters.items()))
        recipes[recipe].append(d)
    return recipes


def _queued(
    piece: list[Decision], batch_id: str, rejected: list[dict[str, object]]
) -> list[Verdict]:
    refused = {str(r.get("series_id")): r for r in rejected}
    verdicts = []
    for d in piece:
        if (why := refused.get(d.target)) is not None:
            note = f"{why.get('error', 'refused')}: {why.get('detail', '')}"
            verdicts.append(Verdict(d, Outcome.FAILED, note))
        else:
            verdicts.append(Verdict(d, Outcome.DONE, f"batch {batch_id}"))
    return verdicts


def recalibrate(
    sessions: SessionFactory, decisions: list[Decision], now: float
) -> list[Verdict]:
    """Register, per decision, a Staging version: the production version's model
    with its threshold times the decision's cut (never promoted here)."""
    verdicts = []
    for d in decisions:
        try:
            with sessions() as session:
                made = _register_recalibrated(
                    session, d.target, int(d.evidence["version"]),
                    float(d.evidence["cut"]), now,
                )  # fmt: skip
                session.commit()
        except AtalaiaError as exc:
            verdicts.append(Verdict(d, Outcome.FAILED, exc.detail))
            continue
        verdicts.append(Verdict(d, Outcome.DONE, f"v{made.version} in Staging"))
    return verdicts


def roll_back(
    sessions: SessionFactory,
    decisions: list[Decision],
    now: float,  # noqa: ARG001
) -> list[Verdict]:
    """Put back, per decision, the version its production version replaced
    (in the ledger with the decision's evidence: a `model.rolled_back` event
    for the alert rules)."""
    verdicts = []
    for d in decisions:
        version = int(d.evidence["version"])
        figures = {k: float(v) for k, v in d.evidence.items()}
        try:
            with sessions() as session:
                changes = registry.rollback(
                    session=session, series_id=d.target, actor=ACTOR,
                    reason=d.reason, version=version, evidence=figures,
                )  # fmt: skip
        except AtalaiaError as exc:
            verdicts.append(Verdict(d, Outcome.FAILED, exc.detail))
            continue
        back = changes[-1].version
        verdicts.append(Verdict(d, Outcome.DONE, f"v{back} serves again"))
    return verdicts


def _register_recalibrated(
    session: Session, series_id: str, version: int, cut: float, now: float
) -> ModelVersion:
    models, jobs = ModelStore(session), JobStore(session)
    models.lock_series(series_id)
    base = models.get(series_id, version)
    number = models.latest_versions([series_id]).get(series_id, 0) + 1
    made_at = datetime.fromtimestamp(now, UTC)
    lineage = base.lineage
    # A job of its own, done at once: a version names the job that made it.
    job = TrainingJob(
        new_job_id(), series_id, JobStatus.RUNNING, lineage.algorithm,
        dict(lineage.hyperparameters), None,
        (lineage.data_end - lineage.data_start) / 3600.0, made_at, ACTOR,
    )  # fmt: skip
    jobs.add(job)
    jobs.finish([job.job_id])
    jobs.record_versions({job.job_id: number})
    model = recalibrated(base, cut, number=number, job_id=job.job_id, at=made_at)
    models.add(model, actor=ACTOR)
    AuditLog(session).record(
        actor=ACTOR, action="model.registered", target=f"{series_id}/v{number}",
        job_id=job.job_id, recalibration_of=version, threshold_factor=cut,
    )  # fmt: skip
    return model


def recalibrated(
    base: ModelVersion, cut: float, *, number: int, job_id: str, at: datetime
) -> ModelVersion:
    """`base` with a threshold `cut` times its own, as Staging version `number`."""
    params = base.params
    band = base.band
    if band is not None:
        width = np.asarray(band.width, np.float64) * cut
        band = PhaseBand(band.period, band.base, band.departure, width)
    return replace(
        base,
        version=number,
        stage=Stage.STAGING,
        params=ModelParams(params.center, params.scale, params.threshold * cut),
        band=band,
        lineage=replace(base.lineage, job_id=job_id),
        created_at=at,
        metrics={
            **base.metrics,
            "recalibration_of": f"v{base.version}",
            "threshold_factor": cut,
        },
    )


def open_incidents(
    sessions: SessionFactory, decisions: list[Decision], now: float
) -> list[Verdict]:
    """Log a `silent` anomaly per silent series of each sensor: the alerter
    makes the sensor's one data-quality incident of them."""
    anomalies = [
        _silent(series_id, seen, float(d.evidence["factor"]), now)
        for d in decisions
        for series_id, seen in d.evidence["series"].items()
    ]
    with sessions() as session:
        AnomalyLog(session).append(anomalies)
        session.commit()
    return [Verdict(d, Outcome.DONE) for d in decisions]


def _silent(
    series_id: str, seen: Mapping[str, Any], factor: float, now: float
) -> ScoredAnomaly:
    """Its score: the silence over what is allowed (above 1, as anomalies')."""
    allowed = factor * max(float(seen["interval_s"]), 1e-9)
    value = seen.get("last_value")
    return ScoredAnomaly(
        series_id, now, float(value) if value is not None else 0.0,
        (now - float(seen["last_ts"])) / allowed, None, None, None, "none", SILENT,
        0, "none", False,
    )  # fmt: skip


def close_incidents(
    sessions: SessionFactory, decisions: list[Decision], now: float
) -> list[Verdict]:
    """Log a recovery of each series back from silence: the alerter resolves
    the sensor's incident once none of its series is anomalous."""
    recoveries = [
        Recovery(str(series_id), now)
        for d in decisions
        for series_id in d.evidence["series"]
    ]
    with sessions() as session:
        SignalLogs(session).add_recoveries(recoveries)
        session.commit()
    return [Verdict(d, Outcome.DONE) for d in decisions]


def alert(
    sessions: SessionFactory, decisions: list[Decision], now: float
) -> list[Verdict]:
    """A platform alert per decision, for the alert rules to route."""
    with sessions() as session:
        for d in decisions:
            platform_events.healing_alert(
                session, f"{d.rule}.{d.target}.{d.episode or now}",
                f"{d.target.replace('_', ' ')}: {d.rule.replace('_', ' ')}",
                d.reason, {"rule": d.rule, "target": d.target, **d.evidence},
            )  # fmt: skip
        session.commit()
    return [Verdict(d, Outcome.DONE) for d in decisions]


def noted(
    sessions: SessionFactory,  # noqa: ARG001
    decisions: list[Decision],
    now: float,  # noqa: ARG001
) -> list[Verdict]:
    """A circuit the alerter holds (a notification channel's backoff): nothing
    more to do than say so."""
    return [Verdict(d, Outcome.DONE) for d in decisions]


Action = Callable[[SessionFactory, list[Decision], float], list[Verdict]]
ACTIONS: dict[str, Action] = {
    "recalibrate": recalibrate,
    "roll_back": roll_back,
    "open_incident": open_incidents,
    "close_incident": close_incidents,
    "alert": alert,
    "open_circuit": noted,
    "close_circuit": noted,
}


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
