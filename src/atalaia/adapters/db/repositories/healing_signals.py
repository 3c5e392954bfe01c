"""What the self-healing monitor reads of the platform: silent series, the
training queue, anomaly rates off their baselines, feedback labels, failing
notification channels. Each is one statement, cheap at the fleet's size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session, aliased

from atalaia.adapters.db.tables import (
    FeedbackRow,
    JobRow,
    NotificationRow,
    PredictionRollupRow,
    ReadingRow,
    RegistryEventRow,
    ScoredAnomalyRow,
    SeriesRow,
    VersionRow,
)
from atalaia.core.healing import SilentSeries
from atalaia.core.jobs import JobStatus
from atalaia.core.registry import Stage

CHUNK = 1_000
LATEST_ERRORS = 5
PRODUCTION = Stage.PRODUCTION.value


@dataclass(frozen=True, slots=True)
class QueueState:
    queued: int
    oldest_job: str | None
    oldest_at: datetime | None
    failures: int
    latest_errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RateOff:
    """A production series whose anomaly rate is off its training's."""

    series_id: str
    version: int
    predictions: int
    anomalies: int
    baseline: float


@dataclass(frozen=True, slots=True)
class FailingChannel:
    """A channel whose oldest pending notification failed `attempts` times."""

    name: str
    attempts: int
    last_error: str
    retry_at: float
    pending: int


