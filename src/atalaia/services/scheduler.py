"""The scheduler's tasks: weekly fleet retraining and drift checks, each audited.

Both tasks read the registry and the readings, and queue retraining through a
`BatchSubmitter`: the training service's batch route (the `atalaia scheduler`
process) or the same use case in-process (the embedded platform). A series
retrains with its production version's algorithm and hyperparameters; one batch
goes out per such recipe. Series with a queued or running job are skipped.
The drift check finds the drifted series; the healing engine's `data_drift`
rule decides their retraining (its dry run and rate limit apply) and queues it.
Every run ends with one audit-log entry (`scheduler.<task>`, or
`scheduler.<task>_failed` when queueing failed) saying what it did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import structlog

from atalaia.adapters.db.repositories import (
    AuditLog,
    JobStore,
    ModelStore,
    ReadingStore,
)
from atalaia.core.drift import DataDrift, detect_data_drift
from atalaia.core.healing import DriftSignal, Outcome, Signals
from atalaia.core.ports import BatchSubmitter, JobQueue, SubmittedBatch
from atalaia.core.registry import ModelVersion
from atalaia.core.schedule import Task
from atalaia.errors import AtalaiaError
from atalaia.services import platform_events, training
from atalaia.services.healing import Healer
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

ACTOR = "scheduler"
CHUNK = 1_000  # series read per transaction (their versions and recent readings)
SUBMIT_CHUNK = 20_000  # series per batch request
AUDITED_SERIES = 100  # series ids named in an audit entry, at most

Recipe = tuple[str, tuple[tuple[str, float], ...]]  # algorithm, hyperparameters


@dataclass(slots=True)
class RunReport:
    """What a run did; the detail of its audit entry."""

    task: str
    considered: int  # series looked at
    selected: list[str]  # series to retrain
    retrain_window_hours: float
    drift_window_hours: float | None = None
    # Selected, but a job of theirs is queued or running (a drift check: or the
    # healing engine decided on them lately, `core.healing.repeat_of`).
    skipped_busy: int = 0
    accepted: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    error: str | None = None

    def detail(self) -> dict[str, object]:
        """The report with its series lists cut to their first `AUDITED_SERIES`."""
        return asdict(self) | {
            "selected": len(self.selected),
            "series": self.selected[:AUDITED_SERIES],
            "rejected": len(self.rejected),
            "rejections": self.rejected[:AUDITED_SERIES],
        }


def retrain_fleet(
    *,
    sessions: SessionFactory,
    submitter: BatchSubmitter,
    window_hours: float,
    now: datetime,
) -> RunReport:
    """Retrain every active series: in production, with a reading in the window.

    Each trains on its last `window_hours` of stored readings.
    """
    since = now.timestamp() - window_hours * 3600.0
    with sessions() as session:
        series_ids = ModelStore(session).production_series(reporting_since=since)
    versions: list[ModelVersion] = []
    for piece in _pieces(series_ids, CHUNK):
        with sessions() as session:
            versions += ModelStore(session).production_versions(piece)
    report = RunReport(
        Task.RETRAIN.value,
        considered=len(series_ids),
        selected=series_ids,
        retrain_window_hours=window_hours,
    )
    return _queue_and_audit(report, _by_recipe(versions), sessions, submitter)


def check_drift(
    *,
    sessions: SessionFactory,
    healer: Healer,
    window_hours: float,
    retrain_window_hours: float,
) -> RunReport:
    """Compare each production model's recent readings with its training data.

    The last `window_hours` before each series' newest reading are checked with
    `detect_data_drift`; the drifted series (the report's `selected`) are the
    signal of `healer`'s data-drift rule, which retrains them on their last
    `retrain_window_hours`.
    """
    with sessions() as session:
        series_ids = ModelStore(session).production_series()
    drifted: list[tuple[ModelVersion, DataDrift]] = []
    for piece in _pieces(series_ids, CHUNK):
        drifted += _drifted(sessions, piece, window_hours)
    log.info("scheduler.drift_checked", series=len(series_ids), drifted=len(drifted))
    report = RunReport(
        Task.DRIFT.value,
        considered=len(series_ids),
        selected=sorted(v.series_id for v, _ in drifted),
        retrain_window_hours=retrain_window_hours,
        drift_window_hours=window_hours,
    )
    signals = Signals(
        at=healer.clock(),
        drifted=tuple(
            _signal(v, found)
            for v, found in drifted
            if v.sensor is None  # sensors train one at a time, on request
        ),
    )
    run = healer.heal(signals, retrain_window_hours=retrain_window_hours)
    queued = run.submitted
    report.skipped_busy = run.count(Outcome.SKIPPED, "retrain")
    report.accepted, report.rejected = queued.accepted, queued.rejected
    report.batches, report.error = queued.batches, queued.error
    return _audit(report, sessions)


def last_runs(sessions: SessionFactory) -> dict[Task, datetime]:
    """When each task last completed a run, from the audit log."""
    with sessions() as session:
        times = AuditLog(session).last_times([task.audit_action for task in Task])
    return {
        task: times[task.audit_action] for task in Task if task.audit_action in times
    }


def _drifted(
    sessions: SessionFactory, series_ids: list[str], window_hours: float
) -> list[tuple[ModelVersion, DataDrift]]:
    """The production versions of `series_ids` whose recent data drifted."""
    with sessions() as session:
        versions = ModelStore(session).production_versions(series_ids)
        recent = ReadingStore(session).last_windows(
            [v.series_id for v in versions], window_hours
        )
    found = []
    for version in versions:
        # A version registered without a training profile has nothing to compare.
        if "decile_edges" not in version.reference:
            continue
        drift = detect_data_drift(version.reference, recent[version.series_id].values)
        if drift.detected:
            found.append((version, drift))
    return found


def _signal(version: ModelVersion, drift: DataDrift) -> DriftSignal:
    lineage = version.lineage
    return DriftSignal(
        version.series_id, version.version, lineage.algorithm,
        lineage.hyperparameters, drift.psi, drift.mean_shift_sigma,
        drift.recent_points,
    )  # fmt: skip


def _by_recipe(versions: Iterable[ModelVersion]) -> dict[Recipe, list[str]]:
    """Series ids by the (algorithm, hyperparameters) their version was trained
    with (`auto` stays `auto`: it chooses again)."""
    recipes: dict[Recipe, list[str]] = defaultdict(list)
    for version in versions:
        if version.sensor is not None:  # sensors train one at a time, on request
            continue
        lineage = version.lineage
        hyperparameters = tuple(sorted(lineage.hyperparameters.items()))
        recipes[lineage.algorithm, hyperparameters].append(version.series_id)
    return recipes


def _queue_and_audit(
    report: RunReport,
    recipes: Mapping[Recipe, list[str]],
    sessions: SessionFactory,
    submitter: BatchSubmitter,
) -> RunReport:
    """Queue each recipe's idle series; record the run, failed or not."""
    try:
        for (algorithm, hyperparameters), members in recipes.items():
            idle = _idle(sessions, members)
            report.skipped_busy += len(members) - len(idle)
            for piece in _pieces(idle, SUBMIT_CHUNK):
                _count(report, submitter.submit(
                    piece, algorithm=algorithm,
                    hyperparameters=dict(hyperparameters),
                    window_hours=report.retrain_window_hours,
                ))  # fmt: skip
    except AtalaiaError as exc:
        report.error = exc.detail
    return _audit(report, sessions)


def _audit(report: RunReport, sessions: SessionFactory) -> RunReport:
    """Record the run, failed or not (a drift check: with its drift event)."""
    action = Task(report.task).audit_action + ("_failed" if report.error else "")
    with sessions() as session:
        AuditLog(session).record(
            actor=ACTOR, action=action, target="fleet", **report.detail()
        )
        if report.task == Task.DRIFT.value:
            run = datetime.now(UTC).isoformat()
            platform_events.drift_detected(session, report.selected, run)
        session.commit()
    log.info(
        action,
        selected=len(report.selected),
        accepted=report.accepted,
        error=report.error,
    )
    return report


def _idle(sessions: SessionFactory, series_ids: list[str]) -> list[str]:
    busy: set[str] = set()
    for piece in _pieces(series_ids, CHUNK):
        with sessions() as session:
            busy |= JobStore(session).busy_series(piece)
    return [sid for sid in series_ids if sid not in busy]


def _count(report: RunReport, batch: SubmittedBatch) -> None:
    report.accepted += batch.accepted
    report.rejected += batch.rejected
    if batch.accepted:  # a batch refused whole queued nothing
        report.batches.append(batch.batch_id)


def _pieces(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class InProcessSubmitter:
    """`BatchSubmitter` running the batch use case here, then handing the jobs to
    this process's job queue (the embedded platform)."""

    def __init__(
        self, sessions: SessionFactory, job_queue: JobQueue, *, min_interval_s: int
    ) -> None:
        self._sessions = sessions
        self._job_queue = job_queue
        self._min_interval_s = min_interval_s

    def submit(
        self,
        series_ids: Sequence[str],
        *,
        algorithm: str,
        hyperparameters: Mapping[str, float],
        window_hours: float,
    ) -> SubmittedBatch:
        with self._sessions() as session:
            batch = training.submit_batch(
                session=session,
                series_ids=list(series_ids),
                algorithm=algorithm,
                hyperparameters=dict(hyperparameters),
                window_hours=window_hours,
                actor=ACTOR,
                min_interval_s=self._min_interval_s,
            )
            session.commit()
        self._job_queue.dispatch_many([job.job_id for job in batch.accepted])
        return SubmittedBatch(batch.batch_id, len(batch.accepted), batch.rejected)
