"""The healing rules, each a `core.healing.Rule` built from the settings, all
registered in `RULES` (a new rule: a class here, its line in `RULES`, its
`healing_<name>_*` settings, and its action in `act.ACTIONS`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from atalaia.core.drift import MIN_FEEDBACK_LABELS, PSI_DRIFT
from atalaia.core.healing import (
    CIRCUIT_RULE,
    ConceptSignal,
    Decision,
    PromotedSignal,
    Rule,
    Signals,
    recalibrated_cut,
)
from atalaia.core.rollout import Figures, Gates, Outcome, judge
from atalaia.settings import Settings

MIN_RATE = 0.001  # the least anomaly rate a baseline counts as (0 flags nothing)
BACKLOG_HINT = "add workers: `atalaia worker` / raise the HPA max in deploy/k8s"


@dataclass(frozen=True, slots=True)
class DataDrift:
    """Data drift (the scheduler's drift check) → retrain."""

    name = "data_drift"
    description = (
        "a production model's recent readings left its training data's: retrain it"
    )

    @classmethod
    def of(cls, settings: Settings) -> DataDrift:  # noqa: ARG003
        return cls()

    def decide(self, signals: Signals) -> list[Decision]:
        return [
            Decision(
                self.name,
                "retrain",
                s.series_id,
                f"its recent readings left v{s.version}'s training data (PSI "
                f"{s.psi:.2f} > {PSI_DRIFT}, mean moved {s.mean_shift_sigma:.1f} σ)",
                {
                    "version": s.version,
                    "psi": round(s.psi, 4),
                    "mean_shift_sigma": round(s.mean_shift_sigma, 4),
                    "recent_points": s.recent_points,
                    "algorithm": s.algorithm,
                    "hyperparameters": dict(s.hyperparameters),
                },
            )  # fmt: skip
            for s in signals.drifted
        ]


@dataclass(frozen=True, slots=True)
class ConceptDrift:
    """Concept drift → retrain, or recalibrate the threshold from the labels."""

    name = "concept_drift"
    description = (
        "a production model's anomaly rate is off its training's, or the labels "
        "say too many of its alarms are false: retrain it, or with enough labels "
        "register a recalibrated version in Staging"
    )
    margin: float
    min_predictions: int
    false_alarm_target: float
    recalibrate_min_labels: int

    @classmethod
    def of(cls, settings: Settings) -> ConceptDrift:
        return cls(
            settings.healing_concept_margin, settings.healing_concept_min_predictions,
            settings.healing_false_alarm_target,
            settings.healing_recalibrate_min_labels,
        )  # fmt: skip

    def decide(self, signals: Signals) -> list[Decision]:
        return [d for s in signals.concept if (d := self._decide(s)) is not None]

    def _decide(self, s: ConceptSignal) -> Decision | None:
        if s.pending is not None:  # a version made for it waits for its promotion
            return None
        why = self._off(s)
        if not why:
            return None
        evidence: dict[str, object] = {
            "version": s.version, "predictions": s.predictions,
            "anomaly_rate": round(s.anomaly_rate, 6), "baseline_rate": s.baseline_rate,
            "labels": s.labels, "false_alarms": s.false_alarms,
            "algorithm": s.algorithm, "hyperparameters": dict(s.hyperparameters),
        }  # fmt: skip
        reason = "; ".join(why)
        if s.labels >= self.recalibrate_min_labels and s.scores:
            cut = recalibrated_cut(
                s.scores, s.labelled_anomaly, self.false_alarm_target
            )
            if cut > 1.0:
                return Decision(
                    self.name, "recalibrate", s.series_id,
                    f"{reason}: {len(s.scores)} labelled readings call for "
                    f"{cut:.3g}× v{s.version}'s threshold",
                    evidence | {"cut": cut, "target_false_alarms":
                                self.false_alarm_target},
                )  # fmt: skip
        return Decision(self.name, "retrain", s.series_id, reason, evidence)

    def _off(self, s: ConceptSignal) -> list[str]:
        why = []
        if s.baseline_rate is not None and s.predictions >= self.min_predictions:
            allowed = self.margin * max(s.baseline_rate, MIN_RATE)
            if abs(s.anomaly_rate - s.baseline_rate) > allowed:
                why.append(
                    f"anomaly rate {s.anomaly_rate:.2%} against {s.baseline_rate:.2%} "
                    f"in training (margin {self.margin:g}×)"
                )
        if s.labels >= MIN_FEEDBACK_LABELS:
            share = s.false_alarms / s.labels
            if share > self.false_alarm_target:
                why.append(
                    f"{s.false_alarms} of {s.labels} labels say false alarm "
                    f"({share:.0%} > {self.false_alarm_target:.0%})"
                )
        return why


@dataclass(frozen=True, slots=True)
class ProductionGates:
    """A production version promoted lately that fails the gates → roll it
    back (the canaries' own gates are stepped by the rollout task)."""

    name = "production_gates"
    description = (
        "a production version promoted lately answers with an anomaly rate off "
        "the replaced version's beyond the gates, or the labels say too many of "
        "its alarms are false: put the replaced version back"
    )
    gates: Gates
    max_false_alarms: float

    @classmethod
    def of(cls, settings: Settings) -> ProductionGates:
        gates = Gates(
            anomaly_rate_tolerance=settings.healing_rollback_anomaly_rate_tolerance,
            min_predictions=settings.healing_rollback_min_predictions,
        )
        return cls(gates, settings.healing_rollback_false_alarm_rate)

    def decide(self, signals: Signals) -> list[Decision]:
        return [d for s in signals.promoted if (d := self._decide(s)) is not None]

    def _decide(self, s: PromotedSignal) -> Decision | None:
        (n_after, k_after), (n_before, k_before) = s.after, s.before
        after = Figures(predictions=n_after, anomalies=k_after)
        before = Figures(predictions=n_before, anomalies=k_before)
        verdict = judge(after, before, self.gates)
        why = list(verdict.reasons) if verdict.outcome is Outcome.FAILED else []
        if s.labels >= MIN_FEEDBACK_LABELS and (
            s.false_alarms / s.labels > self.max_false_alarms
        ):
            why.append(
                f"{s.false_alarms} of {s.labels} labels say false alarm "
                f"(> {self.max_false_alarms:.0%})"
            )
        if not why:
            return None
        evidence = {
            "version": s.version, "promoted_at": s.promoted_at,
            "answers": after.predictions, "anomaly_rate": after.anomaly_rate,
            "replaced_answers": before.predictions,
            "replaced_anomaly_rate": before.anomaly_rate,
            "labels": s.labels, "false_alarms": s.false_alarms,
        }  # fmt: skip
        return Decision(
            self.name, "roll_back", s.series_id,
            f"v{s.version} since its promotion: " + "; ".join(why), evidence,
            episode=f"v{s.version}",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SensorQuality:
    """A silent sensor → one data-quality incident; its readings back → over."""

    name = "sensor_quality"
    description = (
        "a sensor sends no reading for far longer than it usually does: open one "
        "data-quality incident (reason `silent`), which holds its anomaly "
        "incidents back, until it reports again"
    )

    factor: float  # silent: no reading for this many usual intervals

    @classmethod
    def of(cls, settings: Settings) -> SensorQuality:
        return cls(settings.healing_silent_factor)

    def decide(self, signals: Signals) -> list[Decision]:
        by_sensor = defaultdict(list)
        for s in signals.silent:
            by_sensor[s.sensor_id].append(s)
        decisions = []
        for sensor, series in sorted(by_sensor.items()):
            quiet = signals.at - max(s.last_ts for s in series)
            usual = min(s.interval_s for s in series)
            decisions.append(Decision(
                self.name, "open_incident", sensor,
                f"no reading from {', '.join(s.series_id for s in series)} for "
                f"{quiet:.0f} s; it usually sends one every {usual:.0f} s",
                {"series": {s.series_id: {"last_ts": s.last_ts,
                                          "interval_s": s.interval_s,
                                          "last_value": s.last_value}
                            for s in series},
                 "factor": self.factor},
                episode=f"{max(s.last_ts for s in series):.3f}",
            ))  # fmt: skip
        for silence in signals.silences:
            if silence.resumed and len(silence.resumed) == len(silence.series):
                decisions.append(Decision(
                    self.name, "close_incident", silence.sensor_id,
                    f"{', '.join(silence.resumed)} report again",
                    {"series": list(silence.resumed)},
                    episode=f"{silence.episode}:{','.join(silence.resumed)}",
                ))  # fmt: skip
        return decisions


@dataclass(frozen=True, slots=True)
class TrainingBacklog:
    """Jobs queued too long, or failing again and again → a platform alert."""

    name = "training_backlog"
    description = (
        "training jobs wait longer than they should, or fail again and again: "
        "raise a platform alert (with what to scale)"
    )
    backlog_after_s: float
    failures_alert: int

    @classmethod
    def of(cls, settings: Settings) -> TrainingBacklog:
        return cls(settings.healing_backlog_after_s, settings.healing_failures_alert)

    def decide(self, signals: Signals) -> list[Decision]:
        q = signals.queue
        if q is None:
            return []
        decisions = []
        if q.queued and q.oldest_age_s > self.backlog_after_s:
            since = signals.at - q.oldest_age_s
            decisions.append(Decision(
                self.name, "alert", "training_queue",
                f"{q.queued} jobs queued, oldest {q.oldest_age_s / 60:.0f} min: "
                f"{BACKLOG_HINT}",
                {"queued": q.queued, "oldest_job": q.oldest_job,
                 "oldest_age_s": round(q.oldest_age_s, 1),
                 "backlog_after_s": self.backlog_after_s, "hint": BACKLOG_HINT},
                episode=f"queued-since-{since // 3600:.0f}h",
            ))  # fmt: skip
        if q.failures >= self.failures_alert:
            hours = q.failure_window_s / 3600
            decisions.append(Decision(
                self.name, "alert", "training_failures",
                f"{q.failures} trainings failed in the last {hours:g} h: "
                + "; ".join(q.latest_errors[:3]),
                {"failures": q.failures, "window_s": q.failure_window_s,
                 "latest_errors": list(q.latest_errors)},
                episode=f"window-{signals.at // q.failure_window_s:.0f}",
            ))  # fmt: skip
        return decisions


@dataclass(frozen=True, slots=True)
class DependencyCircuit:
    """A failing dependency's circuit opened (and closed once it answers)."""

    name = CIRCUIT_RULE
    description = (
        "a dependency fails call after call: leave it alone with a growing "
        "backoff (the training service's circuit here; each notification "
        "channel's, held by the alerter), and say when it answers again"
    )

    @classmethod
    def of(cls, settings: Settings) -> DependencyCircuit:  # noqa: ARG003
        return cls()

    def decide(self, signals: Signals) -> list[Decision]:
        decisions = []
        for d in signals.dependencies:
            if d.failing and not d.open:
                decisions.append(Decision(
                    self.name, "open_circuit", d.name,
                    f"{d.failures} failed attempts in a row ({d.last_error}): "
                    "held back, retried with a growing backoff",
                    {"failures": d.failures, "last_error": d.last_error,
                     "retry_at": d.retry_at},
                ))  # fmt: skip
            elif d.open and not d.failing:
                decisions.append(Decision(
                    self.name, "close_circuit", d.name,
                    f"{d.name} answers again", {"failures": d.failures},
                ))  # fmt: skip
        return decisions


RULES: tuple[Callable[[Settings], Rule], ...] = (
    DataDrift.of,
    ConceptDrift.of,
    ProductionGates.of,
    SensorQuality.of,
    TrainingBacklog.of,
    DependencyCircuit.of,
)


def build_rules(settings: Settings) -> list[Rule]:
    return [make(settings) for make in RULES]
