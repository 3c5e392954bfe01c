"""Request and response bodies of the training service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    model_validator,
)

from atalaia.api.common.explained import AnomalyView
from atalaia.api.common.params import (
    EPOCH_SECONDS,
    EpochSeconds,
    ReadingValue,
    Text,
    VersionNumber,
)
from atalaia.core.detectors import MAX_HYPERPARAMETER
from atalaia.core.detectors.catalog import TRAINED
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.quality import IGNORE_ALL, QualityRule, parse_ignored
from atalaia.core.registry import ModelVersion
from atalaia.core.rollout import CanaryPlan, Gates
from atalaia.core.series import MAX_TRAINING_POINTS, MIN_TRAINING_POINTS
from atalaia.services.registry_overview import (
    CHANGES,
    WAITING,
    ChangeKind,
    Overview,
    kind_of,
)
from atalaia.services.training_batches import BatchProgress

MAX_WINDOW_HOURS = 24 * 90
DEFAULT_ALGORITHM = "auto"
# Request bodies: no unknown field; numbers are JSON numbers (not strings or
# booleans), like the inference service's.
_REQUEST = ConfigDict(extra="forbid", strict=True)
_POSITIVE = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_HYPERPARAMETER}


def _one_algorithm(schema: dict[str, Any]) -> None:
    """Each algorithm with its own hyperparameters (finite numbers > 0)."""
    schema["oneOf"] = [
        {
            "properties": {
                "algorithm": {"const": name},
                "hyperparameters": {
                    "type": "object",
                    "properties": dict.fromkeys(
                        sorted({*family.defaults, *family.optional}), _POSITIVE
                    ),
                    "additionalProperties": False,
                },
            },
            "required": [] if name == DEFAULT_ALGORITHM else ["algorithm"],
        }
        for name, family in sorted(TRAINED.items())
    ]


class TrainingConfig(BaseModel):
    """A detector family and its hyperparameters (defaults fill the rest)."""

    model_config = _REQUEST | ConfigDict(json_schema_extra=_one_algorithm)

    algorithm: Text = Field(
        default=DEFAULT_ALGORITHM,
        json_schema_extra={"enum": [*sorted(TRAINED)]},
        description="A series family, or `multivariate` for a sensor (the id "
        "is then the sensor's, e.g. sensor_001: its axes' stored readings, "
        "`window_hours`, are trained together); default `auto`",
    )
    hyperparameters: dict[Text, Any] = Field(default_factory=dict)


class DataQualityConfig(BaseModel):
    """Data-quality findings that do not refuse the training data (by default
    every blocking finding of the data's report refuses it: 422 `data_quality`
    for inline data, a failed job for a stored window)."""

    model_config = _REQUEST

    ignore: list[Text] | Text = Field(
        default_factory=list,
        description="`all`, or rules among: " + ", ".join(QualityRule),
        json_schema_extra={
            "anyOf": [
                {"type": "array", "items": {"enum": [*QualityRule]}},
                {"const": IGNORE_ALL},
            ]
        },
    )

    def ignored(self) -> frozenset[QualityRule]:
        """The rules ignored; InvalidInput (`data_quality_ignore`) for an
        unknown one."""
        return parse_ignored(self.ignore)


def _points(what: str, low: int, high: int) -> Any:
    """An optional array of `low` to `high` numbers (checked by the route, which
    names the rule broken: `min_points`, `max_points`)."""
    return Field(
        default=None,
        description=what,
        json_schema_extra={"minItems": low, "maxItems": high},
    )


_INLINE_OR_WINDOW: list[JsonValue] = [
    {
        "required": ["timestamps", "values"],
        "properties": {"timestamps": {"type": "array"}, "values": {"type": "array"}},
    },
    {"required": ["window_hours"], "properties": {"window_hours": {"type": "number"}}},
]


class TrainingBody(BaseModel):
    """Inline data (`timestamps` in epoch seconds + `values`) or `window_hours`:
    exactly one.

    Inline data: `timestamps` and `values` of the same length, 10,000 to 100,000
    points, timestamps strictly increasing, values finite and not constant.
    `window_hours`: the series' stored readings of that window, at least 10,000.
    """

    model_config = _REQUEST | ConfigDict(
        json_schema_extra={
            "oneOf": _INLINE_OR_WINDOW,
            "examples": [
                {"window_hours": 168, "config": {"algorithm": "zscore"}},
                {
                    "timestamps": [1733587200, 1733587260, "…"],
                    "values": [0.31, 0.29, "…"],
                    "config": {
                        "algorithm": "robust",
                        "hyperparameters": {"threshold_sigma": 4},
                    },
                },
            ],
        },
    )

    timestamps: list[EpochSeconds] | None = _points(
        "Epoch seconds, strictly increasing", MIN_TRAINING_POINTS, MAX_TRAINING_POINTS
    )
    values: list[ReadingValue] | None = _points(
        "One finite value per timestamp", MIN_TRAINING_POINTS, MAX_TRAINING_POINTS
    )
    window_hours: float | None = Field(default=None, gt=0, le=MAX_WINDOW_HOURS)
    config: TrainingConfig = Field(default_factory=TrainingConfig)
    data_quality: DataQualityConfig = Field(default_factory=DataQualityConfig)

    @model_validator(mode="after")
    def _one_data_source(self) -> TrainingBody:
        inline = self.timestamps is not None or self.values is not None
        if inline == (self.window_hours is not None):
            raise ValueError(
                "give either inline data (timestamps and values) or window_hours"
            )
        if inline and (self.timestamps is None or self.values is None):
            raise ValueError("inline data needs both timestamps and values")
        return self


_ONE_SELECTOR: list[JsonValue] = [
    {"required": ["series_ids"], "properties": {"series_ids": {"type": "array"}}},
    {"required": ["sensor_id"], "properties": {"sensor_id": {"type": "string"}}},
    {"required": ["prefix"], "properties": {"prefix": {"type": "string"}}},
    {"required": ["asset"], "properties": {"asset": {"type": "string"}}},
    {"required": ["all_series"], "properties": {"all_series": {"const": True}}},
]


class BatchTrainingBody(BaseModel):
    """Select series by explicit ids, sensor, prefix, a node of the asset
    hierarchy (the series under it), or every series with data: exactly one.
    An id that breaks a rule is listed in the answer's `rejected`."""

    model_config = _REQUEST | ConfigDict(json_schema_extra={"oneOf": _ONE_SELECTOR})

    series_ids: list[Text] | None = Field(default=None, max_length=300_000)
    sensor_id: Text | None = None
    prefix: Text | None = None
    asset: Text | None = None
    all_series: bool = False
    window_hours: float = Field(default=168, gt=0, le=MAX_WINDOW_HOURS)
    config: TrainingConfig = Field(default_factory=TrainingConfig)
    data_quality: DataQualityConfig = Field(default_factory=DataQualityConfig)

    @model_validator(mode="after")
    def _one_selector(self) -> BatchTrainingBody:
        chosen = [
            self.series_ids is not None,
            self.sensor_id is not None,
            self.prefix is not None,
            self.asset is not None,
            self.all_series,
        ]
        if sum(chosen) != 1:
            raise ValueError(
                "choose exactly one of series_ids, sensor_id, prefix, asset, all_series"
            )
        return self


