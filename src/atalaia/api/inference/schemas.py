"""Request and response bodies of the inference service.

They document the routes in OpenAPI and are the reference the hot path's parsers
(`bodies.py`) are tested against: numbers are JSON numbers (no strings, no
booleans), unknown fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atalaia.api.common.explained import (
    BOUND,
    DIRECTION,
    EXPECTED,
    REASON,
    STALE,
    STATE,
    AnomalyView,
    Direction,
    Reason,
    State,
)
from atalaia.api.common.params import (
    EPOCH_SECONDS,
    SERIES_ID_SCHEMA,
    EpochSeconds,
    ReadingValue,
)
from atalaia.core.series import MAX_SERIES_ID_LENGTH
from atalaia.services.ingest import MAX_POINTS_PER_REQUEST

MAX_BATCH = 100_000
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Reading(BaseModel):
    model_config = _STRICT | ConfigDict(
        json_schema_extra={"examples": [{"timestamp": 1733587200, "value": 0.315}]}
    )

    timestamp: float = Field(
        description="Unix time in seconds", json_schema_extra=EPOCH_SECONDS
    )
    value: ReadingValue


class SeriesReading(Reading):
    model_config = _STRICT

    series_id: str = Field(
        min_length=1,
        max_length=MAX_SERIES_ID_LENGTH,
        json_schema_extra=SERIES_ID_SCHEMA,  # checked by the route
    )


class BatchBody(BaseModel):
    """Row form: one object per reading."""

    model_config = _STRICT

    points: list[SeriesReading] = Field(min_length=1, max_length=MAX_BATCH)


class ColumnsBody(BaseModel):
    """Columnar form: three aligned arrays, cheaper to send and to parse.

    `series_id`, `timestamp` and `value` have the same length (1 to 100,000).
    """

    model_config = _STRICT | ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "series_id": ["sensor_001_radial", "sensor_001_axial"],
                    "timestamp": [1733587200, 1733587200],
                    "value": [0.31, 0.12],
                }
            ]
        }
    )

    series_id: list[Annotated[str, Field(json_schema_extra=SERIES_ID_SCHEMA)]] = Field(
        min_length=1, max_length=MAX_BATCH
    )
    timestamp: list[EpochSeconds] = Field(
        description="Aligned with `series_id`",
        json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH},
    )
    value: list[ReadingValue] = Field(
        description="Aligned with `series_id`",
        json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH},
    )

    @model_validator(mode="after")
    def _aligned(self) -> ColumnsBody:
        if not all(0 < len(s) <= MAX_SERIES_ID_LENGTH for s in self.series_id):
            raise ValueError(
                f"every series_id has 1 to {MAX_SERIES_ID_LENGTH} characters"
            )
        if not len(self.series_id) == len(self.timestamp) == len(self.value):
            raise ValueError("series_id, timestamp and value have the same length")
        return self


ROLE = (
    "Who answered: `production`, or a Staging version on trial: a canary's "
    "candidate (`canary`) or an A/B test's (`challenger`); null for a fallback"
)
Role = Literal["production", "canary", "challenger"]


class ModelInfo(BaseModel):
    version: int | None
    stage: str | None
    type: str
    loaded_from: str
    role: Role | None = Field(description=ROLE)


class PredictionView(BaseModel):
    series_id: str
    timestamp: float
    anomaly: bool
    anomaly_score: float = Field(
        description="Distance from the expected value in band half-widths: "
        "above 1 is an anomaly"
    )
    expected: float | None = Field(description=EXPECTED)
    lower: float | None = Field(description=BOUND.format("Lower"))
    upper: float | None = Field(description=BOUND.format("Upper"))
    direction: Direction | None = Field(description=DIRECTION)
    reason: Reason | None = Field(description=REASON)
    model_info: ModelInfo
    confidence: str = Field(description="high: a production model; low: a fallback")
    stale: bool = Field(description=STALE)
    state: State | None = Field(description=STATE)
    warning: str | None = Field(
        default=None,
        description="Only when the series has no model and no history (unknown, "
        "e.g. a mistyped id): `unknown_series: …`, answered with the default",
    )


class BatchView(BaseModel):
    count: int
    anomalies: int
    results: list[PredictionView]


class ColumnsView(BaseModel):
    """The columnar answer: one array per field, aligned with the request's."""

    count: int
    anomalies: int
    series_id: list[str]
    timestamp: list[float]
    anomaly: list[bool]
    anomaly_score: list[float]
    expected: list[float | None] = Field(description=EXPECTED)
    lower: list[float | None] = Field(description=BOUND.format("Lower"))
    upper: list[float | None] = Field(description=BOUND.format("Upper"))
    direction: list[Direction | None] = Field(description=DIRECTION)
    reason: list[Reason | None] = Field(description=REASON)
    version: list[int | None]
    stage: list[str | None]
    type: list[str]
    loaded_from: list[str]
    confidence: list[str]
    stale: list[bool] = Field(description=STALE)
    state: list[State | None] = Field(description=STATE)
    role: list[Role | None] = Field(description=ROLE)
    warning: list[str | None] | None = Field(
        default=None,
        description="Only when some series have no model and no history: per "
        "reading, `unknown_series: …` for those, null for the others",
    )


class PointsBody(BaseModel):
    """Readings of one series: epoch-second `timestamps` and `values`, by index:
    the two of the same length, at most 100,000, no timestamp twice."""

    model_config = _STRICT

    timestamps: list[EpochSeconds] = Field(
        description="Epoch seconds, in any order, each once",
        json_schema_extra={"maxItems": MAX_POINTS_PER_REQUEST},
    )
    values: list[ReadingValue] = Field(
        description="One value per timestamp",
        json_schema_extra={"maxItems": MAX_POINTS_PER_REQUEST},
    )


class IngestView(BaseModel):
    series_id: str
    received: int
    inserted: int
    ignored: int
    scored: int = Field(
        description="Readings scored: all of them when the series has a "
        "production model, none otherwise"
    )
    anomalies: list[AnomalyView] = Field(
        description="The anomalies among them, in time order (also in the anomaly "
        "log, once per reading)"
    )


class BulkIngestView(BaseModel):
    series: int = Field(description="Series with readings in the request")
    received: int
    inserted: int
    ignored: int
    scored: int
    anomalies: list[AnomalyView] = Field(
        description="The anomalies among the readings, by series then time"
    )
