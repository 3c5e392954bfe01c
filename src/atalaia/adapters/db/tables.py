"""ORM rows. Only the repositories see them; everything else gets core entities."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from atalaia.core.rollout import COUNTERS

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:  # noqa: ARG002
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> Any:  # noqa: ARG002
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SeriesRow(Base):
    """A series and running statistics of all its readings (for the last fallback)."""

    __tablename__ = "series"

    series_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    sensor_id: Mapped[str] = mapped_column(String(128), index=True)
    axis: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    n_points: Mapped[int] = mapped_column(BigInteger, default=0)
    mean: Mapped[float] = mapped_column(Double, default=0.0)
    m2: Mapped[float] = mapped_column(Double, default=0.0)
    first_ts: Mapped[float | None] = mapped_column(Double)
    last_ts: Mapped[float | None] = mapped_column(Double)
    # The series' key in the readings (a number instead of the id in every row):
    # a sequence's next value on PostgreSQL, numbered by the writer on SQLite.
    key: Mapped[int | None] = mapped_column(
        BigInteger, server_default=FetchedValue(), unique=True
    )


class ReadingRow(Base):
    __tablename__ = "readings"
    __table_args__ = {"sqlite_with_rowid": False}

    series_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[float] = mapped_column(Double, primary_key=True)
    value: Mapped[float] = mapped_column(Double)


class ReadingSegmentRow(Base):
    """A Parquet file of cold readings of one period and a range of series
    (`core.history`)."""

    __tablename__ = "reading_segments"
    __table_args__ = (
        Index("ix_reading_segments_start", "period_start"),
        Index("ix_reading_segments_end", "period_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period_start: Mapped[float] = mapped_column(Double)
    period_end: Mapped[float] = mapped_column(Double)
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    first_key: Mapped[int] = mapped_column(BigInteger)  # the series keys it spans
    last_key: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class JobRow(Base):
    __tablename__ = "training_jobs"
    __table_args__ = (
        Index("ix_training_jobs_series_created", "series_id", "created_at"),
        Index("ix_training_jobs_status", "status"),
        # A batch's progress from the index alone (`JobStore.batches`).
        Index(
            "ix_training_jobs_batch_status",
            "batch_id",
            "status",
            "created_at",
            "started_at",
            "finished_at",
        ),  # fmt: skip
    )

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    series_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(64))
    hyperparameters: Mapped[dict[str, float]] = mapped_column(Json)
    payload_key: Mapped[str | None] = mapped_column(String(256))
    window_hours: Mapped[float | None] = mapped_column(Float)
    submitted_by: Mapped[str] = mapped_column(String(128))
    batch_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # Data-quality rules the request overrode (null: none).
    quality_ignored: Mapped[list[str] | None] = mapped_column(Json)


class TrainingClaimRow(Base):
    """Each series' last accepted training submission: the row concurrent
    submissions of a series contend for (the per-series training interval)."""

    __tablename__ = "training_claims"

    series_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("series_id", "version"),
        Index("ix_model_versions_stage_series", "stage", "series_id"),
        Index("ix_model_versions_stage_algorithm", "stage", "algorithm"),
        Index("ix_model_versions_stage_id", "stage", "id"),
        # At most one Production version per series, whatever races the writers run.
        Index(
            "uq_model_versions_one_production",
            "series_id",
            unique=True,
            postgresql_where=text("stage = 'production'"),
            sqlite_where=text("stage = 'production'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(64))
    # The fitted ModelParams, typed: warm loading reads them without decoding JSON.
    center: Mapped[float] = mapped_column(Double)
    scale: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    # A seasonal model's period and phases (PhaseBand.to_bytes); NULL: flat.
    band: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A sensor model's axes and matrices (StoredSensor.to_bytes); NULL: a series'.
    sensor: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A heavy model's key in the artifact store; NULL: the row holds it all.
    artifact: Mapped[str | None] = mapped_column(String(256))
    # The stuck guard's limit (`core.detectors.stuck`); 0: no guard.
    stuck_after: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A streaming model's packed params and state; NULL: not a streaming model.
    stream: Mapped[bytes | None] = mapped_column(LargeBinary)
    metrics: Mapped[dict[str, float | str]] = mapped_column(Json, default=dict)
    reference: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(Json)
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("training_jobs.job_id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


_ID = BigInteger().with_variant(Integer, "sqlite")


class RegistryEventRow(Base):
    """The promotion ledger, which is also the change feed of the inference service."""

    __tablename__ = "registry_events"
    __table_args__ = (
        # The newest moves of one kind (promotions, rollbacks) for the overview.
        Index("ix_registry_events_move", "from_stage", "to_stage", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(512), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    # The figures a rollout's step or end was decided on (`core.rollout`).
    evidence: Mapped[dict[str, Any] | None] = mapped_column(Json)


class RolloutRow(Base):
    """A canary or a shadow of a Staging version against its series' Production
    one (`core.rollout`). `live_key` is the series id while it runs and NULL
    once it ended: one running rollout per series."""

    __tablename__ = "rollouts"
    __table_args__ = (
        Index("ix_rollouts_state_next_step_at", "state", "next_step_at"),
        Index("ix_rollouts_series_id", "series_id", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(String(128))
    strategy: Mapped[str] = mapped_column(String(16))
    candidate_version: Mapped[int] = mapped_column(Integer)
    production_version: Mapped[int] = mapped_column(Integer)
    percentage: Mapped[float] = mapped_column(Double)  # the candidate's share now
    initial_percentage: Mapped[float] = mapped_column(Double)
    increment_percentage: Mapped[float] = mapped_column(Double)
    interval_s: Mapped[float] = mapped_column(Double)  # a shadow's: its length
    gates: Mapped[dict[str, Any]] = mapped_column(Json)
    then: Mapped[str] = mapped_column(String(16), default="")  # a shadow's sequel
    state: Mapped[str] = mapped_column(String(16))
    live_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_step_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(512), default="")
    outcome: Mapped[str] = mapped_column(String(1024), default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


# A rollout's counters (`core.rollout.COUNTERS`), added up in place from
# every inference replica's flushes.
rollout_figures = Table(
    "rollout_figures",
    Base.metadata,
    Column(
        "rollout_id", _ID, ForeignKey("rollouts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    *(Column(name, Double, nullable=False, server_default="0") for name in COUNTERS),
    Column("updated_at", UtcDateTime, nullable=False),
)  # fmt: skip


class AuditRow(Base):
    """Append-only (migration 0024's triggers refuse UPDATE and DELETE)."""

    __tablename__ = "audit_log"
    # The list's filters, each read newest first (by id).
    __table_args__ = (
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_target_id", "target", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # The client's address and the request's id, when made by a request.
    address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128), index=True)
    # An entry written at most once (a token's first sign-in): its key.
    once_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_series_ts", "series_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(String(128))
    ts: Mapped[float] = mapped_column(Double)
    is_anomaly: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(1024), default="")
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ScoredAnomalyRow(Base):
    """An anomaly scored on ingest; ids in commit order, which consumers read
    them in (see `AnomalyLog`); one per (series, timestamp), as the readings."""

    __tablename__ = "scored_anomalies"
    __table_args__ = (UniqueConstraint("series_id", "ts"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
        autoincrement=True,
    )  # fmt: skip
    series_id: Mapped[str] = mapped_column(String(128))
    ts: Mapped[float] = mapped_column(Double)
    value: Mapped[float] = mapped_column(Double)
    score: Mapped[float] = mapped_column(Double)
    expected: Mapped[float | None] = mapped_column(Double)
    lower: Mapped[float | None] = mapped_column(Double)
    upper: Mapped[float | None] = mapped_column(Double)
    direction: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(64))
    stale: Mapped[bool] = mapped_column(Boolean)
    scored_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PredictionRollupRow(Base):
    """Per series and hour: what inference answered (kept out of Prometheus)."""

    __tablename__ = "prediction_rollups"
    __table_args__ = (Index("ix_prediction_rollups_bucket", "bucket", "series_id"),)

    series_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger)
    anomalies: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger)
    latency_ms_sum: Mapped[float] = mapped_column(Double)
    latency_ms_max: Mapped[float] = mapped_column(Double)