class JobView(BaseModel):
    job_id: str
    series_id: str
    status: str
    algorithm: str
    hyperparameters: dict[str, float]
    source: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    model_version: int | None
    error: dict[str, Any] | None
    submitted_by: str  # the token subject that asked for it
    quality_ignored: list[str] = Field(
        description="Data-quality rules whose findings do not refuse its data"
    )
    links: dict[str, str]

    @classmethod
    def of(cls, job: TrainingJob) -> JobView:
        source: dict[str, Any] = (
            {"kind": "inline"}
            if job.payload_key
            else {"kind": "stored", "window_hours": job.window_hours}
        )
        links = {"self": f"/api/v1/training/jobs/{job.job_id}"}
        if job.version is not None:
            links["model"] = f"/api/v1/models/{job.series_id}/versions/{job.version}"
        return cls(
            job_id=job.job_id,
            series_id=job.series_id,
            status=job.status.value,
            algorithm=job.algorithm,
            hyperparameters=job.hyperparameters,
            source=source,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            attempts=job.attempts,
            model_version=job.version,
            error=job.error,
            submitted_by=job.submitted_by,
            quality_ignored=sorted(job.quality_ignored),
            links=links,
        )


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None


class BatchAccepted(BaseModel):
    batch_id: str
    accepted: int
    rejected: list[dict[str, Any]]
    jobs: list[JobView]


