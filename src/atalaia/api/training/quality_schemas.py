"""Response bodies of the data-quality routes: the core's report as it is."""

from __future__ import annotations

from pydantic import BaseModel, Field

from atalaia.core.quality import QualityReport
from atalaia.services.data_quality import SensorQuality, SeriesQuality


class SeriesQualityView(BaseModel):
    """Whether a window of a series is fit to train on, and why."""

    series_id: str
    start: float = Field(description="The window's start, epoch seconds")
    end: float = Field(description="The window's end (exclusive), epoch seconds")
    fit_to_train: bool = Field(description="No blocking finding")
    report: QualityReport

    @classmethod
    def of(cls, quality: SeriesQuality) -> SeriesQualityView:
        return cls(
            series_id=quality.series_id,
            start=quality.start,
            end=quality.end,
            fit_to_train=quality.report.fit_to_train,
            report=quality.report,
        )


class SensorQualityView(BaseModel):
    """Whether a window of a sensor's axes is fit to train on: every axis is."""

    sensor_id: str
    start: float
    end: float
    fit_to_train: bool
    axes: dict[str, SeriesQualityView] = Field(description="By axis name")

    @classmethod
    def of(cls, quality: SensorQuality) -> SensorQualityView:
        return cls(
            sensor_id=quality.sensor_id,
            start=quality.start,
            end=quality.end,
            fit_to_train=quality.fit_to_train,
            axes={a: SeriesQualityView.of(q) for a, q in quality.axes.items()},
        )
