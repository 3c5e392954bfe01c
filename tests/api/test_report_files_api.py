"""The scheduled reports' stored files over HTTP: listed newest first with
their deliveries, downloaded with their media type and name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.schedule import last_week
from atalaia.embedded import create_embedded_app
from atalaia.services import reports
from atalaia.settings import ReportSubscription, Settings
from fixtures.api import Headers, SettingsFactory
from fixtures.reports import fill_week

FILES = "/api/v1/reports/files"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def settings(database_url: str, make_settings: SettingsFactory) -> Settings:
    # No alerter: the deliveries stay as the scheduled run queued them.
    return make_settings(database_url, scheduler_in_process=False)


@pytest.fixture
def stored(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    """Last week's report of the fleet, stored as PDF and Excel for channel
    `mail`; their ids, newest first."""
    now = datetime.now(UTC)
    _, end = last_week(now)
    fill_week(sessions, (end - timedelta(hours=12)).timestamp())
    artifacts = LocalArtifactStore(settings.artifacts_path)
    weekly = ReportSubscription(
        name="weekly", formats=["pdf", "xlsx"], channels=["mail"]
    )
    run = reports.send_scheduled_reports(
        sessions=sessions, subscriptions=[weekly],
        delivery=reports.Delivery(artifacts, None, "http://testserver"), now=now,
    )  # fmt: skip
    return sorted(run.stored["weekly"], reverse=True)


@pytest.fixture
def client(settings: Settings, stored: list[str]) -> Iterator[TestClient]:
    assert stored
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


class TestListReportFiles:
    def test_lists_the_files_newest_first_a_page_at_a_time(
        self, client: TestClient, viewer: Headers, stored: list[str]
    ) -> None:
        first = client.get(FILES, params={"limit": 1}, headers=viewer)
        cursor = first.json()["next_cursor"]
        second = client.get(
            FILES, params={"limit": 1, "cursor": cursor}, headers=viewer
        )

        assert first.status_code == 200, first.text
        pages = [first.json()["files"], second.json()["files"]]
        assert [f["id"] for page in pages for f in page] == stored
        assert cursor == stored[0]
        (newest,) = pages[0]
        assert (newest["subscription"], newest["kind"], newest["asset"]) == (
            "weekly", "fleet", None,
        )  # fmt: skip
        assert newest["format"] in ("pdf", "xlsx")
        assert newest["deliveries"] == [
            {"channel": "mail", "state": "pending", "attempts": 0,
             "last_error": None, "sent_at": None},
        ]  # fmt: skip

    def test_needs_a_token(self, client: TestClient) -> None:
        assert client.get(FILES).status_code == 401


class TestDownloadReportFile:
    def test_answers_the_file_with_its_media_type_and_name(
        self, client: TestClient, viewer: Headers
    ) -> None:
        listed = client.get(FILES, headers=viewer).json()["files"]

        for entry in listed:
            response = client.get(f"{FILES}/{entry['id']}", headers=viewer)

            assert response.status_code == 200, response.text
            media = "application/pdf" if entry["format"] == "pdf" else XLSX
            assert response.headers["content-type"] == media
            assert response.headers["content-disposition"] == (
                f'attachment; filename="{entry["file_name"]}"'
            )
            assert len(response.content) == entry["size"]
        pdf = next(e for e in listed if e["format"] == "pdf")
        body = client.get(f"{FILES}/{pdf['id']}", headers=viewer).content
        assert body.startswith(b"%PDF")

    def test_an_unknown_file_is_404_naming_the_rule(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get(f"{FILES}/no-such-file", headers=viewer)

        assert response.status_code == 404
        assert response.json()["rule"] == "report_file_exists"

    def test_a_file_whose_bytes_are_gone_is_404_naming_the_rule(
        self, client: TestClient, viewer: Headers, settings: Settings
    ) -> None:
        (entry, *_) = client.get(FILES, headers=viewer).json()["files"]
        for stored in (settings.artifacts_path / "reports" / "weekly").iterdir():
            stored.unlink()

        response = client.get(f"{FILES}/{entry['id']}", headers=viewer)

        assert response.status_code == 404
        assert response.json()["rule"] == "report_file_stored"
