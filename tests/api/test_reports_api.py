"""Reports over HTTP: a fleet's, a site's and a sensor's, as PDF and Excel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, refused
from fixtures.assets import CSV, put_file
from fixtures.reports import (
    CRITICAL_SENSOR,
    DRIFTED,
    SENSOR,
    SERIES,
    STUCK_SENSOR,
    chart_kinds,
    fill_sensor,
    fill_week,
    last_week,
    pdf_pages,
    pdf_text,
    pictures,
    workbook,
)

FLEET = "/api/v1/reports/fleet"
SENSORS = "/api/v1/reports/sensors"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def now() -> float:
    return time.time()


@pytest.fixture
def settings(database_url: str, make_settings: SettingsFactory) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def client(settings: Settings, now: float) -> Iterator[TestClient]:
    engine = make_engine(settings.database_url)
    try:
        fill_week(make_session_factory(engine), now)
    finally:
        engine.dispose()
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


def fetch(client: TestClient, headers: Headers, url: str, **params: str) -> bytes:
    response = client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: bytes = response.content
    return body


class TestFleetReport:
    def test_the_pdf_names_its_incidents_figures_and_sensors(
        self, client: TestClient, viewer: Headers, now: float, tmp_path: Path
    ) -> None:
        start, end = last_week(now)
        response = client.get(
            FLEET, params={"start": start, "end": end}, headers=viewer
        )

        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="atalaia-fleet-fleet-')
        assert disposition.endswith('.pdf"')
        text = pdf_text(response.content, tmp_path)
        for heading in (
            "Fleet report", "Summary", "Incidents opened per day",
            "Anomaly rate per day", "Top sensors by incidents",
            "Incidents and their explanations", "Series of highest anomaly rate",
            "Production versions by algorithm", "Drift found",
            "Self-healing decisions",
        ):  # fmt: skip
            assert heading in text
        for shown in (CRITICAL_SENSOR, STUCK_SENSOR, DRIFTED, "critical", "stuck"):
            assert shown in text
        # 50 anomalies in 24,000 predictions
        assert "0.21 %" in text
        assert pdf_pages(response.content, tmp_path) >= 2

    def test_the_workbook_has_a_sheet_per_table_and_native_charts(
        self, client: TestClient, viewer: Headers
    ) -> None:
        body = fetch(client, viewer, FLEET, format="xlsx")

        book = workbook(body)
        assert book.sheetnames == [
            "Summary", "Daily", "Incidents", "Top sensors", "Top series",
            "Versions", "Promotions", "Drift", "Healing",
        ]  # fmt: skip
        summary = {
            row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)
        }
        assert summary["Incidents"] == 3
        assert summary["Critical incidents"] == 1
        assert summary["Data quality incidents"] == 1
        assert summary["Series in production"] == 12
        assert summary["Promotions"] == 12  # each series' v1 (its ledger: now)
        top = list(book["Top sensors"].iter_rows(values_only=True))
        assert top[0] == (
            "Sensor",
            "Incidents",
            "Critical",
            "Anomalies",
            "Highest peak score",
        )
        assert top[1][:3] == (CRITICAL_SENSOR, 1, 1)
        series = list(book["Top series"].iter_rows(values_only=True))
        assert series[1] == (f"{CRITICAL_SENSOR}_radial", 2_000, 50, 0.025)
        assert book["Versions"]["A2"].value == "zscore"
        assert book["Drift"]["C2"].value == DRIFTED
        healing = list(book["Healing"].iter_rows(min_row=2, values_only=True))
        assert healing == [("drift_retrain", "retrain", "done", 1)]
        assert summary["Self-healing actions"] == 1
        assert book["Promotions"].max_row == 1 + 12
        assert chart_kinds(body) == ["barChart", "lineChart"]

    def test_a_site_report_covers_the_sensors_under_it(
        self, client: TestClient, viewer: Headers, engineer: Headers, now: float
    ) -> None:
        assert put_file(client, engineer, CSV).status_code == 200
        n = len(SERIES)  # their series are known once they send readings
        body = {"series_id": SERIES, "timestamp": [now - 60] * n, "value": [0.3] * n}
        sent = client.post("/api/v1/series/points", json=body, headers=engineer)
        assert sent.status_code == 200, sent.text

        report = fetch(client, viewer, FLEET, asset="plant1", format="xlsx")

        book = workbook(report)
        incidents = [
            r[1] for r in book["Incidents"].iter_rows(min_row=2, values_only=True)
        ]
        assert incidents == ["sensor_000002", CRITICAL_SENSOR]  # not 3: elsewhere
        summary = {
            row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)
        }
        assert summary["Series in production"] == 6  # sensors 1 and 2
        assert summary["Series drifted"] == 1

    def test_a_site_template_replaces_the_shipped_one(
        self,
        client: TestClient,
        viewer: Headers,
        database_url: str,
        make_settings: SettingsFactory,
        tmp_path: Path,
    ) -> None:
        del client  # the database migrated and its week filled first
        site = tmp_path / "templates"
        site.mkdir()
        (site / "report.css").write_text("h1 { color: #005500; }")
        (site / "base.html").write_text(
            "<html><body><h1>Plant 1: {{ report.title }}</h1></body></html>"
        )
        settings = make_settings(database_url, report_templates_dir=site)

        with TestClient(create_embedded_app(settings)) as own:
            body = fetch(own, viewer, FLEET)

        assert pdf_text(body, tmp_path).split() == ["Plant", "1:", "Fleet", "report"]

    def test_a_bad_period_is_refused_naming_its_rule(
        self, client: TestClient, viewer: Headers
    ) -> None:
        backwards = client.get(
            FLEET, params={"start": 1.8e9, "end": 1.7e9}, headers=viewer
        )
        too_long = client.get(
            FLEET, params={"start": 1.6e9, "end": 1.7e9}, headers=viewer
        )
        unknown = client.get(FLEET, params={"format": "docx"}, headers=viewer)

        refused(backwards, "report_period")
        refused(too_long, "report_period")
        assert unknown.status_code == 422, unknown.text

    def test_a_fleet_larger_than_a_request_may_ask_for_is_refused(
        self, client: TestClient, viewer: Headers, engineer: Headers, now: float,
        database_url: str, make_settings: SettingsFactory,
    ) -> None:  # fmt: skip
        assert put_file(client, engineer, CSV).status_code == 200
        n = len(SERIES)
        body = {"series_id": SERIES, "timestamp": [now - 60] * n, "value": [0.3] * n}
        sent = client.post("/api/v1/series/points", json=body, headers=engineer)
        assert sent.status_code == 200, sent.text
        settings = make_settings(database_url, report_on_demand_max_series=n - 1)

        with TestClient(create_embedded_app(settings)) as own:
            fleet = own.get(FLEET, headers=viewer)
            site = own.get(FLEET, params={"asset": "plant1"}, headers=viewer)

        detail = refused(fleet, "report_size")
        assert f"covers {n} series, more than the {n - 1}" in detail
        assert "ATALAIA_REPORT_SUBSCRIPTIONS" in detail
        assert site.status_code == 200, site.text  # 6 series

    def test_an_unknown_asset_is_not_found(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get(FLEET, params={"asset": "nowhere"}, headers=viewer)

        assert response.status_code == 404, response.text
        assert response.json()["rule"] == "asset_exists"


class TestSensorReport:
    @pytest.fixture
    def axes(self, client: TestClient, settings: Settings, now: float) -> list[str]:
        del client  # the database migrated and its week filled first
        engine = make_engine(settings.database_url)
        try:
            artifacts = LocalArtifactStore(settings.artifacts_path)
            return fill_sensor(make_session_factory(engine), artifacts, now)
        finally:
            engine.dispose()

    def test_the_pdf_draws_each_axis_and_lists_its_versions(
        self, client: TestClient, viewer: Headers, axes: list[str], tmp_path: Path
    ) -> None:
        response = client.get(f"{SENSORS}/{SENSOR}", headers=viewer)

        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"].startswith(
            f'attachment; filename="atalaia-sensor-{SENSOR}-'
        )
        text = pdf_text(response.content, tmp_path)
        for heading in (
            f"Sensor report: {SENSOR}", "Its axes, with the model's band",
            "Model versions of its series", "Incidents and their explanations",
        ):  # fmt: skip
            assert heading in text
        for series_id in axes:
            assert series_id in text
        assert "staging" in text
        assert "zscore" in text
        assert pdf_pages(response.content, tmp_path) >= 2

    def test_the_workbook_lists_its_versions_and_pictures_its_axes(
        self, client: TestClient, viewer: Headers, axes: list[str]
    ) -> None:
        body = fetch(client, viewer, f"{SENSORS}/{SENSOR}", format="xlsx")

        book = workbook(body)
        assert "Model versions" in book.sheetnames
        assert book.sheetnames[-1] == "Charts"
        versions = list(book["Model versions"].iter_rows(min_row=2, values_only=True))
        assert [(r[0], r[1], r[3]) for r in versions] == [
            (axes[0], 1, "zscore"), (axes[1], 1, "zscore")
        ]  # fmt: skip
        assert len(pictures(body)) == len(axes)
        incidents = list(book["Incidents"].iter_rows(min_row=2, values_only=True))
        assert [r[1] for r in incidents] == [SENSOR]

    def test_an_unknown_sensor_is_not_found(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get(f"{SENSORS}/sensor_999999", headers=viewer)

        assert response.status_code == 404, response.text
        assert response.json()["rule"] == "sensor_exists"
