"""What a report says, whatever its format: a period's summary figures, its
tables (one sheet each in a workbook) and the day-by-day series its charts draw.

A fleet report covers every sensor, or those at or under a node of the asset
hierarchy (a site's report); a sensor report one sensor's axes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from atalaia.adapters.db.repositories.models import LedgerEntry
from atalaia.adapters.db.repositories.reports import (
    DriftEvent,
    HealingCount,
    HourRate,
    SeriesRate,
)
from atalaia.core.incidents import Incident
from atalaia.errors import InvalidInput
from atalaia.services.registry_overview import ChangeKind, kind_of

DEFAULT_PERIOD_S = 7 * 86_400.0
MAX_PERIOD_S = 366 * 86_400.0
Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in epoch seconds."""

    start: float
    end: float

    @classmethod
    def of(cls, start: float | None, end: float | None, *, now: float) -> Period:
        """The asked period; a missing end is `now`, a missing start 7 days
        before the end. InvalidInput (`report_period`) unless end > start and
        the period spans at most 366 days."""
        end = now if end is None else end
        start = end - DEFAULT_PERIOD_S if start is None else start
        if not end > start:
            raise InvalidInput(
                "a report's end must be after its start", rule="report_period"
            )
        if end - start > MAX_PERIOD_S:
            raise InvalidInput("a report spans at most 366 days", rule="report_period")
        return cls(start, end)

    @property
    def start_at(self) -> datetime:
        return datetime.fromtimestamp(self.start, UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.fromtimestamp(self.end, UTC)

    def days(self) -> list[datetime]:
        """The UTC days the period touches."""
        day = self.start_at.replace(hour=0, minute=0, second=0, microsecond=0)
        found = []
        while day < self.end_at:
            found.append(day)
            day += timedelta(days=1)
        return found


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the report: `name` its sheet's, `title` its heading's."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    note: str = ""  # what it leaves out, when it does


@dataclass(frozen=True, slots=True)
class Day:
    day: datetime
    incidents: int  # opened that day
    predictions: int
    anomalies: int

    @property
    def anomaly_rate(self) -> float:
        return self.anomalies / self.predictions if self.predictions else 0.0


@dataclass(frozen=True, slots=True)
class Chart:
    """A PNG of the report, with its caption."""

    caption: str
    png: bytes


@dataclass(frozen=True, slots=True)
class Report:
    kind: str  # "fleet" or "sensor"
    title: str
    scope: str  # what it covers: "the whole fleet", an asset's or a sensor's id
    period: Period
    created_at: datetime
    summary: list[tuple[str, Cell]]
    tables: dict[str, Table]
    days: list[Day]
    charts: list[Chart] = field(default_factory=list)

    @property
    def filename_stem(self) -> str:
        fmt = "%Y%m%d"
        span = f"{self.period.start_at:{fmt}}-{self.period.end_at:{fmt}}"
        return f"atalaia-{self.kind}-{self.scope.replace(' ', '_')}-{span}"


@dataclass(frozen=True, slots=True)
class Findings:
    """What the repositories found for a period and a scope."""

    incidents: list[Incident]  # the newest, up to a cap
    incidents_capped: bool
    incident_counts: dict[tuple[str, str], int]  # all, by (kind, severity)
    top_series: list[SeriesRate]
    hours: list[HourRate]
    moves: list[LedgerEntry]
    production: dict[str, int]
    drift: list[DriftEvent]
    healing: list[HealingCount]


def day_by_day(period: Period, findings: Findings) -> list[Day]:
    """Incidents opened, predictions and anomalies of each day of the period."""
    opened = Counter(_day(i.started_at) for i in findings.incidents)
    predictions: Counter[datetime] = Counter()
    anomalies: Counter[datetime] = Counter()
    for hour in findings.hours:
        day = _day(hour.bucket.timestamp())
        predictions[day] += hour.predictions
        anomalies[day] += hour.anomalies
    return [Day(d, opened[d], predictions[d], anomalies[d]) for d in period.days()]


def _day(seconds: float) -> datetime:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def summary_of(findings: Findings, days: Sequence[Day]) -> list[tuple[str, Cell]]:
    """The headline figures of the period."""
    severities: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for (kind, severity), n in findings.incident_counts.items():
        kinds[kind] += n
        severities[severity] += n
    moves = Counter(kind_of(e) for e in findings.moves)
    predictions = sum(d.predictions for d in days)
    anomalies = sum(d.anomalies for d in days)
    return [
        ("Incidents", sum(kinds.values())),
        ("Critical incidents", severities["critical"]),
        ("Major incidents", severities["major"]),
        ("Data quality incidents", kinds["data_quality"]),
        ("Sensors with incidents", len({i.sensor_id for i in findings.incidents})),
        ("Predictions", predictions),
        ("Anomalies", anomalies),
        ("Anomaly rate", _percent(anomalies / predictions if predictions else 0.0)),
        ("Series in production", sum(findings.production.values())),
        ("Promotions", moves[ChangeKind.PROMOTION]),
        ("Rollbacks", moves[ChangeKind.ROLLBACK]),
        ("Drift checks that found drift", len(findings.drift)),
        ("Series drifted", len({s for d in findings.drift for s in d.series})),
        (
            "Self-healing actions",
            sum(h.decisions for h in findings.healing if h.outcome == "done"),
        ),
    ]


def tables_of(findings: Findings, days: Sequence[Day], *, top: int) -> dict[str, Table]:
    """Every table of a report, by sheet name."""
    tables = [
        _daily(days),
        _incidents(findings),
        _top_sensors(findings, top),
        _top_series(findings.top_series),
        _versions(findings.production),
        _moves(findings.moves),
        _drift(findings.drift),
        _healing(findings.healing),
    ]
    return {t.name: t for t in tables}


def _daily(days: Sequence[Day]) -> Table:
    rows: list[tuple[Cell, ...]] = [
        (f"{d.day:%Y-%m-%d}", d.incidents, d.predictions, d.anomalies, d.anomaly_rate)
        for d in days
    ]
    columns = (
        "Day (UTC)",
        "Incidents opened",
        "Predictions",
        "Anomalies",
        "Anomaly rate",
    )
    return Table("Daily", "Day by day", columns, rows)


def _incidents(findings: Findings) -> Table:
    columns = (
        "Id", "Sensor", "Kind", "Severity", "State", "Started (UTC)", "Last (UTC)",
        "Anomalies", "Peak score", "Peak series", "Reason", "Direction", "Value",
        "Expected", "Lower", "Upper",
    )  # fmt: skip
    rows = [_incident_row(i) for i in findings.incidents]
    note = _capped_note(findings)
    return Table("Incidents", "Incidents and their explanations", columns, rows, note)


def _capped_note(findings: Findings) -> str:
    if not findings.incidents_capped:
        return ""
    return f"Of the newest {len(findings.incidents):,} incidents of the period."


def _incident_row(incident: Incident) -> tuple[Cell, ...]:
    peak = incident.peak
    return (
        incident.id, incident.sensor_id, incident.kind, incident.severity,
        incident.state, stamp(incident.started_at), stamp(incident.last_at),
        incident.count, round(incident.peak_score, 2), _text(peak.get("series_id")),
        _text(peak.get("reason")), _text(peak.get("direction")),
        _number(peak.get("value")), _number(peak.get("expected")),
        _number(peak.get("lower")), _number(peak.get("upper")),
    )  # fmt: skip


def _top_sensors(findings: Findings, top: int) -> Table:
    by_sensor: dict[str, list[Incident]] = {}
    for incident in findings.incidents:
        by_sensor.setdefault(incident.sensor_id, []).append(incident)
    ranked = sorted(
        by_sensor.items(),
        key=lambda item: (-len(item[1]), -max(i.peak_score for i in item[1]), item[0]),
    )[:top]
    rows: list[tuple[Cell, ...]] = [
        (
            sensor,
            len(found),
            sum(i.severity == "critical" for i in found),
            sum(i.count for i in found),
            round(max(i.peak_score for i in found), 2),
        )  # fmt: skip
        for sensor, found in ranked
    ]
    columns = ("Sensor", "Incidents", "Critical", "Anomalies", "Highest peak score")
    note = _capped_note(findings)
    return Table("Top sensors", "Top sensors by incidents", columns, rows, note)


def _top_series(rates: Sequence[SeriesRate]) -> Table:
    rows: list[tuple[Cell, ...]] = [
        (r.series_id, r.predictions, r.anomalies, r.rate) for r in rates
    ]
    columns = ("Series", "Predictions", "Anomalies", "Anomaly rate")
    return Table("Top series", "Series of highest anomaly rate", columns, rows)


def _versions(production: dict[str, int]) -> Table:
    rows: list[tuple[Cell, ...]] = list(production.items())
    columns = ("Algorithm", "Series in production")
    return Table("Versions", "Production versions by algorithm", columns, rows)


def _moves(entries: Sequence[LedgerEntry]) -> Table:
    rows: list[tuple[Cell, ...]] = [
        (
            f"{e.at:%Y-%m-%d %H:%M}",
            e.series_id,
            e.version,
            kind_of(e).value,
            e.from_stage.value if e.from_stage else None,
            e.to_stage.value,
            e.actor,
            e.reason,
        )  # fmt: skip
        for e in entries
    ]
    columns = ("At (UTC)", "Series", "Version", "Move", "From", "To", "By", "Why")
    return Table("Promotions", "Promotions, rollbacks and retirements", columns, rows)


def _drift(events: Sequence[DriftEvent]) -> Table:
    rows: list[tuple[Cell, ...]] = [
        (stamp(d.at), len(d.series), ", ".join(d.series[:10])) for d in events
    ]
    columns = ("At (UTC)", "Series drifted", "Series (the first 10)")
    return Table("Drift", "Drift found", columns, rows)


def _healing(counts: Sequence[HealingCount]) -> Table:
    rows: list[tuple[Cell, ...]] = [tuple(c) for c in counts]
    columns = ("Rule", "Action", "Outcome", "Decisions")
    return Table("Healing", "Self-healing decisions", columns, rows)


def stamp(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M}"


def _percent(share: float) -> str:
    return f"{100 * share:.2f} %"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float | None:
    return round(value, 4) if isinstance(value, int | float) else None
