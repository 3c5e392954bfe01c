"""The stored report files (`services.reports.scheduled`): listed with their
deliveries, and read back."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ReportFileStore
from atalaia.core.ports import ArtifactStore
from atalaia.core.report_files import Delivery, ReportFile
from atalaia.errors import NotFound


class ListedFile(NamedTuple):
    file: ReportFile
    deliveries: list[Delivery]


class ReportFileGone(NotFound):
    rule = "report_file_stored"


def list_report_files(
    session: Session, *, before: str | None, limit: int
) -> list[ListedFile]:
    """The stored files, newest first, each with its notifications' states."""
    store = ReportFileStore(session)
    files = store.page(before=before, limit=limit)
    deliveries = store.deliveries(files)
    return [ListedFile(f, deliveries.get(f.delivery_key, [])) for f in files]


def read_report_file(
    session: Session, artifacts: ArtifactStore, file_id: str
) -> tuple[ReportFile, bytes]:
    """A stored file and its bytes; NotFound (`report_file_exists`) for an
    unknown id, (`report_file_stored`) when the store lost its bytes."""
    stored = ReportFileStore(session).get(file_id)
    if not artifacts.exists(stored.artifact_key):
        raise ReportFileGone(
            f"report file {file_id!r} is recorded but its bytes are not in the "
            "artifact store"
        )
    return stored, artifacts.get(stored.artifact_key)
