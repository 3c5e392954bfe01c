"""Gather a fleet's or a sensor's report for a period from the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import (
    AssetStore,
    IncidentFilter,
    IncidentStore,
    ModelStore,
    ReadingStore,
    ReportQueries,
)
from atalaia.core.ports import ArtifactStore
from atalaia.core.registry import ModelVersion
from atalaia.errors import InvalidInput, NotFound
from atalaia.services.reports import charts
from atalaia.services.reports.content import (
    Cell,
    Findings,
    Period,
    Report,
    Table,
    day_by_day,
    summary_of,
    tables_of,
)

MAX_INCIDENTS = 5_000  # the newest of the period
MAX_MOVES = 5_000
MAX_DRIFT = 1_000
TOP = 20  # sensors and series ranked


class SensorNotFound(NotFound):
    rule = "sensor_exists"


def check_fleet_size(session: Session, *, asset: str | None, max_series: int) -> None:
    """InvalidInput (`report_size`) when the fleet's report (of `asset`'s
    sensors) covers more than `max_series` series (0: no bound): one that
    large is for the scheduled reports, made beside any request."""
    if not max_series:
        return
    series = AssetStore(session).series_under(asset) if asset else None
    count = ReportQueries(session, series).series_count()
    if count > max_series:
        raise InvalidInput(
            f"this report covers {count:,} series, more than the "
            f"{max_series:,} a request may ask for "
            "(ATALAIA_REPORT_ON_DEMAND_MAX_SERIES): narrow it with asset=, or "
            "have it made by a scheduled report (ATALAIA_REPORT_SUBSCRIPTIONS, "
            "its files under GET /reports/files)",
            rule="report_size",
        )


def fleet_report(
    session: Session, period: Period, *, asset: str | None = None
) -> Report:
    """The fleet's report (of the sensors at or under `asset`: a site's, a
    line's…). NotFound (`asset_exists`) for an unknown asset."""
    series = AssetStore(session).series_under(asset) if asset else None
    findings = _findings(
        session, period, IncidentFilter(asset=asset), ReportQueries(session, series)
    )
    scope = asset or "fleet"
    title = f"Fleet report: {asset}" if asset else "Fleet report"
    return _report(findings, period, kind="fleet", title=title, scope=scope)


def sensor_report(
    session: Session,
    period: Period,
    sensor_id: str,
    *,
    artifacts: ArtifactStore | None = None,
) -> Report:
    """A sensor's report: its axes' charts with their model's band, its
    incidents, versions and promotions. SensorNotFound when no series is its."""
    series = sensor_series(session, sensor_id)
    findings = _findings(
        session,
        period,
        IncidentFilter(sensor_id=sensor_id),
        ReportQueries(session, series),
    )
    report = _report(
        findings, period, kind="sensor", title=f"Sensor report: {sensor_id}",
        scope=sensor_id,
    )  # fmt: skip
    versions = _versions_table(ModelStore(session), series)
    axes = [charts.axis_chart(session, s, period, artifacts=artifacts) for s in series]
    return replace(
        report,
        tables={**report.tables, versions.name: versions},
        charts=report.charts + axes,
    )


def sensor_series(session: Session, sensor_id: str) -> list[str]:
    """The sensor's series: its axes, or the one series named by its id."""
    store = ReadingStore(session)
    series = sorted(store.axes_of(sensor_id).values())
    if not series and store.get_series(sensor_id) is not None:
        series = [sensor_id]
    if not series:
        raise SensorNotFound(f"no series of sensor {sensor_id!r}")
    return series


def _findings(
    session: Session, period: Period, where: IncidentFilter, queries: ReportQueries
) -> Findings:
    where = replace(where, start=period.start, end=period.end)
    store = IncidentStore(session)
    incidents, more = store.page(where, None, MAX_INCIDENTS)
    start, end = period.start_at, period.end_at
    return Findings(
        incidents=incidents,
        incidents_capped=more is not None,
        incident_counts=store.counts(where),
        top_series=queries.top_rates(start, end, TOP),
        hours=queries.hourly(start, end),
        moves=queries.moves(start, end, MAX_MOVES),
        production=queries.production_by_algorithm(),
        drift=queries.drift(period.start, period.end, MAX_DRIFT),
        healing=queries.healing(start, end),
    )


def _report(
    findings: Findings, period: Period, *, kind: str, title: str, scope: str
) -> Report:
    days = day_by_day(period, findings)
    return Report(
        kind=kind,
        title=title,
        scope=scope,
        period=period,
        created_at=datetime.now(UTC),
        summary=summary_of(findings, days),
        tables=tables_of(findings, days, top=TOP),
        days=days,
        charts=charts.daily_charts(period, days),
    )


def _versions_table(models: ModelStore, series: Sequence[str]) -> Table:
    rows: list[tuple[Cell, ...]] = [
        _version_row(v) for s in series for v in models.versions(s)
    ]
    columns = ("Series", "Version", "Stage", "Algorithm", "Created (UTC)")
    return Table("Model versions", "Model versions of its series", columns, rows)


def _version_row(version: ModelVersion) -> tuple[Cell, ...]:
    return (
        version.series_id, version.version, version.stage.value, version.algorithm,
        f"{version.created_at:%Y-%m-%d %H:%M}",
    )  # fmt: skip
