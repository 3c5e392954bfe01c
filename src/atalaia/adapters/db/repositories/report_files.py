"""Stored report files (`core.report_files`) and their deliveries, read from
the notification outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import NotificationRow, ReportFileRow
from atalaia.core.report_files import Delivery, ReportFile
from atalaia.errors import ConcurrentChange, Conflict, NotFound

_FIELDS = (
    "id", "subscription", "kind", "asset", "period_start", "period_end", "format",
    "file_name", "artifact_key", "size", "delivery_key", "created_at",
)  # fmt: skip


class ReportFileNotFound(NotFound):
    rule = "report_file_exists"


def _file(row: ReportFileRow) -> ReportFile:
    return ReportFile(
        channels=tuple(row.channels), **{f: getattr(row, f) for f in _FIELDS}
    )


class ReportFileStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, files: Sequence[ReportFile]) -> None:
        """Store the files of a subscription's period; Conflict
        (`one_report_per_period`) when it has them already."""
        self.session.add_all(
            ReportFileRow(
                channels=list(f.channels), **{k: getattr(f, k) for k in _FIELDS}
            )
            for f in files
        )
        try:
            self.session.flush()
        except ConcurrentChange as exc:  # the constraint (`adapters.db.translation`)
            raise Conflict(
                "this subscription's report of this period is stored already",
                rule="one_report_per_period",
            ) from exc

    def made(self, subscription: str, period_start: datetime) -> bool:
        """Whether `subscription`'s report of the period starting then is stored."""
        stmt = select(ReportFileRow.id).where(
            ReportFileRow.subscription == subscription,
            ReportFileRow.period_start == period_start,
        )
        return self.session.scalars(stmt.limit(1)).first() is not None

    def get(self, file_id: str) -> ReportFile:
        row = self.session.get(ReportFileRow, file_id)
        if row is None:
            raise ReportFileNotFound(f"no report file {file_id!r}")
        return _file(row)

    def page(self, *, before: str | None, limit: int) -> list[ReportFile]:
        """Newest first (ids sort by creation)."""
        stmt = select(ReportFileRow).order_by(ReportFileRow.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(ReportFileRow.id < before)
        return [_file(row) for row in self.session.scalars(stmt)]

    def deliveries(self, files: Sequence[ReportFile]) -> dict[str, list[Delivery]]:
        """Per delivery key of `files`, its notifications' states by channel."""
        keys = {
            f"{f.delivery_key}.{c}": f.delivery_key for f in files for c in f.channels
        }
        stmt = select(NotificationRow).where(NotificationRow.key.in_(list(keys)))
        found: dict[str, list[Delivery]] = {}
        for row in self.session.scalars(stmt.order_by(NotificationRow.channel)):
            found.setdefault(keys[row.key], []).append(
                Delivery(
                    row.channel, row.state, row.attempts, row.last_error, row.sent_at
                )
            )
        return found
