"""Stored report files: a scheduled report's file of a period, and how its
notifications fared on each channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report's file in the artifact store (`artifact_key`), made for
    `subscription` over [period_start, period_end)."""

    id: str
    subscription: str
    kind: str  # "fleet"
    asset: str | None  # the node it covers; None: the whole fleet
    period_start: datetime
    period_end: datetime
    format: str  # "pdf" or "xlsx"
    file_name: str
    artifact_key: str
    size: int  # bytes
    channels: tuple[str, ...]  # the alert channels it was sent to
    delivery_key: str  # its notifications' keys: `<delivery_key>.<channel>`
    created_at: datetime

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A report's notification to one channel, as the outbox has it."""

    channel: str
    state: str  # "pending", "sent" or "failed"
    attempts: int
    last_error: str | None
    sent_at: float | None  # epoch seconds