_LIVE = text("live_key IS NOT NULL")


def _live_index(name: str, *columns: str) -> Index:
    """An index of the live incidents only (what the fleet's status counts)."""
    return Index(name, *columns, postgresql_where=_LIVE, sqlite_where=_LIVE)


class IncidentRow(Base):
    """An incident (`core.incidents`). `live_key` is "sensor/kind" while it is
    open or acknowledged and NULL once resolved: one live incident per sensor
    and kind."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_state_severity", "state", "severity"),
        Index("ix_incidents_sensor_id", "sensor_id"),
        Index("ix_incidents_sensor_group", "sensor_group"),
        Index("ix_incidents_started_at", "started_at"),
        _live_index("ix_incidents_live_kind_severity", "kind", "severity"),
        _live_index("ix_incidents_live_last_at", "last_at", "sensor_id"),
        _live_index("ix_incidents_live_group_sensor", "sensor_group", "sensor_id"),
        _live_index("ix_incidents_live_peak_score", "peak_score", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    live_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    sensor_id: Mapped[str] = mapped_column(String(128))
    sensor_group: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[float] = mapped_column(Double)
    last_at: Mapped[float] = mapped_column(Double)
    peak_score: Mapped[float] = mapped_column(Double)
    peak: Mapped[dict[str, Any]] = mapped_column(Json)
    count: Mapped[int] = mapped_column(BigInteger)
    series: Mapped[list[str]] = mapped_column(Json)
    active: Mapped[dict[str, float]] = mapped_column(Json)
    recent: Mapped[list[float]] = mapped_column(Json)
    assignee: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[float | None] = mapped_column(Double)
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class IncidentHistoryRow(Base):
    """A line of an incident's history: a change or a comment."""

    __tablename__ = "incident_history"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(String(4000))
    at: Mapped[float] = mapped_column(Double)


