"""The hot history's old periods out to the cold history, a period at a time.

Each run (the scheduler's `archive` task) moves every whole period older than
`ATALAIA_HOT_DAYS` (`core.history.ColdPolicy`): in one transaction, the
period's readings are written to a Parquet segment in the cold folder, the
segment is recorded, and the readings are removed from the database — readers
see them in one place or the other, and a reader between the two reads both
and counts them once (`ReadingStore.window`). A segment written by a run that
failed before its commit is removed; the run stops at the first failure (the
database or the cold folder) and says so in its audit entry.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import structlog

from atalaia.adapters.db.repositories import AuditLog
from atalaia.adapters.db.repositories.hot_periods import HotPeriods
from atalaia.adapters.db.repositories.segments import SegmentStore
from atalaia.adapters.history.parquet_segments import write_segment
from atalaia.core.history import ColdPolicy
from atalaia.core.schedule import Task
from atalaia.errors import AtalaiaError
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

ACTOR = "scheduler"


@dataclass(slots=True)
class ArchiveReport:
    """What a run moved: segments (their paths), readings and bytes."""

    hot_days: float
    limit: float  # readings before this instant were due
    segments: list[str] = field(default_factory=list)
    readings: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None

    def detail(self) -> dict[str, object]:
        return {"task": Task.ARCHIVE.value} | asdict(self)


def archive(
    *, sessions: SessionFactory, policy: ColdPolicy, folder: Path, now: float
) -> ArchiveReport:
    """Move every whole period before `policy`'s limit to the cold history,
    oldest first, and audit the run."""
    began = time.perf_counter()
    report = ArchiveReport(policy.hot_days, policy.limit(now))
    try:
        while (period := _next_period(sessions, policy, report.limit)) is not None:
            _move(sessions, period, folder, report)
    except (AtalaiaError, OSError) as exc:  # the database, or the cold folder
        report.error = str(exc)
        log.error("history.archive_failed", error=report.error)
    report.seconds = round(time.perf_counter() - began, 3)
    with sessions() as session:
        AuditLog(session).record(
            actor=ACTOR, action=Task.ARCHIVE.audit_action, target="readings",
            **report.detail(),
        )  # fmt: skip
        session.commit()
    if report.segments:
        log.info("history.archived", **report.detail())
    return report


def _next_period(
    sessions: SessionFactory, policy: ColdPolicy, limit: float
) -> tuple[float, float] | None:
    with sessions() as session:
        oldest = HotPeriods(session).oldest_before(limit)
    return None if oldest is None else policy.period_of(oldest)


def _move(
    sessions: SessionFactory,
    period: tuple[float, float],
    folder: Path,
    report: ArchiveReport,
) -> None:
    start, end = period
    path = folder / f"readings-{start:.0f}-{end:.0f}-{uuid.uuid4().hex[:12]}.parquet"
    try:
        with sessions() as session:
            hot = HotPeriods(session)
            written = write_segment(path, hot.rows(start, end))
            if not written.rows:  # moved by another run meanwhile
                path.unlink()
                return
            SegmentStore(session).add(start, end, str(path), written)
            hot.drop(start, end)
            session.commit()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    report.segments.append(str(path))
    report.readings += written.rows
    report.bytes += written.bytes
