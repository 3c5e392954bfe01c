"""Uploads of readings files: submit one (its layout checked from the file's
head), follow it, and ingest it a chunk at a time (`ingest_chunk`, called by
`services.upload_runner`).

A chunk is one transaction: its valid readings are stored (idempotent per
series and timestamp: a file sent twice stores nothing twice), its invalid
cells counted with their reasons, its figures per series added, the upload's
progress written.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ReadingStore, UploadStore
from atalaia.adapters.uploads import (
    Chunk,
    CsvDialect,
    FileFormat,
    TimeEncoding,
    cells_of,
    column_names,
    sniff_dialect,
    sniff_format,
)
from atalaia.core.access import SeriesScope
from atalaia.core.ports import ArtifactStore
from atalaia.core.series import TimeRange
from atalaia.core.uploads import (
    EPOCH_UNITS,
    Layout,
    LayoutRequest,
    Tally,
    Upload,
    UploadStatus,
    resolve_layout,
    series_counts,
    sort_out,
)
from atalaia.errors import InvalidInput
from atalaia.services.training import new_job_id

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What the uploader said of the file: its layout, the time zone of its
    naive times, the unit of its epoch numbers (None: told by magnitude)."""

    layout: LayoutRequest
    timezone: str = "UTC"
    timestamp_unit: str | None = None

    def checked(self) -> UploadRequest:
        """This request, or InvalidInput naming the setting it gets wrong."""
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(
                f"unknown time zone {self.timezone!r}; give an IANA name "
                "such as Europe/Lisbon",
                rule="timezone_known",
            ) from exc
        if self.timestamp_unit is not None and self.timestamp_unit not in EPOCH_UNITS:
            raise InvalidInput(
                f"timestamp_unit must be one of {', '.join(EPOCH_UNITS)}",
                rule="timestamp_unit",
            )
        return self


def new_upload_id() -> str:
    return new_job_id()  # sorts by submission


def submit_upload(
    *,
    session: Session,
    upload_id: str,
    spool: Path,
    artifacts: ArtifactStore,
    file_name: str,
    request: UploadRequest,
    actor: str,
    access: SeriesScope | None = None,
) -> Upload:
    """Queue the ingest of the file spooled at `spool` (caller commits; the
    spool is renamed after its format) and keep the file in the artifact
    store (`stored_key`), where a runner on any host finds it; a file that is
    not a table of readings, or whose columns do not fit the request, is
    refused (InvalidInput) and its spool deleted. `access`: the series the
    uploader may write (None: every one); the others' readings are refused as
    `series_access`."""
    try:
        file_format = sniff_format(spool)
        spool = spool.rename(spool.with_suffix(f".{file_format.value}"))
        dialect = sniff_dialect(spool) if file_format is FileFormat.CSV else None
        columns = column_names(spool, file_format, dialect or CsvDialect())
        layout = resolve_layout(columns, request.layout)
    except InvalidInput:
        spool.unlink(missing_ok=True)
        raise
    detected: dict[str, Any] = {"format": file_format.value, **layout.describe()}
    if dialect is not None:
        detected["csv"] = dialect.describe()
    if request.timestamp_unit is not None:
        given = TimeEncoding("epoch", request.timestamp_unit)
        detected["timestamps"] = given.describe()
    upload = Upload(
        id=upload_id, status=UploadStatus.QUEUED, file_name=file_name[:256],
        file_format=file_format.value, bytes_total=spool.stat().st_size,
        request=_stated(request, access), detected=detected, actor=actor,
        created_at=datetime.now(UTC),
    )  # fmt: skip
    artifacts.put_file(stored_key(spool), spool)
    UploadStore(session).add(upload, spool_path=str(spool))
    log.info(
        "uploads.submitted", upload_id=upload_id, file_format=file_format.value,
        form=layout.form.value, bytes=upload.bytes_total,
    )  # fmt: skip
    return upload


def _stated(request: UploadRequest, access: SeriesScope | None) -> dict[str, Any]:
    stated = asdict(request)
    if access is not None:
        stated["access"] = {
            "groups": sorted(access.groups),
            "patterns": list(access.patterns),
        }
    mapping = request.layout.mapping
    stated["layout"]["mapping"] = dict(mapping) if mapping is not None else None
    return stated


def get_upload(*, session: Session, upload_id: str) -> Upload:
    return UploadStore(session).get(upload_id)


def list_uploads(*, session: Session, before: str | None, limit: int) -> list[Upload]:
    return UploadStore(session).page(before=before, limit=limit)


def upload_series(
    *, session: Session, upload_id: str, limit: int
) -> list[tuple[str, int, int, float, float]]:
    """Per series of an upload: (series, valid readings, newly stored, first,
    last timestamp), by series id: the figures a data-quality report of the
    upload starts from."""
    store = UploadStore(session)
    store.get(upload_id)  # NotFound for an unknown upload
    return store.series_figures(upload_id, limit=limit)


def read_plan(upload: Upload) -> tuple[FileFormat, Layout, CsvDialect]:
    """The upload's file format, layout and CSV dialect, as stated at
    submission."""
    dialect = CsvDialect.of(upload.detected.get("csv"))
    return FileFormat(upload.file_format), Layout.of(upload.detected), dialect


def ingest_chunk(
    *, session: Session, upload: Upload, chunk: Chunk, time_range: TimeRange
) -> None:
    """Store a chunk's valid readings, count its invalid cells and write the
    upload's progress (caller commits)."""
    _, layout, _ = read_plan(upload)
    cells, encoding = cells_of(
        chunk, layout, encoding=TimeEncoding.of(upload.detected.get("timestamps")),
        timezone=upload.request["timezone"], time_range=time_range,
    )  # fmt: skip
    found = sort_out(cells, time_range, _covers(upload.request.get("access")))
    stored = ReadingStore(session).append_many(found.readings)
    tally = Tally(Counter(upload.invalid_by_reason), list(upload.invalid_shown))
    tally.add(found.invalid, cells, layout.value_columns)
    tally.add_malformed(chunk.malformed)
    figures = {
        sid: (n, stored[sid].inserted, first, last)
        for sid, (n, first, last) in series_counts(found.readings).items()
    }
    store = UploadStore(session)
    store.count_series(upload.id, figures)
    store.record_chunk(
        upload.id,
        progress=chunk.progress,
        chunks_done=upload.chunks_done + 1,
        rows_read=upload.rows_read + chunk.rows + len(chunk.malformed),
        readings_valid=upload.readings_valid + sum(n for n, *_ in figures.values()),
        readings_stored=upload.readings_stored
        + sum(result.inserted for result in stored.values()),
        invalid=upload.invalid + found.invalid.lines.size + len(chunk.malformed),
        invalid_by_reason=dict(tally.by_reason),
        invalid_shown=tally.shown,
        detected={**upload.detected, "timestamps": encoding.describe()},
    )


def stored_key(spool: str | Path) -> str:
    """The artifact-store key of an uploaded file, from its spool's name."""
    return f"uploads/{Path(spool).name}"


def _covers(access: dict[str, list[str]] | None) -> Callable[[str], bool] | None:
    """Which series the uploader may write, as stated at submission."""
    if access is None:
        return None
    return SeriesScope.of(access["groups"], access["patterns"]).covers


def forget_spool(path: str) -> None:
    """Delete an ended upload's spooled file."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
