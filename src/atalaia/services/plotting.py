"""Plot a series with its model: readings, normal band, anomalies, training window.

The band is the model's at each time: flat for a location/scale model, varying
with the phase of its period for a seasonal one.

`build_plot_data` reads what a plot needs; `render_png`, `render_svg` and
`to_json` turn it into a response body. Figures use matplotlib's object-oriented
API on an Agg canvas, never pyplot, so concurrent requests share no figure state.
The window, time axis and panel helpers serve a sensor's plot too
(`services.sensor_plotting`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ModelStore, ReadingStore, SeriesSummary
from atalaia.core.detectors.bands import reasons_of
from atalaia.core.detectors.forest import Forest
from atalaia.core.detectors.stuck import guard
from atalaia.core.explanations import Direction, Reason
from atalaia.core.ports import ArtifactStore
from atalaia.core.registry import ModelVersion, served_band
from atalaia.core.series import (
    FloatArray,
    Readings,
    TimeRange,
    check_series_id,
    describe_time,
)
from atalaia.errors import (
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    SeriesNotFound,
)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

MAX_WINDOW_POINTS = 2_000_000
DEFAULT_WINDOW_S = 7 * 24 * 3600.0
MAX_DRAWN_POINTS = 5_000
RASTERIZE_ABOVE = 5_000  # anomaly markers drawn as an image in SVGs past this count
BAND_SAMPLES = 2_000  # times the band is drawn at across the window
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# matplotlib's dates span years 1–9999: a window beyond them (readings stored
# before timestamps were bounded) is drawn on an axis of epoch seconds instead.
_DATABLE = (
    datetime(1, 1, 2, tzinfo=UTC).timestamp(),
    datetime(9999, 12, 30, tzinfo=UTC).timestamp(),
)
# Near float64's limit matplotlib's ticks overflow: larger values are drawn scaled.
_MAX_DRAWN_VALUE = 1e300


@dataclass(frozen=True, slots=True)
class PlotQuery:
    """A plot request; times are epoch seconds, None means the default."""

    series_id: str
    start: float | None = None
    end: float | None = None
    version: int | None = None


def epoch_seconds(
    moment: float | datetime | None, *, name: str, span: TimeRange
) -> float | None:
    """A query's time (epoch seconds, or a datetime: UTC without an offset) as
    epoch seconds; InvalidInput (`timestamp_range`) outside `span`."""
    if moment is None:
        return None
    if isinstance(moment, float):
        seconds = moment
    elif moment.tzinfo is None:
        seconds = moment.replace(tzinfo=UTC).timestamp()
    else:
        seconds = moment.timestamp()
    span.check_one(seconds, name=name)
    return seconds


@dataclass(frozen=True, slots=True)
class PlotData:
    """Readings of the window [start, end) scored by `model` (None: no model)."""

    series_id: str
    start: float
    end: float
    readings: Readings
    model: ModelVersion | None
    scores: FloatArray | None
    anomaly: BoolArray
    # Per reading, the reason where the model's own verdict gave the score,
    # not its band's: a forest's isolated pattern, a stuck value ("" elsewhere).
    verdicts: npt.NDArray[np.str_] | None = None

    @property
    def band(self) -> tuple[float, float] | None:
        """The flat band of a location/scale model; None otherwise."""
        if self.model is None or self.model.band is not None:
            return None
        return self.model.params.band()

    def band_at(self, timestamps: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The model's expected value and band half-width at `timestamps`."""
        assert self.model is not None
        return served_band(self.model).at(timestamps)

    @property
    def reasons(self) -> list[str]:
        """Why each reading would be an anomaly."""
        return self.reasons_at(np.arange(self.anomaly.size))

    def reasons_at(self, indices: IntArray) -> list[str]:
        """Why the readings at `indices` would be anomalies."""
        assert self.model is not None
        outside = reasons_of(served_band(self.model))
        if self.verdicts is None:
            return [outside] * indices.size
        verdicts = self.verdicts[indices]
        reasons: list[str] = np.where(verdicts != "", verdicts, outside).tolist()
        return reasons

    @property
    def time(self) -> TimeAxis:
        return TimeAxis(self.start, self.end)

    @property
    def value_scale(self) -> float:
        """1, or what values are divided by to be drawn (beyond _MAX_DRAWN_VALUE)."""
        peak = float(np.abs(self.readings.values).max(initial=0.0))
        if self.model is not None:
            expected, width = self.band_at(self.band_times)
            edges = np.abs(np.concatenate([expected - width, expected + width]))
            peak = max(peak, float(edges.max(initial=0.0)))
        return peak if peak > _MAX_DRAWN_VALUE else 1.0

    @property
    def band_times(self) -> FloatArray:
        """The times the band is drawn at: evenly across the window."""
        return np.linspace(self.start, self.end, BAND_SAMPLES)

    @property
    def training_window(self) -> tuple[float, float] | None:
        if self.model is None:
            return None
        return self.model.lineage.data_start, self.model.lineage.data_end