class RetriedJobView(JobView):
    retry_of: str = Field(description="The id of the job retried")

    @classmethod
    def retrying(cls, job: TrainingJob, original: str) -> RetriedJobView:
        return cls(**JobView.of(job).model_dump(), retry_of=original)


class BatchView(BaseModel):
    """A training batch's jobs by status, and its pace."""

    batch_id: str
    created_at: datetime
    actor: str | None = Field(description="The token subject that submitted it")
    algorithm: str | None
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    done: int = Field(description="Jobs ended: succeeded, failed or cancelled")
    started_at: datetime | None = Field(description="When its first job started")
    updated_at: datetime = Field(description="When a job of it last changed")
    rate_per_s: float | None = Field(
        description="Jobs ended per second since the first started (up to the "
        "last end once all have); null before any started"
    )
    eta_s: float | None = Field(
        description="Seconds left at that rate; null when unknown or finished"
    )
    links: dict[str, str]

    @classmethod
    def of(cls, batch: BatchProgress) -> BatchView:
        counts, n = batch.counts, batch.counts.by_status
        path = f"/api/v1/training/batches/{counts.batch_id}"
        return cls(
            batch_id=counts.batch_id,
            created_at=counts.created_at,
            actor=counts.actor,
            algorithm=counts.algorithm,
            total=batch.total,
            queued=n[JobStatus.QUEUED],
            running=n[JobStatus.RUNNING],
            succeeded=n[JobStatus.SUCCEEDED],
            failed=n[JobStatus.FAILED],
            cancelled=n[JobStatus.CANCELLED],
            done=batch.done,
            started_at=counts.started_at,
            updated_at=counts.updated_at,
            rate_per_s=batch.rate_per_s,
            eta_s=batch.eta_s,
            links={
                "self": path,
                "jobs": f"/api/v1/training/jobs?batch_id={counts.batch_id}",
            },
        )


class BatchPage(BaseModel):
    batches: list[BatchView]
    next_cursor: str | None


class VersionView(BaseModel):
    series_id: str
    version: int
    stage: str
    algorithm: str
    params: dict[str, float]
    metrics: dict[str, float | str]
    reference: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    artifact: str | None = Field(
        default=None,
        description="A heavy model's key in the artifact store (an isolation "
        "forest's trees); null: the registry holds the whole model",
    )

    @classmethod
    def of(cls, model: ModelVersion) -> VersionView:
        return cls(
            series_id=model.series_id,
            version=model.version,
            stage=model.stage.value,
            algorithm=model.algorithm,
            params=model.params.as_dict(),
            metrics=model.metrics,
            reference=model.reference,
            lineage=model.lineage.as_dict(),
            created_at=model.created_at,
            artifact=model.artifact,
        )


class CanaryConfig(BaseModel):
    model_config = _REQUEST

    initial_percentage: float = Field(default=5, gt=0, le=100)
    increment_percentage: float = Field(default=15, gt=0, le=100)
    increment_interval_hours: float = Field(default=2, gt=0)

    def plan(self) -> CanaryPlan:
        return CanaryPlan(
            self.initial_percentage,
            self.increment_percentage,
            self.increment_interval_hours * 3600.0,
        )


class ShadowConfig(BaseModel):
    model_config = _REQUEST

    duration_hours: float = Field(
        default=24, gt=0, le=24 * 90,
        description="How long the candidate scores beside production",
    )  # fmt: skip
    then: Literal["canary", "report"] = Field(
        default="canary",
        description="When the comparison passes: start a canary (of "
        "canary_config), or only report it",
    )


class AbConfig(BaseModel):
    model_config = _REQUEST

    percentage: float = Field(
        default=50, gt=0, lt=100,
        description="The challenger's fixed share of the readings",
    )  # fmt: skip
    duration_hours: float = Field(default=168, gt=0, le=24 * 90)


class GatesConfig(BaseModel):
    """What a candidate must show (against production's verdicts on the same
    readings) to go on; every field has the platform's default."""

    model_config = _REQUEST

    max_error_rate: float = Field(default=0.005, ge=0, le=1)
    max_p99_ms: float = Field(default=100, gt=0, le=60_000)
    anomaly_rate_tolerance: float = Field(
        default=0.2, ge=0, le=10,
        description="Relative: 0.2 allows production's anomaly rate ±20 %",
    )  # fmt: skip
    min_predictions: int = Field(default=100, ge=1, le=10_000_000)

    def gates(self) -> Gates:
        return Gates(**self.model_dump())