class PlatformSignals:
    def __init__(self, session: Session) -> None:
        self.session = session

    def silent_series(
        self, *, now: float, factor: float, since: float, min_points: int
    ) -> list[SilentSeries]:
        """Series with at least `min_points` readings, the newest after `since`,
        and none for more than `factor` times their usual interval (the span
        of their readings over their count): one scan of the series table."""
        s = SeriesRow
        span = s.last_ts - s.first_ts
        last_value = (
            select(ReadingRow.value)
            .where(ReadingRow.series_key == s.key, ReadingRow.ts == s.last_ts)
            .scalar_subquery()
        )
        stmt = (
            select(
                s.series_id, s.sensor_id, s.last_ts, span / (s.n_points - 1), last_value
            )
            .where(
                s.n_points >= max(min_points, 2),
                s.last_ts >= since,
                span > 0,
                (now - s.last_ts) * (s.n_points - 1) > factor * span,
            )
            .order_by(s.series_id)
        )
        return [
            SilentSeries(sid, sensor, float(last), float(interval), value)
            for sid, sensor, last, interval, value in self.session.execute(stmt)
        ]

    def queue(self, *, failed_since: datetime) -> QueueState:
        """The queued jobs (how many, the oldest), and the jobs that failed
        since `failed_since` with the latest errors."""
        job = JobRow
        queued = job.status == JobStatus.QUEUED.value
        count, oldest_at = self.session.execute(
            select(func.count(), func.min(job.created_at)).where(queued)
        ).one()
        oldest = self.session.scalar(
            select(job.job_id).where(queued).order_by(job.created_at).limit(1)
        )
        failed = and_(
            job.status == JobStatus.FAILED.value, job.finished_at >= failed_since
        )
        failures = self.session.scalar(select(func.count()).where(failed)) or 0
        latest = self.session.execute(
            select(job.series_id, job.error)
            .where(failed)
            .order_by(job.finished_at.desc())
            .limit(LATEST_ERRORS)
        )
        errors = tuple(
            f"{sid}: {(error or {}).get('detail', 'failed')}" for sid, error in latest
        )
        return QueueState(int(count), oldest, oldest_at, int(failures), errors)

    def rates_off_baseline(
        self, *, since: datetime, min_predictions: int, margin: float,
        min_rate: float,
    ) -> list[RateOff]:  # fmt: skip
        """Production series with `min_predictions` or more since `since` (and
        since their version was made) whose anomaly rate is off their training
        anomaly rate by more than `margin` times it (at least `min_rate`)."""
        r, v = PredictionRollupRow, VersionRow
        baseline = func.max(v.metrics["training_anomaly_rate"].as_float())
        predictions, anomalies = func.sum(r.predictions), func.sum(r.anomalies)
        rate = cast(anomalies, Float) / predictions
        allowed = margin * case((baseline > min_rate, baseline), else_=min_rate)
        stmt = (
            select(r.series_id, func.max(v.version), predictions, anomalies, baseline)
            .join(v, (v.series_id == r.series_id) & (v.stage == PRODUCTION))
            .where(r.bucket >= since, r.bucket >= v.created_at)
            .group_by(r.series_id)
            .having(
                predictions >= min_predictions,
                baseline.is_not(None),
                func.abs(rate - baseline) > allowed,
            )
        )
        return [
            RateOff(sid, int(version), int(n), int(k), float(base))
            for sid, version, n, k, base in self.session.execute(stmt)
        ]

    def recent_promotions(self, *, since: datetime) -> list[tuple[str, int, datetime]]:
        """(series, version, when) of each production version promoted from
        Staging at or after `since` that replaced another (one to go back to)."""
        e, v = RegistryEventRow, VersionRow
        older = aliased(RegistryEventRow)
        replaced = (
            select(older.seq)
            .where(
                older.series_id == e.series_id,
                older.version != e.version,
                older.to_stage == PRODUCTION,
            )
            .exists()
        )
        stmt = (
            select(e.series_id, e.version, func.max(e.at))
            .join(v, (v.series_id == e.series_id) & (v.version == e.version))
            .where(
                v.stage == PRODUCTION,
                e.to_stage == PRODUCTION,
                e.from_stage == Stage.STAGING.value,
                e.at >= since,
                replaced,
            )
            .group_by(e.series_id, e.version)
        )
        return [
            (sid, int(version), at) for sid, version, at in self.session.execute(stmt)
        ]

    def rollup_windows(
        self, series_ids: Sequence[str], *, cut: datetime, start: datetime
    ) -> dict[str, tuple[int, int, int, int]]:
        """Per series, (answers, anomalies) in the hourly rollups from `start`
        to before `cut`, then from `cut` on: (before…, after…)."""
        r = PredictionRollupRow
        after = r.bucket >= cut

        def summed(column: Any, when: Any) -> Any:
            return func.coalesce(func.sum(case((when, column), else_=0)), 0)

        found: dict[str, tuple[int, int, int, int]] = {}
        for at in range(0, len(series_ids), CHUNK):
            stmt = (
                select(
                    r.series_id,
                    summed(r.predictions, ~after),
                    summed(r.anomalies, ~after),
                    summed(r.predictions, after),
                    summed(r.anomalies, after),
                )  # fmt: skip
                .where(r.series_id.in_(series_ids[at : at + CHUNK]), r.bucket >= start)
                .group_by(r.series_id)
            )
            for sid, *sums in self.session.execute(stmt):
                found[sid] = (int(sums[0]), int(sums[1]), int(sums[2]), int(sums[3]))
        return found

    def version_labels(
        self, promoted: Sequence[tuple[str, int, datetime]]
    ) -> dict[str, tuple[int, int]]:
        """Per series of `promoted` (series, version, since), the labels given
        since on readings of that version (or of none named): (labels, labels
        saying "not an anomaly")."""
        f = FeedbackRow
        found: dict[str, tuple[int, int]] = {}
        for at in range(0, len(promoted), CHUNK):
            part = promoted[at : at + CHUNK]
            since = min(when for _, _, when in part)
            versions = {sid: version for sid, version, _ in part}
            stmt = select(f.series_id, f.version, f.created_at, f.is_anomaly).where(
                f.series_id.in_(list(versions)), f.created_at >= since
            )
            whens = {sid: when for sid, _, when in part}
            for sid, version, created, is_anomaly in self.session.execute(stmt):
                if created < whens[sid] or version not in (None, versions[sid]):
                    continue
                labels, falses = found.get(sid, (0, 0))
                found[sid] = (labels + 1, falses + (not is_anomaly))
        return found

    def feedback_counts(
        self, *, since: datetime, min_labels: int
    ) -> dict[str, tuple[int, int]]:
        """Per series with `min_labels` or more labels given since `since`:
        (labels, labels saying "not an anomaly")."""
        f = FeedbackRow
        false = func.sum(case((f.is_anomaly.is_(False), 1), else_=0))
        stmt = (
            select(f.series_id, func.count(), false)
            .where(f.created_at >= since)
            .group_by(f.series_id)
            .having(func.count() >= min_labels)
        )
        return {sid: (int(n), int(k)) for sid, n, k in self.session.execute(stmt)}

    def labelled_readings(
        self, series_id: str, *, since: datetime
    ) -> list[tuple[float, float, bool]]:
        """(timestamp, value, labelled an anomaly) of the readings labelled
        since `since` whose value is known (stored, or in the anomaly log)."""
        f, s, reading, logged = FeedbackRow, SeriesRow, ReadingRow, ScoredAnomalyRow
        value = func.coalesce(reading.value, logged.value)
        stmt = (
            select(f.ts, value, f.is_anomaly)
            .outerjoin(s, s.series_id == f.series_id)
            .outerjoin(reading, and_(reading.series_key == s.key, reading.ts == f.ts))
            .outerjoin(logged, and_(logged.series_id == f.series_id, logged.ts == f.ts))
            .where(f.series_id == series_id, f.created_at >= since, value.is_not(None))
            .order_by(f.ts)
        )
        return [(float(t), float(x), bool(y)) for t, x, y in self.session.execute(stmt)]

    def newer_staging(self, series_ids: Sequence[str]) -> dict[str, int]:
        """Those of `series_ids` with a Staging version newer than their
        Production one: the newest such version each."""
        v = aliased(VersionRow)
        production = (
            select(v.version)
            .where(v.series_id == VersionRow.series_id, v.stage == PRODUCTION)
            .scalar_subquery()
        )
        found: dict[str, int] = {}
        for start in range(0, len(series_ids), CHUNK):
            piece = list(series_ids[start : start + CHUNK])
            stmt = (
                select(VersionRow.series_id, func.max(VersionRow.version))
                .where(
                    VersionRow.series_id.in_(piece),
                    VersionRow.stage == Stage.STAGING.value,
                    VersionRow.version > func.coalesce(production, 0),
                )
                .group_by(VersionRow.series_id)
            )
            found |= {sid: int(n) for sid, n in self.session.execute(stmt)}
        return found

    def failing_channels(self, *, min_attempts: int) -> list[FailingChannel]:
        """Channels whose oldest pending notification failed `min_attempts`
        times or more (the alerter retries it with backoff, and holds the
        channel's others behind it)."""
        n = NotificationRow
        pending = n.state == "pending"
        heads = (
            select(func.min(n.id)).where(pending).group_by(n.channel).scalar_subquery()
        )
        counts = {
            channel: int(k)
            for channel, k in self.session.execute(
                select(n.channel, func.count()).where(pending).group_by(n.channel)
            )
        }
        stmt = select(n.channel, n.attempts, n.last_error, n.next_attempt_at).where(
            n.id.in_(heads), n.attempts >= min_attempts
        )
        return [
            FailingChannel(name, attempts, error or "", retry_at, counts[name])
            for name, attempts, error, retry_at in self.session.execute(stmt)
        ]
