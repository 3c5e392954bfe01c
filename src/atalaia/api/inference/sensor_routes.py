"""Predicting a sensor: one reading of each of its axes, scored together by its
multivariate model (an axis leaving the others is an anomaly even within its
own range)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from atalaia.api.common.deps import ResourcesDep, Viewer, guard_batch
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import EPOCH_SECONDS, ReadingValue, SeriesId
from atalaia.api.common.resources import Resources
from atalaia.api.common.state import state_as
from atalaia.api.inference.schemas import ModelInfo
from atalaia.api.inference.state import ServingState
from atalaia.core.series import check_series_id, check_value
from atalaia.errors import SensorNotServed
from atalaia.services.inference.sensors import SensorVerdict

router = APIRouter(tags=["inference"])
SensorId = SeriesId  # the same rule: e.g. sensor_001


_EXAMPLE = {
    "timestamp": 1733587200,
    "values": {"radial": 0.31, "axial": 0.62, "tangential": 0.93},
}


def _reading_config(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [example]},
    )


class SensorReading(BaseModel):
    """The value of each of the sensor's axes at one time."""

    model_config = _reading_config(_EXAMPLE)

    timestamp: float = Field(
        description="Unix time in seconds", json_schema_extra=EPOCH_SECONDS
    )
    values: dict[Annotated[str, Field(max_length=64)], ReadingValue] = Field(
        min_length=1, max_length=64, description="Axis name → value: every axis"
    )


class AxisView(BaseModel):
    value: float
    expected: float | None = Field(
        description="The axis' value as the other axes predict it; null for an "
        "axis the model leaves out (it wandered on its own in training)"
    )
    lower: float | None
    upper: float | None
    contribution: float = Field(description="The axis' share of the score (sum 1)")


class SensorPredictionView(BaseModel):
    sensor_id: str
    timestamp: float
    anomaly: bool
    anomaly_score: float = Field(description="Above 1 is an anomaly")
    direction: str | None = Field(
        description="For an anomaly: above or below, of the top contributing axis"
    )
    reason: str | None = Field(
        description="For an anomaly: axis_correlation_break (or outside_band for "
        "a sensor modelled on one axis); null otherwise"
    )
    contributing_axes: list[str] = Field(
        description="For an anomaly, the axes whose share is above an equal share, "
        "largest first; empty otherwise"
    )
    axes: dict[str, AxisView]
    model_info: ModelInfo
    confidence: str


MAX_SENSOR_BATCH = 10_000


class SensorBatchReading(SensorReading):
    """One reading of a sensor: the value of each of its axes at one time."""

    model_config = _reading_config({"sensor_id": "sensor_001", **_EXAMPLE})

    sensor_id: SensorId


class SensorBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    readings: list[SensorBatchReading] = Field(
        min_length=1, max_length=MAX_SENSOR_BATCH
    )


class SensorBatchView(BaseModel):
    count: int
    anomalies: int
    results: list[SensorPredictionView] = Field(
        description="One answer per reading, in the request's order"
    )


# A plain function: FastAPI runs it in a worker thread, so that a batch of
# many sensors (~0.1 ms each) never holds the event loop.
@router.post(
    "/predict/sensors/batch",  # before /predict/sensors/{sensor_id}
    responses=error_responses(SensorNotServed),
    summary="Predict readings of many sensors",
)
def predict_sensors(
    body: SensorBatch, request: Request, resources: ResourcesDep, principal: Viewer
) -> SensorBatchView:
    """Score readings of many sensors (up to 10,000), each reading every axis
    of its sensor at one time: each sensor's readings in time order, after
    those of earlier requests, as one request per reading would. Nothing is
    scored unless every reading is valid: 404 when a sensor has no
    production sensor model; 422 (`sensor_axes`) when a reading does not name
    exactly its sensor's axes."""
    guard_batch(
        resources, principal, (r.sensor_id for r in body.readings), sensors=True
    )
    predictor = state_as(ServingState, request)["predictor"]
    sensors, signals = predictor.sensors, predictor.signals
    by_sensor: dict[str, list[int]] = {}
    for i, reading in enumerate(body.readings):
        _check_reading(reading, resources)
        sensors.check(check_series_id(reading.sensor_id), reading.values)
        by_sensor.setdefault(reading.sensor_id, []).append(i)
    views: dict[int, SensorPredictionView] = {}
    for sensor_id, at in by_sensor.items():
        readings = [body.readings[i] for i in at]
        verdicts = sensors.score_many(
            sensor_id, [r.timestamp for r in readings], [r.values for r in readings]
        )
        for i, reading, verdict in zip(at, readings, verdicts, strict=True):
            views[i] = _view(verdict, reading.timestamp)
            signals.sensor(verdict, reading.timestamp)
    results = [views[i] for i in range(len(body.readings))]
    anomalies = sum(v.anomaly for v in results)
    return SensorBatchView(count=len(results), anomalies=anomalies, results=results)


@router.post(
    "/predict/sensors/{sensor_id}",
    responses=error_responses(SensorNotServed),
    summary="Predict one reading of a sensor",
)
async def predict_sensor(
    sensor_id: SensorId,
    body: SensorReading,
    request: Request,
    resources: ResourcesDep,
    _: Viewer,
) -> SensorPredictionView:
    """Score one reading of every axis of a sensor together, with the sensor's
    production `multivariate` model; readings of earlier requests fill its
    window. 404 when the sensor has no production sensor model; 422
    (`sensor_axes`) unless `values` names exactly its axes."""
    _check_reading(body, resources)
    predictor = state_as(ServingState, request)["predictor"]
    verdict = predictor.sensors.score(
        check_series_id(sensor_id), body.timestamp, body.values
    )
    predictor.signals.sensor(verdict, body.timestamp)
    return _view(verdict, body.timestamp)


def _check_reading(reading: SensorReading, resources: Resources) -> None:
    resources.time_range.check_one(reading.timestamp)
    for value in reading.values.values():
        check_value(value)


def _view(verdict: SensorVerdict, timestamp: float) -> SensorPredictionView:
    shares = verdict.contributions
    order = sorted(range(len(verdict.axes)), key=lambda i: -shares[i])
    even = 1.0 / len(verdict.axes)
    return SensorPredictionView(
        sensor_id=verdict.sensor_id,
        timestamp=timestamp,
        anomaly=verdict.anomaly,
        anomaly_score=verdict.score,
        direction=verdict.direction,
        reason=verdict.reason,
        contributing_axes=[verdict.axes[i] for i in order if shares[i] > even]
        if verdict.anomaly
        else [],
        axes={
            axis: AxisView(
                value=float(verdict.values[i]),
                expected=_number(verdict.expected[i]),
                lower=_number(verdict.lower[i]),
                upper=_number(verdict.upper[i]),
                contribution=float(shares[i]),
            )
            for i, axis in enumerate(verdict.axes)
        },
        model_info=ModelInfo(
            version=verdict.version,
            stage="production",
            type="multivariate",
            loaded_from="memory",
            role="production",
        ),
        confidence="high",
    )


def _number(x: float) -> float | None:
    """NaN (an axis left out) as null."""
    return None if x != x else float(x)