def build_plot_data(
    session: Session,
    query: PlotQuery,
    *,
    artifacts: ArtifactStore | None = None,
    max_points: int = MAX_WINDOW_POINTS,
) -> PlotData:
    """Read and score the readings of a plot (a heavy model's read from
    `artifacts`).

    Raises SeriesNotFound, VersionNotFound, InvalidInput (rules `time_range`
    and `max_window_points`), or DependencyUnavailable (a heavy model unread).
    """
    series_id = check_series_id(query.series_id)
    store = ReadingStore(session)
    summary = store.get_series(series_id)
    if summary is None or summary.first_ts is None or summary.last_ts is None:
        raise SeriesNotFound(series_id)
    start, end = resolve_window(
        first_ts=summary.first_ts,
        last_ts=summary.last_ts,
        start=query.start,
        end=query.end,
    )
    model = resolve_model(ModelStore(session), series_id, query.version)
    readings = fetch_window(store, summary, start=start, end=end, max_points=max_points)
    data = PlotData(series_id, start, end, readings, model, None, np.zeros(0, bool))
    if model is None:
        return replace(data, anomaly=np.zeros(len(readings), np.bool_))
    if model.artifact is not None:  # a heavy model: its own verdicts
        forest = _heavy_model(artifacts, model.artifact)
        verdicts = forest.score(readings.timestamps, readings.values)
        return replace(
            data,
            scores=verdicts.score,
            anomaly=verdicts.score > 1.0,
            verdicts=np.where(verdicts.isolated, Reason.ISOLATED_PATTERN.value, ""),
        )
    expected, width = data.band_at(readings.timestamps)
    scores = np.abs(readings.values - expected) / width
    if model.stuck_after:  # auto's stuck guard over the window's readings
        scores, stuck = guard(
            readings.timestamps, readings.values, scores, model.stuck_after
        )
        data = replace(data, verdicts=np.where(stuck, Reason.STUCK.value, ""))
    return replace(data, scores=scores, anomaly=scores > 1.0)


def _heavy_model(artifacts: ArtifactStore | None, key: str) -> Forest:
    """The forest stored at `key`; DependencyUnavailable when it cannot be read."""
    if artifacts is None:
        raise DependencyUnavailable("artifact store", "none configured")
    try:
        return Forest.from_bytes(artifacts.get(key))
    except (OSError, ValueError, NotFound) as exc:
        raise DependencyUnavailable("artifact store", str(exc)) from exc


def resolve_window(
    *, first_ts: float, last_ts: float, start: float | None, end: float | None
) -> tuple[float, float]:
    """The window [start, end) to plot.

    A missing end is just after the newest reading; a missing start is
    DEFAULT_WINDOW_S before end, but not before the oldest reading, and not
    after the newest one (far from the epoch, end - DEFAULT_WINDOW_S == end).
    """
    if end is None:
        end = float(np.nextafter(last_ts, np.inf))
    if start is None:
        start = end - DEFAULT_WINDOW_S
        if first_ts < end:
            start = min(max(start, first_ts), last_ts)
    if not end > start:
        raise InvalidInput(
            f"end ({describe_time(end)}) must be after start ({describe_time(start)}); "
            "a missing end means the newest reading",
            rule="time_range",
        )
    return start, end


def resolve_model(
    models: ModelStore, series_id: str, version: int | None
) -> ModelVersion | None:
    """The asked version, else the Production one, else the newest, else None."""
    if version is not None:
        return models.get(series_id, version)
    production = models.production(series_id)
    if production is not None:
        return production
    versions = models.versions(series_id)  # newest first
    return versions[0] if versions else None


def fetch_window(
    store: ReadingStore,
    summary: SeriesSummary,
    *,
    start: float,
    end: float,
    max_points: int,
) -> Readings:
    """The series' readings of [start, end); InvalidInput (`max_window_points`)
    past `max_points`."""
    first, last = summary.first_ts, summary.last_ts
    covers_all = (
        first is not None and last is not None and start <= first and end > last
    )
    if covers_all and summary.n_points > max_points:
        raise _too_many(max_points)
    readings = store.window(
        summary.series_id, start=start, end=end, limit=max_points + 1
    )
    if len(readings) > max_points:
        raise _too_many(max_points)
    return readings


