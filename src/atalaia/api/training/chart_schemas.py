"""The answer of GET /series/{series_id}/chart, for OpenAPI (the route writes
`services.chart.build_chart`'s data as it is)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from atalaia.core.incidents import Kind, Severity, State

Numbers = list[float | None]  # NaN and ±Inf are written as null


class ChartWindow(BaseModel):
    start: float = Field(description="Epoch seconds")
    end: float = Field(description="Epoch seconds, exclusive")


class ChartPoints(BaseModel):
    t: list[float] = Field(description="Epoch seconds, ascending")
    value: list[float]


class ChartBand(BaseModel):
    t: list[float] = Field(description="The points' times")
    expected: Numbers
    lower: Numbers
    upper: Numbers


class ChartAnomalies(BaseModel):
    t: list[float] = Field(description="Epoch seconds, ascending")
    value: list[float]
    score: Numbers
    reason: list[str]


class ChartIncident(BaseModel):
    id: int
    start: float = Field(description="Its first anomaly, epoch seconds")
    end: float = Field(description="Its latest anomaly, epoch seconds")
    severity: Severity
    status: State
    kind: Kind


class ChartView(BaseModel):
    series_id: str
    window: ChartWindow
    readings: int = Field(description="Readings in the window")
    decimated: bool = Field(description="Whether `points` holds fewer of them")
    model: dict[str, Any] | None = Field(
        description="The model scoring the window (as GET /plot gives it)"
    )
    training_window: ChartWindow | None
    points: ChartPoints = Field(
        description="The readings, or per time bucket its first, lowest, "
        "highest and last (M4), in time order"
    )
    band: ChartBand | None = Field(
        description="The model's expected value and band at the points' times"
    )
    anomalies: ChartAnomalies = Field(
        description="The window's anomalies by the model, at most 5,000: the "
        "highest scores, in time order"
    )
    anomalies_total: int
    changepoints: list[float] = Field(
        description="Where a level shift or variance change logged on ingest "
        "begins in the window, epoch seconds"
    )
    incidents: list[ChartIncident] = Field(
        description="The incidents involving the series that touch the window"
    )
