"""Request and response bodies of the inference service."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 100_000


class Reading(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timestamp: float
    value: float


class SeriesReading(Reading):
    series_id: str = Field(min_length=1, max_length=128)


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[SeriesReading] = Field(min_length=1, max_length=MAX_BATCH)


class ModelInfo(BaseModel):
    version: int | None
    stage: str | None
    type: str
    loaded_from: str


class PredictionView(BaseModel):
    series_id: str
    timestamp: float
    anomaly: bool
    anomaly_score: float
    model_info: ModelInfo
    confidence: str


class BatchView(BaseModel):
    count: int
    anomalies: int
    results: list[dict[str, Any]]