def _too_many(max_points: int) -> InvalidInput:
    return InvalidInput(
        f"the window holds more than {max_points:,} readings; narrow start and end",
        rule="max_window_points",
    )


# --- JSON ------------------------------------------------------------------------


def to_json(data: PlotData) -> dict[str, Any]:
    """The plot as plain JSON-ready data; times in epoch seconds. Each point
    carries the band at its time (`expected`, `lower`, `upper`: null without a
    model), each anomaly its explanation; `band` is the flat band of a
    location/scale model (null for a seasonal one)."""
    ts, vs = data.readings.timestamps, data.readings.values
    nothing: list[Any] = [None] * vs.size
    scores = data.scores.tolist() if data.scores is not None else nothing
    expected, lower, upper, reasons = nothing, nothing, nothing, nothing
    if data.model is not None:
        centre, width = data.band_at(ts)
        expected = centre.tolist()
        lower, upper = (centre - width).tolist(), (centre + width).tolist()
        reasons = data.reasons
    flagged = np.flatnonzero(data.anomaly)
    band, window = data.band, data.training_window
    return {
        "series_id": data.series_id,
        "window": {"start": data.start, "end": data.end},
        "model": model_json(data.model),
        "band": {"lower": band[0], "upper": band[1]} if band else None,
        "training_window": {"start": window[0], "end": window[1]} if window else None,
        "points": {
            "timestamps": ts.tolist(),
            "values": vs.tolist(),
            "anomaly": data.anomaly.tolist(),
            "anomaly_score": scores,
            "expected": expected,
            "lower": lower,
            "upper": upper,
        },
        "anomalies": [
            {
                "timestamp": ts[i].item(),
                "value": vs[i].item(),
                "anomaly_score": scores[i],
                "expected": expected[i],
                "lower": lower[i],
                "upper": upper[i],
                "direction": Direction.ABOVE
                if vs[i] > expected[i]
                else Direction.BELOW,
                "reason": reasons[i],
            }
            for i in flagged.tolist()
        ],
        "summary": {"points": int(vs.size), "anomalies": int(flagged.size)},
    }


def model_json(model: ModelVersion | None) -> dict[str, Any] | None:
    """A model as plots describe it: version, stage, family, parameters, period."""
    if model is None:
        return None
    band = model.band
    return {
        "version": model.version,
        "stage": model.stage.value,
        "algorithm": model.algorithm,
        **model.params.as_dict(),
        "period_s": band.period if band is not None else None,
        "phases": band.phases if band is not None else 1,
    }


# --- figures ---------------------------------------------------------------------


def render_png(data: PlotData) -> bytes:
    return save_figure(draw_figure(data), "png")


def render_svg(data: PlotData) -> bytes:
    return save_figure(draw_figure(data), "svg")


def save_figure(figure: Figure, fmt: str) -> bytes:
    """The figure as a PNG or an SVG (without a date: the same plot, the same bytes)."""
    buffer = io.BytesIO()
    figure.savefig(
        buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None
    )
    return buffer.getvalue()


def draw_figure(data: PlotData) -> Figure:
    """Readings, normal band, anomalies and training window on one time axis."""
    figure = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    data.time.shade_training(ax, data.training_window)
    _draw_band(ax, data)
    _draw_readings(ax, data)
    _draw_anomalies(ax, data)
    _style_axes(ax, data)
    return figure


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """The window [start, end) on a figure's horizontal axis: dates (UTC), or
    epoch seconds for a window beyond matplotlib's calendar."""

    start: float
    end: float

    @property
    def dated(self) -> bool:
        return _DATABLE[0] <= self.start and self.end <= _DATABLE[1]

    def x(self, timestamps: FloatArray) -> FloatArray:
        """Where `timestamps` fall on the axis."""
        return date_numbers(timestamps) if self.dated else timestamps

    def shade_training(self, ax: Axes, window: tuple[float, float] | None) -> None:
        """Shade the part of the training window inside this one."""
        if window is None:
            return
        lo, hi = max(window[0], self.start), min(window[1], self.end)
        if lo < hi:
            x0, x1 = self.x(np.array([lo, hi]))
            ax.axvspan(
                x0, x1, color="0.5", alpha=0.12, lw=0, zorder=0, label="training window"
            )

    def style(self, ax: Axes) -> None:
        """Limits, ticks and name of the axis."""
        ax.set_xlim(*self.x(np.array([self.start, self.end])))
        if self.dated:
            locator = mdates.AutoDateLocator(tz=UTC, maxticks=10)  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_locator(locator)
            formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_formatter(formatter)
        ax.set_xlabel(
            "time (UTC)" if self.dated else "time (seconds since the Unix epoch)"
        )


