"""`atalaia report …` against a training service process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Role
from atalaia.services import reports
from atalaia.settings import ReportSubscription
from fixtures.reports import CRITICAL_SENSOR, fill_week, pdf_text, workbook
from fixtures.training_process import ATALAIA, training_process


@pytest.fixture
def training(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A training service process on a database holding a week to report on
    and last week's scheduled report (PDF); the environment of a viewer
    calling it."""

    def fill(sessions: sessionmaker[Session]) -> None:
        now = datetime.now(UTC)
        fill_week(sessions, now.timestamp())
        reports.send_scheduled_reports(
            sessions=sessions,
            subscriptions=[ReportSubscription(name="weekly", channels=["ops"])],
            delivery=reports.Delivery(
                LocalArtifactStore(tmp_path / "home" / "artifacts"), None, "http://x"
            ),
            now=now,
        )

    with training_process(tmp_path, Role.VIEWER, fill) as env:
        yield env


def report(
    env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATALAIA, "report", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_saves_the_fleet_report_in_either_format(
    training: dict[str, str], tmp_path: Path
) -> None:
    pdf = report(training, tmp_path, "fleet")
    xlsx = report(training, tmp_path, "fleet", "--format", "xlsx", "-o", "week.xlsx")

    assert pdf.returncode == 0, pdf.stderr
    (saved,) = tmp_path.glob("atalaia-fleet-fleet-*.pdf")  # the service's name
    assert pdf.stdout.startswith(f"{saved.name} (")
    assert CRITICAL_SENSOR in pdf_text(saved.read_bytes(), tmp_path)
    assert xlsx.returncode == 0, xlsx.stderr
    book = workbook((tmp_path / "week.xlsx").read_bytes())
    assert book["Incidents"].max_row == 1 + 3


def test_an_unknown_sensor_fails_in_one_line(
    training: dict[str, str], tmp_path: Path
) -> None:
    done = report(training, tmp_path, "sensor", "sensor_999999")

    assert done.returncode == 1
    assert "HTTP 404 sensor_exists" in done.stderr
    assert not list(tmp_path.glob("*.pdf"))


def test_lists_the_stored_files_and_saves_one(
    training: dict[str, str], tmp_path: Path
) -> None:
    listed = report(training, tmp_path, "files")
    (line,) = listed.stdout.splitlines()
    file_id, name, _size, sent = line.split("\t")
    saved = report(training, tmp_path, "file", file_id)
    unknown = report(training, tmp_path, "file", "no-such-file")

    assert listed.returncode == 0, listed.stderr
    assert name.startswith("atalaia-fleet-fleet-")
    assert sent == "ops: pending"
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / name).read_bytes().startswith(b"%PDF-")
    assert unknown.returncode == 1
    assert "HTTP 404 report_file_exists" in unknown.stderr
