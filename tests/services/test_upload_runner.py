"""Uploads ingested by the runner a chunk at a time, on SQLite and PostgreSQL:
a file of many chunks, a runner that dies midway, a file that stops reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.tables import ReadingRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.adapters.uploads import files
from atalaia.core.series import TimeRange
from atalaia.core.uploads import LayoutRequest, Upload, UploadStatus
from atalaia.services.upload_runner import UploadRunner
from atalaia.services.uploads import (
    UploadRequest,
    get_upload,
    new_upload_id,
    submit_upload,
)

Sessions = sessionmaker[Session]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
START = 1_733_011_200
SERIES = 20
ROWS = 60_000  # ~2 MB of CSV: ~30 chunks of 64 KB


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 64 * 1024)


def write_csv(path: Path, rows: int = ROWS) -> Path:
    index = np.arange(rows)
    lines = [
        f"s{i % SERIES},{START + i // SERIES},{v:.4f}"
        for i, v in zip(index.tolist(), np.sin(index / 50).tolist(), strict=True)
    ]
    path.write_text("series_id,timestamp,value\n" + "\n".join(lines) + "\n")
    return path


def submitted(sessions: Sessions, source: Path, home: Path) -> str:
    upload_id = new_upload_id()
    spool = home / f"{upload_id}.part"
    spool.write_bytes(source.read_bytes())
    with sessions() as session:
        submit_upload(
            session=session, upload_id=upload_id, spool=spool, file_name=source.name,
            artifacts=store_of(home), request=UploadRequest(LayoutRequest()),
            actor="tester",
        )  # fmt: skip
        session.commit()
    return upload_id


def upload_of(sessions: Sessions, upload_id: str) -> Upload:
    with sessions() as session:
        return get_upload(session=session, upload_id=upload_id)


def stored(sessions: Sessions) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ReadingRow)) or 0)


def store_of(home: Path) -> LocalArtifactStore:
    return LocalArtifactStore(home / "artifacts")


def runner(sessions: Sessions, clock: Clock, home: Path) -> UploadRunner:
    """A runner whose host spools uploads in `home`/host."""
    return UploadRunner(
        sessions, artifacts=store_of(home), spool_dir=home / "host",
        time_range=TimeRange(), clock=clock, lease_s=60,
    )  # fmt: skip


@pytest.mark.usefixtures("small_chunks")
class TestChunks:
    def test_a_file_is_ingested_in_many_chunks_with_its_progress(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        upload_id = submitted(sessions, write_csv(tmp_path / "r.csv"), tmp_path)
        clock = Clock()
        worker = runner(sessions, clock, tmp_path)
        progress = []

        while worker.step():
            progress.append(upload_of(sessions, upload_id).progress)

        ended = upload_of(sessions, upload_id)
        assert ended.status is UploadStatus.DONE
        assert ended.chunks_done > 20
        assert ended.rows_read == ROWS
        assert ended.readings_stored == ROWS == stored(sessions)
        assert progress == sorted(progress)
        assert not list(tmp_path.glob(f"{upload_id}.*"))  # the spool is deleted

    def test_a_runner_that_dies_leaves_the_rest_to_another(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        upload_id = submitted(sessions, write_csv(tmp_path / "r.csv"), tmp_path)
        clock = Clock()
        first = runner(sessions, clock, tmp_path)
        for _ in range(4):  # claims, then three chunks
            first.step()
        midway = upload_of(sessions, upload_id)

        clock.at += timedelta(seconds=61)  # the first runner's lease ran out
        second = runner(sessions, clock, tmp_path)
        while second.step():
            pass

        ended = upload_of(sessions, upload_id)
        assert 0 < midway.chunks_done < ended.chunks_done
        assert ended.status is UploadStatus.DONE
        assert ended.readings_stored == ROWS == stored(sessions)
        assert ended.readings_valid == ROWS

    def test_a_runner_on_another_host_reads_the_file_from_the_artifact_store(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        upload_id = submitted(sessions, write_csv(tmp_path / "r.csv"), tmp_path)
        for spooled in tmp_path.glob(f"{upload_id}.*"):
            spooled.unlink()  # spooled on a host this runner does not see
        worker = runner(sessions, Clock(), tmp_path)

        while worker.step():
            pass

        ended = upload_of(sessions, upload_id)
        assert ended.status is UploadStatus.DONE
        assert ended.readings_stored == ROWS == stored(sessions)
        assert not list((tmp_path / "host").iterdir())  # its copy deleted
        assert store_of(tmp_path).exists(f"uploads/{upload_id}.csv")  # kept

    def test_an_upload_whose_file_no_host_can_read_waits(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        upload_id = submitted(sessions, write_csv(tmp_path / "r.csv"), tmp_path)
        for spooled in tmp_path.glob(f"{upload_id}.*"):
            spooled.unlink()
        store_of(tmp_path).delete(f"uploads/{upload_id}.csv")

        assert runner(sessions, Clock(), tmp_path).claim() is None
        assert upload_of(sessions, upload_id).status is UploadStatus.QUEUED

    def test_a_runner_leaves_alone_an_upload_another_holds(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        upload_id = submitted(sessions, write_csv(tmp_path / "r.csv"), tmp_path)
        clock = Clock()
        runner(sessions, clock, tmp_path).step()

        assert runner(sessions, clock, tmp_path).claim() is None
        assert upload_of(sessions, upload_id).status is UploadStatus.RUNNING


@pytest.mark.usefixtures("small_chunks")
class TestUnreadable:
    def test_a_file_that_stops_reading_ends_the_upload_failed(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        source = write_csv(tmp_path / "r.csv", rows=10_000)
        with source.open("ab") as tail:
            tail.write(b"s1,1733011200,\xff\xfe\n")  # not UTF-8
        upload_id = submitted(sessions, source, tmp_path)
        worker = runner(sessions, Clock(), tmp_path)

        while worker.step():
            pass

        ended = upload_of(sessions, upload_id)
        assert ended.status is UploadStatus.FAILED
        assert ended.error is not None
        assert "stops reading" in ended.error
        assert ended.readings_stored == stored(sessions) > 0  # the rest is kept
