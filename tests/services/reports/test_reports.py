"""A report's period, its templates replaced by a site's, its cells."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.errors import DependencyUnavailable, InvalidInput
from atalaia.services import reports
from atalaia.services.reports import build
from atalaia.services.reports.pdf import render_html, show_cell
from fixtures.reports import CRITICAL_SENSOR, fill_week, pdf_text

DAY = 86_400.0


class TestPeriod:
    def test_defaults_to_the_week_before_now(self) -> None:
        assert reports.Period.of(None, None, now=1e9) == reports.Period(
            1e9 - 7 * DAY, 1e9
        )

    def test_a_start_alone_runs_to_now(self) -> None:
        assert reports.Period.of(1e9 - DAY, None, now=1e9).end == 1e9

    @pytest.mark.parametrize(
        ("start", "end"), [(2e9, 1e9), (1e9, 1e9), (1e9, 1e9 + 367 * DAY)]
    )
    def test_refuses_an_empty_a_backwards_or_a_too_long_period(
        self, start: float, end: float
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            reports.Period.of(start, end, now=end)

        assert refused.value.rule == "report_period"

    def test_its_days_are_the_utc_days_it_touches(self) -> None:
        period = reports.Period(1_733_011_200.0 - 1, 1_733_011_200.0 + DAY)

        days = [f"{d:%Y-%m-%d}" for d in period.days()]

        assert days == ["2024-11-30", "2024-12-01"]


class TestTemplates:
    @pytest.fixture
    def report(self, sessions: sessionmaker[Session]) -> reports.Report:
        now = time.time()
        fill_week(sessions, now)
        period = reports.Period.of(None, now + 3600, now=now)
        with sessions() as session:
            return reports.fleet_report(session, period)

    def test_a_site_file_replaces_the_shipped_one_of_its_name(
        self, report: reports.Report, tmp_path: Path
    ) -> None:
        site = tmp_path / "templates"
        site.mkdir()
        (site / "fleet.html").write_text(
            '{% extends "base.html" %}{% block tables %}'
            "<h2>Plant 1 weekly review</h2>"
            '{{ m.table(report.tables["Top sensors"]) }}{% endblock %}'
        )

        text = pdf_text(reports.render_pdf(report, templates_dir=site), tmp_path)
        shipped = render_html(report)

        assert "Plant 1 weekly review" in text
        assert CRITICAL_SENSOR in text
        assert "Incidents and their explanations" not in text
        assert "Incidents and their explanations" in shipped  # the others stay
        assert "Plant 1 weekly review" not in shipped

    def test_without_its_renderer_a_pdf_is_a_dependency_unavailable(
        self, report: reports.Report, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if Pango failed

        with pytest.raises(DependencyUnavailable) as missing:
            reports.render_pdf(report)

        assert "Pango" in missing.value.detail
        assert reports.render_xlsx(report)[:2] == b"PK"  # Excel needs none

    def test_the_shipped_ones_serve_when_the_site_has_none(
        self, report: reports.Report, tmp_path: Path
    ) -> None:
        html = render_html(report, templates_dir=tmp_path)

        assert "Series of highest anomaly rate" in html


@pytest.mark.parametrize(
    ("value", "column", "shown"),
    [
        (0.0025, "Anomaly rate", "0.25 %"),
        (12_000, "Predictions", "12,000"),
        (0.123456, "Value", "0.1235"),
        (None, "Upper", ""),
        ("zscore", "Algorithm", "zscore"),
    ],
)
def test_a_cell_is_shown_for_reading(
    value: str | int | float | None, column: str, shown: str
) -> None:
    assert show_cell(value, column) == shown


def test_a_capped_list_of_incidents_says_so_and_the_summary_counts_them_all(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    fill_week(sessions, now)
    monkeypatch.setattr(build, "MAX_INCIDENTS", 2)

    with sessions() as session:
        report = reports.fleet_report(session, reports.Period.of(None, None, now=now))

    summary = dict(report.summary)
    assert summary["Incidents"] == 3
    assert summary["Critical incidents"] == 1
    assert summary["Data quality incidents"] == 1
    assert len(report.tables["Incidents"].rows) == 2
    assert report.tables["Incidents"].note == "Of the newest 2 incidents of the period."
    assert report.tables["Top sensors"].note == report.tables["Incidents"].note
