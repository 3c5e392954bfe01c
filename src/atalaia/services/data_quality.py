"""The data-quality report of a stored window: one series, or a sensor's axes
(`core.quality` measures; this reads the window)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ReadingStore, SeriesSummary
from atalaia.core.quality import QualityReport, QualityThresholds, assess_quality
from atalaia.core.series import check_series_id
from atalaia.errors import InvalidInput, SensorNotFound, SeriesNotFound
from atalaia.services import sensor_groups
from atalaia.services.plotting import MAX_WINDOW_POINTS, fetch_window, resolve_window
from atalaia.services.uploads import upload_series

UPLOAD_END_S = 1e-3  # an upload's window ends just after its last reading


@dataclass(frozen=True, slots=True)
class QualityQuery:
    """A window [start, end) in epoch seconds (None: the default, the last 7
    days of the data) and the values' physical range, if known."""

    start: float | None = None
    end: float | None = None
    physical_range: tuple[float, float] | None = None
    thresholds: QualityThresholds = QualityThresholds()


@dataclass(frozen=True, slots=True)
class SeriesQuality:
    series_id: str
    start: float
    end: float
    report: QualityReport


@dataclass(frozen=True, slots=True)
class SensorQuality:
    sensor_id: str
    start: float
    end: float
    axes: dict[str, SeriesQuality]  # by axis name
    fit_to_train: bool  # every axis is


def series_quality(
    session: Session, series_id: str, query: QualityQuery
) -> SeriesQuality:
    """The report of a series' window; SeriesNotFound without data,
    InvalidInput (`time_range`, `max_window_points`, `physical_range`)."""
    check_physical_range(query.physical_range)
    store = ReadingStore(session)
    summary = store.get_series(check_series_id(series_id))
    if summary is None or summary.first_ts is None or summary.last_ts is None:
        raise SeriesNotFound(series_id)
    start, end = resolve_window(
        first_ts=summary.first_ts,
        last_ts=summary.last_ts,
        start=query.start,
        end=query.end,
    )
    return _assessed(store, summary, start, end, query)


def sensor_quality(
    session: Session, sensor_id: str, query: QualityQuery
) -> SensorQuality:
    """The reports of a sensor's axes over one window (by default the last 7
    days of its newest data); SensorNotFound without a stored axis."""
    check_physical_range(query.physical_range)
    store = ReadingStore(session)
    axes = sensor_groups.axes_of(session, check_series_id(sensor_id))
    summaries = store.summaries(sorted(axes.values()))
    firsts = [s.first_ts for s in summaries.values() if s.first_ts is not None]
    lasts = [s.last_ts for s in summaries.values() if s.last_ts is not None]
    if not firsts or not lasts:
        raise SensorNotFound(sensor_id)
    start, end = resolve_window(
        first_ts=min(firsts), last_ts=max(lasts), start=query.start, end=query.end
    )
    reports = {
        axis: _assessed(store, summaries[series_id], start, end, query)
        for axis, series_id in sorted(axes.items())
        if series_id in summaries
    }
    fit = all(r.report.fit_to_train for r in reports.values())
    return SensorQuality(sensor_id, start, end, reports, fit)


def _assessed(
    store: ReadingStore,
    summary: SeriesSummary,
    start: float,
    end: float,
    query: QualityQuery,
) -> SeriesQuality:
    readings = fetch_window(
        store, summary, start=start, end=end, max_points=MAX_WINDOW_POINTS
    )
    report = assess_quality(
        readings.timestamps,
        readings.values,
        thresholds=query.thresholds,
        physical_range=query.physical_range,
    )
    return SeriesQuality(summary.series_id, start, end, report)


def check_physical_range(physical_range: tuple[float, float] | None) -> None:
    """InvalidInput (`physical_range`) unless low < high."""
    if physical_range is not None and not physical_range[0] < physical_range[1]:
        low, high = physical_range
        raise InvalidInput(
            f"min_value ({low:g}) must be below max_value ({high:g})",
            rule="physical_range",
        )


def upload_quality(
    session: Session, upload_id: str, *, limit: int
) -> list[SeriesQuality]:
    """The report of each series of an upload (the first `limit`, by id) over
    the window it uploaded, as stored now; NotFound for an unknown upload."""
    figures = upload_series(session=session, upload_id=upload_id, limit=limit)
    return [
        series_quality(
            session, series_id, QualityQuery(start=first, end=last + UPLOAD_END_S)
        )
        for series_id, _n, _stored, first, last in figures
    ]