class SeriesRecoveryRow(Base):
    """A series read enough normal readings in a row to recover (`Recovery`);
    ids in commit order, as the anomaly log's."""

    __tablename__ = "series_recoveries"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(String(128))
    ts: Mapped[float] = mapped_column(Double)


class PlatformEventRow(Base):
    """A lifecycle event to route (drift, failed training, promotion, rollback,
    a platform alert), once per `key`."""

    __tablename__ = "platform_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    series_id: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(400))
    text: Mapped[str] = mapped_column(String(4000))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    at: Mapped[float] = mapped_column(Double)


class AlertChannelRow(Base):
    """A notification channel; `source` is "api" or "file" (the rules file)."""

    __tablename__ = "alert_channels"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))
    rate_per_min: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AlertRuleRow(Base):
    """An alert rule (`core.alerting.AlertRule`, its fields in `spec`)."""

    __tablename__ = "alert_rules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    source: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SilenceRow(Base):
    """A silence (`core.alerting.Silence`, its matchers in `matchers`)."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_ends_at", "ends_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    starts_at: Mapped[float] = mapped_column(Double)
    ends_at: Mapped[float] = mapped_column(Double)
    author: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(1000))
    matchers: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class NotificationRow(Base):
    """The outbox: a notification stored before it is sent, then its delivery
    (`state` pending, sent or failed)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_state_channel", "state", "channel", "id"),
        Index("ix_notifications_incident_id", "incident_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(400))
    text: Mapped[str] = mapped_column(String(4000))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    incident_id: Mapped[int | None] = mapped_column(_ID)
    state: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Double)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[float] = mapped_column(Double)
    sent_at: Mapped[float | None] = mapped_column(Double)


class AlerterCursorRow(Base):
    """How far the alerter has read a log (the anomalies, the recoveries, the
    platform events)."""

    __tablename__ = "alerter_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)


class HealingActionRow(Base):
    """A decision of the self-healing engine (`core.healing`) and its outcome:
    done, dry_run, rate_limited, failed or skipped."""

    __tablename__ = "healing_actions"
    __table_args__ = (
        Index("ix_healing_actions_rule_target", "rule", "target", "id"),
        Index("ix_healing_actions_rule_at", "rule", "at"),
        Index("ix_healing_actions_target", "target", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    rule: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(256))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(1000))
    evidence: Mapped[dict[str, Any]] = mapped_column(Json)
    episode: Mapped[str] = mapped_column(String(128), default="")
    request_id: Mapped[str | None] = mapped_column(String(64))


