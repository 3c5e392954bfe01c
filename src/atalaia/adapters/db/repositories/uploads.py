"""Uploads (`core.uploads`): each file's ingest progress and lease, and its
figures per series."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories.operations import _moment, _updated
from atalaia.adapters.db.tables import UploadRow, UploadSeriesRow
from atalaia.core.uploads import Upload, UploadStatus
from atalaia.errors import NotFound

_UNFINISHED = (UploadStatus.QUEUED.value, UploadStatus.RUNNING.value)
_FIELDS = (
    "id", "file_name", "file_format", "bytes_total", "request", "detected", "actor",
    "progress", "chunks_done", "rows_read", "readings_valid", "readings_stored",
    "invalid", "invalid_by_reason", "invalid_shown", "error", "created_at",
    "started_at", "finished_at",
)  # fmt: skip


def _upload(row: UploadRow) -> Upload:
    return Upload(
        status=UploadStatus(row.status), **{f: getattr(row, f) for f in _FIELDS}
    )


class UploadStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, upload: Upload, *, spool_path: str) -> None:
        fields = {f: getattr(upload, f) for f in _FIELDS}
        self.session.add(
            UploadRow(status=upload.status.value, spool_path=spool_path, **fields)
        )
        self.session.flush()

    def get(self, upload_id: str) -> Upload:
        return _upload(self._row(upload_id))

    def spool_path(self, upload_id: str) -> str:
        return self._row(upload_id).spool_path

    def _row(self, upload_id: str) -> UploadRow:
        row = self.session.get(UploadRow, upload_id, populate_existing=True)
        if row is None:
            raise NotFound(f"upload {upload_id!r} does not exist", rule="upload_exists")
        return row

    def page(self, *, before: str | None, limit: int) -> list[Upload]:
        """Newest first (ids sort by creation)."""
        stmt = select(UploadRow).order_by(UploadRow.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(UploadRow.id < before)
        return [_upload(row) for row in self.session.scalars(stmt)]

    def claimable(self, *, now: datetime) -> list[tuple[str, str]]:
        """Unfinished uploads no runner holds (or whose runner's lease ran out),
        oldest first, with their spool files."""
        stmt = (
            select(UploadRow.id, UploadRow.spool_path)
            .where(
                UploadRow.status.in_(_UNFINISHED),
                UploadRow.runner.is_(None) | (UploadRow.lease_until < now),
            )
            .order_by(UploadRow.id)
        )
        return [(upload_id, path) for upload_id, path in self.session.execute(stmt)]

    def claim(
        self, upload_id: str, *, runner: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Take an upload for `runner` until `lease_until`, unless another
        runner holds it."""
        stmt = (
            update(UploadRow)
            .where(
                UploadRow.id == upload_id,
                UploadRow.status.in_(_UNFINISHED),
                UploadRow.runner.is_(None) | (UploadRow.lease_until < now),
            )
            .values(
                runner=runner,
                lease_until=lease_until,
                status=UploadStatus.RUNNING.value,
                started_at=func.coalesce(UploadRow.started_at, _moment(now)),
            )
        )
        return _updated(self.session, stmt) == 1

    def hold(
        self, upload_id: str, *, runner: str, lease_until: datetime
    ) -> Upload | None:
        """Extend `runner`'s lease (the row held until the transaction ends);
        None when the runner no longer holds the upload."""
        stmt = (
            update(UploadRow)
            .where(
                UploadRow.id == upload_id,
                UploadRow.runner == runner,
                UploadRow.status == UploadStatus.RUNNING.value,
            )
            .values(lease_until=lease_until)
        )
        return self.get(upload_id) if _updated(self.session, stmt) == 1 else None

    def release(self, upload_id: str, *, runner: str) -> None:
        """Let another runner take the upload over at once."""
        _updated(
            self.session,
            update(UploadRow)
            .where(UploadRow.id == upload_id, UploadRow.runner == runner)
            .values(runner=None, lease_until=None),
        )

    def record_chunk(self, upload_id: str, **progress: Any) -> None:
        """The upload's progress after a chunk (its columns by name)."""
        _updated(
            self.session,
            update(UploadRow).where(UploadRow.id == upload_id).values(progress),
        )

    def count_series(
        self, upload_id: str, figures: Mapping[str, tuple[int, int, float, float]]
    ) -> None:
        """Add a chunk's (readings, stored, first, last) per series."""
        if not figures:
            return
        postgres = self.session.get_bind().dialect.name == "postgresql"
        upsert = pg_insert if postgres else sqlite_insert
        lowest, highest = (
            (func.least, func.greatest) if postgres else (func.min, func.max)
        )
        rows = [
            {"upload_id": upload_id, "series_id": sid, "readings": n, "stored": s,
             "first_ts": first, "last_ts": last}
            for sid, (n, s, first, last) in figures.items()
        ]  # fmt: skip
        stmt = upsert(UploadSeriesRow)
        t = UploadSeriesRow
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.upload_id, t.series_id],
                set_={
                    "readings": t.readings + stmt.excluded.readings,
                    "stored": t.stored + stmt.excluded.stored,
                    "first_ts": lowest(t.first_ts, stmt.excluded.first_ts),
                    "last_ts": highest(t.last_ts, stmt.excluded.last_ts),
                },
            ),
            rows,
        )

    def series_figures(
        self, upload_id: str, *, limit: int
    ) -> list[tuple[str, int, int, float, float]]:
        """(series, readings, stored, first, last) of the upload's series, by id."""
        t = UploadSeriesRow
        stmt = (
            select(t.series_id, t.readings, t.stored, t.first_ts, t.last_ts)
            .where(t.upload_id == upload_id)
            .order_by(t.series_id)
            .limit(limit)
        )
        return [tuple(row) for row in self.session.execute(stmt)]  # type: ignore[misc]

    def finish(
        self, upload_id: str, *, status: UploadStatus, at: datetime, error: str | None
    ) -> Upload:
        """End the upload in `status`; `error`: why it failed."""
        values: dict[str, Any] = {
            "status": status.value, "finished_at": at, "runner": None,
            "lease_until": None, "error": error,
        }  # fmt: skip
        if status is UploadStatus.DONE:
            values["progress"] = 1.0
        _updated(
            self.session,
            update(UploadRow).where(UploadRow.id == upload_id).values(values),
        )
        return self.get(upload_id)
