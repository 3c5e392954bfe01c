"""Plot a sensor with its multivariate model: a panel per axis, and the score.

The readings plotted are those of the timestamps every axis has, scored
together by the sensor's model as inference scores them
(`StoredSensor.params.score`, over the window's rows in time order: its first
`window` − 1 readings are judged by their reading alone). An axis' panel shows
its readings, the value the other axes predict for it (`expected`) and the band
that keeps it normal; an anomaly is the sensor's, at a timestamp, marked on
every axis and largest on the axis contributing most. The bottom panel is the
anomaly score, 1 being the threshold.

`build_sensor_plot_data` reads and scores; `render_sensor_png`,
`render_sensor_svg` and `sensor_to_json` make a response body of it, with the
series plot's helpers (`services.plotting`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import matplotlib.ticker as mticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ModelStore, ReadingStore, SeriesSummary
from atalaia.core.detectors.multivariate import SensorScores
from atalaia.core.registry import ModelVersion
from atalaia.core.sensors import SensorData, StoredSensor, shared_readings
from atalaia.core.series import check_series_id
from atalaia.errors import SensorModelNotFound, SeriesNotFound
from atalaia.services import sensor_groups
from atalaia.services.plotting import (
    MAX_WINDOW_POINTS,
    RASTERIZE_ABOVE,
    IntArray,
    TimeAxis,
    downsample_indices,
    fetch_window,
    finish_panel,
    note_no_readings,
    resolve_window,
    save_figure,
)


@dataclass(frozen=True, slots=True)
class SensorPlotQuery:
    """A sensor plot request; times are epoch seconds, None means the default."""

    sensor_id: str
    start: float | None = None
    end: float | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class SensorPlotData:
    """The shared readings of [start, end) of the sensor's axes, scored by its
    `model` (whose `sensor` is `sensor`); `series_ids` are the axes' series."""

    sensor_id: str
    start: float
    end: float
    model: ModelVersion
    sensor: StoredSensor
    series_ids: tuple[str, ...]
    readings: SensorData
    scores: SensorScores

    @property
    def time(self) -> TimeAxis:
        return TimeAxis(self.start, self.end)

    @property
    def top_axis(self) -> IntArray:
        """Per reading, the index of the axis contributing most to its score."""
        top: IntArray = np.argmax(self.scores.contributions, axis=1)
        return top

    @property
    def training_window(self) -> tuple[float, float]:
        return self.model.lineage.data_start, self.model.lineage.data_end


def build_sensor_plot_data(
    session: Session, query: SensorPlotQuery, *, max_points: int = MAX_WINDOW_POINTS
) -> SensorPlotData:
    """Read the sensor's model and its axes' shared readings, and score them.

    The default window ends just after the oldest of the axes' newest readings.
    Raises SensorModelNotFound, VersionNotFound, SeriesNotFound (an axis
    without readings), or InvalidInput (`time_range`, and `max_window_points`
    when an axis holds more than its share of `max_points`).
    """
    sensor_id = check_series_id(query.sensor_id)
    models = ModelStore(session)
    model, sensor = resolve_sensor_model(models, sensor_id, query.version)
    store = ReadingStore(session)
    named = sensor_groups.axes_of(session, sensor_id)
    series_ids = tuple(named.get(axis, f"{sensor_id}_{axis}") for axis in sensor.axes)
    summaries = store.summaries(series_ids)
    spans = [_span(summaries.get(series_id), series_id) for series_id in series_ids]
    start, end = resolve_window(
        first_ts=max(first for first, _ in spans),
        last_ts=min(last for _, last in spans),
        start=query.start,
        end=query.end,
    )
    windows = [
        fetch_window(
            store, summaries[series_id], start=start, end=end,
            max_points=max_points // len(series_ids),
        )
        for series_id in series_ids
    ]  # fmt: skip
    readings = shared_readings(sensor.axes, windows)
    scores = sensor.params.score(readings.values)
    return SensorPlotData(
        sensor_id, start, end, model, sensor, series_ids, readings, scores
    )


