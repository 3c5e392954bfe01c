"""Parameters and response bodies of uploads (`/uploads`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from atalaia.api.training.quality_schemas import SeriesQualityView
from atalaia.core.uploads import Form, LayoutRequest, Upload, UploadStatus
from atalaia.errors import InvalidInput
from atalaia.services.uploads import UploadRequest

# The settings an upload takes, as query parameters or multipart text fields.
PARAMETERS = {
    "form": "long or wide; told from the columns when not given",
    "timestamp_column": "the column of times (default `timestamp`)",
    "series_column": "long form: the column of series ids (default `series_id`)",
    "value_column": "long form: the column of values (default `value`)",
    "mapping": 'wide form: a JSON object column → series id, e.g. {"t1": "pump7_temp"}',
    "sensor": "wide form: columns named by axis, stored as `{sensor}_{axis}`",
    "timezone": "the IANA time zone of naive times (default UTC)",
    "timestamp_unit": "the unit of epoch numbers: s, ms, us or ns (default: told by "
    "their magnitude)",
}


def upload_request(fields: Mapping[str, str]) -> UploadRequest:
    """The upload's settings from query parameters and form fields, checked."""
    form = fields.get("form")
    if form is not None and form not in (Form.LONG, Form.WIDE):
        raise InvalidInput("form must be long or wide", rule="upload_form")
    layout = LayoutRequest(
        form=Form(form) if form else None,
        timestamp_column=fields.get("timestamp_column") or "timestamp",
        series_column=fields.get("series_column") or "series_id",
        value_column=fields.get("value_column") or "value",
        mapping=_mapping(fields.get("mapping")),
        sensor=fields.get("sensor") or None,
    )
    return UploadRequest(
        layout,
        timezone=fields.get("timezone") or "UTC",
        timestamp_unit=fields.get("timestamp_unit") or None,
    ).checked()


def _mapping(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    try:
        mapping = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"mapping is not JSON: {exc}", rule="mapping_json") from exc
    if not isinstance(mapping, dict) or not all(
        isinstance(v, str) for v in mapping.values()
    ):
        raise InvalidInput(
            "mapping must be a JSON object of column → series id (strings)",
            rule="mapping_json",
        )
    return mapping


class UploadView(BaseModel):
    """An upload and its ingest's progress."""

    upload_id: str
    status: UploadStatus
    file_name: str
    file_format: str
    bytes_total: int
    progress: float = Field(description="share of the file read, 0…1")
    chunks_done: int = Field(description="chunks of the file ingested so far")
    rows_read: int
    readings_valid: int
    readings_stored: int = Field(description="readings stored by this upload")
    readings_already_stored: int = Field(
        description="valid readings whose (series, timestamp) was stored before"
    )
    invalid: int = Field(description="rows (long form) or cells (wide) not stored")
    invalid_by_reason: dict[str, int]
    invalid_rows: list[dict[str, Any]] = Field(
        description="the first invalid rows: line (the header is line 1), column, "
        "series_id, reason"
    )
    detected: dict[str, Any] = Field(
        description="format, form, columns → series, how timestamps read"
    )
    request: dict[str, Any]
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, upload: Upload) -> UploadView:
        u = upload
        return cls(
            upload_id=u.id, status=u.status, file_name=u.file_name,
            file_format=u.file_format, bytes_total=u.bytes_total,
            progress=u.progress, chunks_done=u.chunks_done, rows_read=u.rows_read,
            readings_valid=u.readings_valid, readings_stored=u.readings_stored,
            readings_already_stored=u.readings_valid - u.readings_stored,
            invalid=u.invalid, invalid_by_reason=u.invalid_by_reason,
            invalid_rows=u.invalid_shown, detected=u.detected, request=u.request,
            error=u.error, created_at=u.created_at, started_at=u.started_at,
            finished_at=u.finished_at,
        )  # fmt: skip


class UploadPage(BaseModel):
    uploads: list[UploadView]
    next_cursor: str | None


class UploadSeriesView(BaseModel):
    series_id: str
    readings: int = Field(description="valid readings of the series in the file")
    stored: int = Field(description="of them, newly stored")
    first_ts: float
    last_ts: float


class UploadSeriesPage(BaseModel):
    series: list[UploadSeriesView]


class UploadQualityView(BaseModel):
    """The data-quality reports of an upload's series (`GET /series/{sid}/
    quality` over the window each uploaded)."""

    upload_id: str
    fit: int = Field(description="Series fit to train on")
    unfit: int = Field(description="Series with a blocking finding")
    series: list[SeriesQualityView]
