"""Request and response bodies of the training service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atalaia.api.common.params import Text, VersionNumber
from atalaia.core.jobs import TrainingJob
from atalaia.core.registry import ModelVersion

MAX_WINDOW_HOURS = 24 * 90


class TrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Text = "zscore"
    hyperparameters: dict[Text, Any] = Field(default_factory=dict)


class TrainingBody(BaseModel):
    """Inline data (`timestamps` in epoch seconds + `values`) or `window_hours`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
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
            ]
        },
    )

    timestamps: list[float] | None = None
    values: list[float] | None = None
    window_hours: float | None = Field(default=None, gt=0, le=MAX_WINDOW_HOURS)
    config: TrainingConfig = Field(default_factory=TrainingConfig)

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


class BatchTrainingBody(BaseModel):
    """Select series by explicit ids, sensor, prefix, or every series with data."""

    model_config = ConfigDict(extra="forbid")

    series_ids: list[Text] | None = Field(default=None, max_length=300_000)
    sensor_id: Text | None = None
    prefix: Text | None = None
    all_series: bool = False
    window_hours: float = Field(default=168, gt=0, le=MAX_WINDOW_HOURS)
    config: TrainingConfig = Field(default_factory=TrainingConfig)

    @model_validator(mode="after")
    def _one_selector(self) -> BatchTrainingBody:
        chosen = [
            self.series_ids is not None,
            self.sensor_id is not None,
            self.prefix is not None,
            self.all_series,
        ]
        if sum(chosen) != 1:
            raise ValueError(
                "choose exactly one of series_ids, sensor_id, prefix, all_series"
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


class VersionView(BaseModel):
    series_id: str
    version: int
    stage: str
    algorithm: str
    params: dict[str, float]
    metrics: dict[str, float]
    reference: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime

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
        )


class CanaryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    initial_percentage: float = Field(default=5, gt=0, le=100)
    increment_percentage: float = Field(default=15, gt=0, le=100)
    increment_interval_hours: float = Field(default=2, gt=0)


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["direct", "canary", "shadow"] = "direct"
    archive_existing: bool = True
    canary_config: CanaryConfig | None = None
    reason: Text = Field(default="", max_length=500)


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(default="", max_length=500)


class StageChangeView(BaseModel):
    version: int
    from_stage: str | None
    to_stage: str


class PointsBody(BaseModel):
    """Readings of one series: epoch-second `timestamps` and `values`, by index."""

    model_config = ConfigDict(extra="forbid")

    timestamps: list[float]
    values: list[float]


class IngestView(BaseModel):
    series_id: str
    received: int
    inserted: int
    ignored: int


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
    mean: float
    std: float
    first_timestamp: float | None
    last_timestamp: float | None


class SeriesPage(BaseModel):
    series: list[SeriesView]
    next_cursor: str | None


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: float = Field(allow_inf_nan=False, description="Unix time in seconds")
    is_anomaly: bool
    version: VersionNumber | None = None
    note: Text = Field(default="", max_length=1000)