class HealingRuleRow(Base):
    """A healing rule's policy as an admin set it (over the settings')."""

    __tablename__ = "healing_rules"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    max_actions_per_hour: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OperationRow(Base):
    """A fleet operation (`core.operations`) and its progress; `runner` holds
    it until `lease_until`, then another runner may take it over."""

    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_status", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    selector: Mapped[dict[str, Any]] = mapped_column(Json)
    condition: Mapped[dict[str, float | bool]] = mapped_column(Json, default=dict)
    # A canary operation's plan and gates (`core.operations.CanaryStart`).
    canary: Mapped[dict[str, Any]] = mapped_column(
        Json, default=dict, server_default="{}"
    )
    # The training batch whose weekly wave it is: one wave per batch.
    wave_of: Mapped[str | None] = mapped_column(String(36), unique=True)
    archive_existing: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(512), default="")
    actor: Mapped[str] = mapped_column(String(128))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    skipped_by_reason: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    runner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OperationChunkRow(Base):
    """A chunk of series an operation has yet to handle (their ids, a line
    each), deleted in the transaction that handles them: none is handled
    twice."""

    __tablename__ = "operation_chunks"

    operation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    series: Mapped[str] = mapped_column(String)  # unbounded


class AssetRow(Base):
    """A node of the asset hierarchy (`core.assets`); `path` is its ancestors'
    ids and its own (`/site/line/machine/`): the nodes under one share its
    path as a prefix."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(256))
    parent_id: Mapped[str | None] = mapped_column(
        String(128), ForeignKey("assets.id"), index=True
    )
    path: Mapped[str] = mapped_column(String(1024), index=True)
    attributes: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    latitude: Mapped[float | None] = mapped_column(Double)
    longitude: Mapped[float | None] = mapped_column(Double)
    x: Mapped[float | None] = mapped_column(Double)
    y: Mapped[float | None] = mapped_column(Double)
    # A site's floor plan (`services.maps`): its media type and pixel size.
    floorplan: Mapped[dict[str, Any] | None] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class UploadRow(Base):
    """An uploaded file (`core.uploads`) and its ingest's progress; `runner`
    holds it until `lease_until`, then another runner may take it over."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_status", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(256))
    file_format: Mapped[str] = mapped_column(String(16))
    spool_path: Mapped[str] = mapped_column(String(1024))
    bytes_total: Mapped[int] = mapped_column(BigInteger)
    request: Mapped[dict[str, Any]] = mapped_column(Json)
    detected: Mapped[dict[str, Any]] = mapped_column(Json)
    actor: Mapped[str] = mapped_column(String(128))
    progress: Mapped[float] = mapped_column(Double, default=0.0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    readings_valid: Mapped[int] = mapped_column(BigInteger, default=0)
    readings_stored: Mapped[int] = mapped_column(BigInteger, default=0)
    invalid: Mapped[int] = mapped_column(BigInteger, default=0)
    invalid_by_reason: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    invalid_shown: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    error: Mapped[str | None] = mapped_column(String(1024))
    runner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UploadSeriesRow(Base):
    """Per series of an upload: its valid readings, those newly stored, and
    their time range (what a data-quality report of the upload starts from)."""

    __tablename__ = "upload_series"

    upload_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    series_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    readings: Mapped[int] = mapped_column(BigInteger)
    stored: Mapped[int] = mapped_column(BigInteger)
    first_ts: Mapped[float] = mapped_column(Double)
    last_ts: Mapped[float] = mapped_column(Double)


class ReportFileRow(Base):
    """A scheduled report's file in the artifact store: one a period per
    subscription and format (the constraint makes two schedulers' runs one),
    and the channels its notifications went to (their delivery is the
    outbox's, keyed `delivery_key.<channel>`)."""

    __tablename__ = "report_files"
    __table_args__ = (UniqueConstraint("subscription", "period_start", "format"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str | None] = mapped_column(String(128))
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    format: Mapped[str] = mapped_column(String(8))
    file_name: Mapped[str] = mapped_column(String(256))
    artifact_key: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    channels: Mapped[list[str]] = mapped_column(Json, default=list)
    delivery_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