def date_numbers(timestamps: FloatArray) -> FloatArray:
    """Epoch seconds as matplotlib date numbers (whatever matplotlib's epoch)."""
    offset = float(mdates.date2num(_UNIX_EPOCH))  # type: ignore[no-untyped-call]
    return timestamps / 86_400.0 + offset


def note_no_readings(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no readings in this window", transform=ax.transAxes,
            ha="center", va="center", color="0.4")  # fmt: skip


def finish_panel(ax: Axes) -> None:
    """A light grid, and the legend (if any) to the right of the panel."""
    ax.grid(True, color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                  frameon=False, fontsize="small")  # fmt: skip


def downsample_indices(
    values: FloatArray, keep: BoolArray, *, max_points: int = MAX_DRAWN_POINTS
) -> IntArray:
    """Sorted indices to draw: the min and max of each bucket, the ends, and `keep`.

    At most `max_points` indices plus the kept ones (for `max_points` ≥ 4); the
    drawn line keeps every peak and trough of the full series.
    """
    n = values.size
    if n <= max_points:
        return np.arange(n)
    size = -(-n // max(1, (max_points - 2) // 2))  # two per bucket, plus the ends
    buckets = -(-n // size)
    base = np.arange(buckets) * size
    lowest = np.full(buckets * size, np.inf)
    lowest[:n] = values
    highest = np.full(buckets * size, -np.inf)
    highest[:n] = values
    lows = base + lowest.reshape(buckets, size).argmin(axis=1)
    highs = base + highest.reshape(buckets, size).argmax(axis=1)
    ends = np.array([0, n - 1])
    return np.unique(np.concatenate([lows, highs, ends, np.flatnonzero(keep)]))


def _draw_band(ax: Axes, data: PlotData) -> None:
    """The band and the expected value over the window, sampled evenly."""
    if data.model is None:
        return
    times = data.band_times
    expected, width = data.band_at(times)
    scale = data.value_scale
    x = data.time.x(times)
    lower, upper = (expected - width) / scale, (expected + width) / scale
    threshold = f"{data.model.params.threshold:g}"
    if data.model.band is None:
        label = f"normal band (center ± {threshold}·scale)"
    else:
        label = f"normal band (expected ± {threshold}·spread of its phase)"
    ax.fill_between(x, lower, upper, color="tab:green", alpha=0.15, lw=0, zorder=1,
                    label=label)  # fmt: skip
    for edge in (lower, upper):
        ax.plot(x, edge, color="tab:green", lw=0.8, alpha=0.6, zorder=1)
    ax.plot(x, expected / scale, color="tab:green", lw=0.8, ls="--", zorder=1,
            label="expected")  # fmt: skip


def _draw_readings(ax: Axes, data: PlotData) -> None:
    ts, vs = data.readings.timestamps, data.readings.values
    if vs.size == 0:
        note_no_readings(ax)
        return
    drawn = downsample_indices(vs, data.anomaly)
    label = f"readings ({vs.size:,})"
    if drawn.size < vs.size:
        label += ", min/max envelope"
    ys = vs[drawn] / data.value_scale
    ax.plot(data.time.x(ts[drawn]), ys, color="tab:blue", lw=0.8, zorder=2, label=label)


def _draw_anomalies(ax: Axes, data: PlotData) -> None:
    if data.model is None:
        return
    flagged = np.flatnonzero(data.anomaly)
    x = data.time.x(data.readings.timestamps[flagged])
    y = data.readings.values[flagged] / data.value_scale
    ax.scatter(
        x, y, s=28, color="red", edgecolors="darkred",
        linewidths=0.6, zorder=3, label=f"anomalies ({flagged.size:,})",
        rasterized=bool(flagged.size > RASTERIZE_ABOVE),
    )  # fmt: skip


def _style_axes(ax: Axes, data: PlotData) -> None:
    ax.set_title(_title(data), loc="left")
    data.time.style(ax)
    scale = data.value_scale
    ax.set_ylabel("value" if scale == 1.0 else f"value ÷ {scale:.3g}")
    finish_panel(ax)


def _title(data: PlotData) -> str:
    model = data.model
    if model is None:
        return f"{data.series_id} — no model"
    return (
        f"{data.series_id} — v{model.version} ({model.stage.value}, {model.algorithm})"
    )