class PromoteBody(BaseModel):
    """`direct`: Production now. `canary`: a growing share of the readings
    (canary_config) while the gates hold. `shadow`: scores every reading
    beside production for shadow_config.duration_hours, answering none; its
    comparison then starts a canary or rejects it. `ab`: answers a fixed
    share (ab_config) for a period, then reports; nothing moves by itself."""

    model_config = _REQUEST

    strategy: Literal["direct", "canary", "shadow", "ab"] = "direct"
    archive_existing: bool = True
    canary_config: CanaryConfig | None = None
    shadow_config: ShadowConfig | None = None
    ab_config: AbConfig | None = None
    gates: GatesConfig | None = None
    reason: Text = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _config_of_its_strategy(self) -> PromoteBody:
        given = {
            "canary_config": ("canary", "shadow"),
            "shadow_config": ("shadow",),
            "ab_config": ("ab",),
            "gates": ("canary", "shadow"),
        }
        for name, strategies in given.items():
            if getattr(self, name) is not None and self.strategy not in strategies:
                raise ValueError(
                    f"{name} belongs to strategy {' or '.join(map(repr, strategies))}"
                )
        return self


class RollbackBody(BaseModel):
    model_config = _REQUEST

    reason: Text = Field(default="", max_length=500)


class StageChangeView(BaseModel):
    version: int
    from_stage: str | None
    to_stage: str


class WaitingVersionView(BaseModel):
    series_id: str
    version: int
    algorithm: str
    created_at: datetime
    metrics: dict[str, float | str]


class LedgerEntryView(BaseModel):
    series_id: str
    version: int
    kind: ChangeKind
    from_stage: str | None
    to_stage: str
    actor: str
    reason: str
    at: datetime


class ModelsOverview(BaseModel):
    production_by_algorithm: dict[str, int]
    stages: dict[str, int] = Field(description="Versions by stage")
    staging_waiting: list[WaitingVersionView] = Field(
        description=f"The {WAITING} newest staging versions newer than their "
        "series' production version (or of a series without one)"
    )
    recent_changes: list[LedgerEntryView] = Field(
        description=f"The {CHANGES} newest entries of the promotion ledger"
    )

    @classmethod
    def of(cls, overview: Overview) -> ModelsOverview:
        return cls(
            production_by_algorithm=overview.production_by_algorithm,
            stages={stage.value: n for stage, n in overview.stages.items()},
            staging_waiting=[
                WaitingVersionView(
                    series_id=v.series_id,
                    version=v.version,
                    algorithm=v.algorithm,
                    created_at=v.created_at,
                    metrics=v.metrics,
                )
                for v in overview.staging_waiting
            ],
            recent_changes=[
                LedgerEntryView(
                    series_id=e.series_id,
                    version=e.version,
                    kind=kind_of(e),
                    from_stage=e.from_stage,
                    to_stage=e.to_stage,
                    actor=e.actor,
                    reason=e.reason,
                    at=e.at,
                )
                for e in overview.recent_changes
            ],
        )


class PointsPage(BaseModel):
    series_id: str
    timestamps: list[float]
    values: list[float]
    next_cursor: str | None


class SeriesView(BaseModel):
    series_id: str
    sensor_id: str
    axis: str | None
    points: int
    mean: float | None = Field(description="null when the values overflow float64")
    std: float | None = Field(description="null when the values overflow float64")
    first_timestamp: float | None
    last_timestamp: float | None


class SeriesPage(BaseModel):
    series: list[SeriesView]
    next_cursor: str | None


class FeedbackBody(BaseModel):
    model_config = _REQUEST

    timestamp: float = Field(
        allow_inf_nan=False,
        description="Unix time in seconds",
        json_schema_extra=EPOCH_SECONDS,
    )
    is_anomaly: bool
    version: VersionNumber | None = None
    note: Text = Field(default="", max_length=1000)


class AnomalyPage(BaseModel):
    anomalies: list[AnomalyView]
    next_cursor: str | None = Field(
        description="Where to read on from (`after`); null only when nothing was "
        "ever read"
    )