def resolve_sensor_model(
    models: ModelStore, sensor_id: str, version: int | None
) -> tuple[ModelVersion, StoredSensor]:
    """The asked version, else the Production one, else the newest, of the
    sensor models registered under `sensor_id`; and its sensor model.

    Raises VersionNotFound, or SensorModelNotFound."""
    for model in _candidates(models, sensor_id, version):
        if model.sensor is not None:
            return model, model.sensor
    raise SensorModelNotFound(sensor_id, version)


def _candidates(
    models: ModelStore, sensor_id: str, version: int | None
) -> Iterator[ModelVersion]:
    """The asked version; else the Production one, then all, newest first."""
    if version is not None:
        yield models.get(sensor_id, version)
        return
    production = models.production(sensor_id)
    if production is not None:
        yield production
    yield from models.versions(sensor_id)


def _span(summary: SeriesSummary | None, series_id: str) -> tuple[float, float]:
    """The series' first and last timestamps; SeriesNotFound without readings."""
    if summary is None or summary.first_ts is None or summary.last_ts is None:
        raise SeriesNotFound(series_id)
    return summary.first_ts, summary.last_ts


# --- JSON ------------------------------------------------------------------------


def sensor_to_json(data: SensorPlotData) -> dict[str, Any]:
    """The plot as plain JSON-ready data; times in epoch seconds. Per axis,
    each timestamp's value, expected value and band (NaN, to be null, for an
    axis the model leaves out); each anomaly with its direction, reason, top
    axis, and per axis its value, band and share of the score."""
    ts, vs, s = data.readings.timestamps, data.readings.values, data.scores
    axes, flagged = data.sensor.axes, np.flatnonzero(s.anomaly).tolist()
    top = data.top_axis
    start, end = data.training_window
    return {
        "sensor_id": data.sensor_id,
        "window": {"start": data.start, "end": data.end},
        "model": _model_json(data),
        "training_window": {"start": start, "end": end},
        "points": {
            "timestamps": ts.tolist(),
            "anomaly": s.anomaly.tolist(),
            "anomaly_score": s.score.tolist(),
            "axes": {
                axis: {
                    "series_id": data.series_ids[k],
                    "values": vs[:, k].tolist(),
                    "expected": s.expected[:, k].tolist(),
                    "lower": s.lower[:, k].tolist(),
                    "upper": s.upper[:, k].tolist(),
                }
                for k, axis in enumerate(axes)
            },
        },
        "anomalies": [
            {
                "timestamp": ts[i].item(),
                "anomaly_score": s.score[i].item(),
                "direction": str(s.direction[i]),
                "reason": str(s.reason[i]),
                "top_axis": axes[top[i]],
                "axes": {
                    axis: {
                        "value": vs[i, k].item(),
                        "expected": s.expected[i, k].item(),
                        "lower": s.lower[i, k].item(),
                        "upper": s.upper[i, k].item(),
                        "contribution": s.contributions[i, k].item(),
                    }
                    for k, axis in enumerate(axes)
                },
            }
            for i in flagged
        ],
        "summary": {"points": len(data.readings), "anomalies": len(flagged)},
    }


def _model_json(data: SensorPlotData) -> dict[str, Any]:
    model, params = data.model, data.sensor.params
    return {
        "version": model.version,
        "stage": model.stage.value,
        "algorithm": model.algorithm,
        "axes": list(data.sensor.axes),
        "modelled_axes": [data.sensor.axes[k] for k in params.modelled.tolist()],
        "threshold": model.params.threshold,  # in sigmas, as the band detectors'
        "window": params.window,
    }


# --- figures ---------------------------------------------------------------------


def render_sensor_png(data: SensorPlotData) -> bytes:
    return save_figure(draw_sensor_figure(data), "png")


def render_sensor_svg(data: SensorPlotData) -> bytes:
    return save_figure(draw_sensor_figure(data), "svg")


def draw_sensor_figure(data: SensorPlotData) -> Figure:
    """A panel per axis (readings, band, anomalies) over the score's panel."""
    n = len(data.sensor.axes)
    figure = Figure(figsize=(12, 1.2 + 2.2 * n), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(
        n + 1, 1, sharex=True, squeeze=False, height_ratios=[3] * n + [2]
    )[:, 0]
    for k, ax in enumerate(panels[:-1]):
        data.time.shade_training(ax, data.training_window)
        _draw_axis(ax, data, k)
    _draw_score(panels[-1], data)
    panels[0].set_title(_title(data), loc="left")
    data.time.style(panels[-1])
    for ax in panels:
        finish_panel(ax)
    return figure


def _draw_axis(ax: Axes, data: SensorPlotData, k: int) -> None:
    """Axis `k`'s readings, expected value and band, and the anomalies on it."""
    axis = data.sensor.axes[k]
    ax.set_ylabel(axis)
    ts, vs, s = data.readings.timestamps, data.readings.values[:, k], data.scores
    if vs.size == 0:
        note_no_readings(ax)
        return
    drawn = downsample_indices(vs, s.anomaly)
    x = data.time.x(ts[drawn])
    if k in data.sensor.params.modelled:
        ax.fill_between(x, s.lower[drawn, k], s.upper[drawn, k], color="tab:green",
                        alpha=0.15, lw=0, zorder=1, label="normal band")  # fmt: skip
        ax.plot(x, s.expected[drawn, k], color="tab:green", lw=0.7, ls="--",
                zorder=1, label="expected from the other axes")  # fmt: skip
    else:
        ax.text(0.01, 0.95, "left out of the model (it wandered in training)",
                transform=ax.transAxes, va="top", color="0.4",
                fontsize="small")  # fmt: skip
    label = f"readings ({vs.size:,})"
    if drawn.size < vs.size:
        label += ", min/max envelope"
    ax.plot(x, vs[drawn], color="tab:blue", lw=0.8, zorder=2, label=label)
    _mark_anomalies(ax, data, k)


def _mark_anomalies(ax: Axes, data: SensorPlotData, k: int) -> None:
    """Every anomaly of the sensor; large where this axis contributes most."""
    flagged = np.flatnonzero(data.scores.anomaly)
    led = data.top_axis[flagged] == k
    x = data.time.x(data.readings.timestamps[flagged])
    y = data.readings.values[flagged, k]
    rasterized = bool(flagged.size > RASTERIZE_ABOVE)
    if (~led).any():
        ax.scatter(
            x[~led], y[~led], s=14, facecolors="none", edgecolors="red",
            linewidths=0.7, zorder=3, rasterized=rasterized,
            label=f"anomalies led by another axis ({(~led).sum():,})",
        )  # fmt: skip
    if led.any():
        ax.scatter(
            x[led], y[led], s=32, color="red", edgecolors="darkred", linewidths=0.6,
            zorder=4, rasterized=rasterized,
            label=f"anomalies led by this axis ({led.sum():,})",
        )  # fmt: skip


def _draw_score(ax: Axes, data: SensorPlotData) -> None:
    """The anomaly score, linear up to the threshold (1) and logarithmic above."""
    ts, s = data.readings.timestamps, data.scores
    ax.set_ylabel("anomaly score")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0.0, max(2.0, 1.3 * float(s.score.max(initial=0.0))))
    ax.yaxis.set_major_locator(
        mticker.SymmetricalLogLocator(linthresh=1.0, base=10.0, subs=[1, 2, 5])
    )
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:g}"))
    ax.axhline(1.0, color="red", lw=0.8, ls="--", zorder=1, label="threshold (1)")
    if ts.size == 0:
        note_no_readings(ax)
        return
    drawn = downsample_indices(s.score, s.anomaly)
    ax.plot(data.time.x(ts[drawn]), s.score[drawn], color="tab:purple", lw=0.8,
            zorder=2, label="score")  # fmt: skip
    flagged = np.flatnonzero(s.anomaly)
    ax.scatter(
        data.time.x(ts[flagged]), s.score[flagged], s=16, color="red", zorder=3,
        label=f"anomalies ({flagged.size:,})",
        rasterized=bool(flagged.size > RASTERIZE_ABOVE),
    )  # fmt: skip


def _title(data: SensorPlotData) -> str:
    model = data.model
    return (
        f"{data.sensor_id} — v{model.version} ({model.stage.value}, {model.algorithm})"
    )
