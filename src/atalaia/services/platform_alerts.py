"""Alerts on the platform itself (Prometheus rules, routed by Alertmanager to
the platform's webhook), logged as platform events: the alerter routes them
to channels like any other event, and an alert told twice is logged once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import SignalLogs

# Alertmanager's usual severity labels, as incident severities.
SEVERITIES = {
    "critical": "critical",
    "page": "critical",
    "major": "major",
    "error": "major",
    "warning": "major",
    "minor": "minor",
    "info": "minor",
}
DEFAULT_SEVERITY = "major"


@dataclass(frozen=True, slots=True)
class PlatformAlert:
    """An alert as Alertmanager tells it (times as it wrote them, RFC 3339)."""

    status: str  # "firing" or "resolved"
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str | None
    fingerprint: str
    generator_url: str

    @property
    def key(self) -> str:
        """The same for every time Alertmanager tells this alert's state."""
        return f"alertmanager.{self.fingerprint}.{self.status}.{self.starts_at}"

    @property
    def severity(self) -> str:
        label = self.labels.get("severity", "").lower()
        return SEVERITIES.get(label, DEFAULT_SEVERITY)

    @property
    def title(self) -> str:
        return f"{self.labels.get('alertname', 'alert')} {self.status}"

    @property
    def text(self) -> str:
        parts = (self.annotations.get(k, "") for k in ("summary", "description"))
        return "\n\n".join(p for p in parts if p)

    def document(self) -> dict[str, object]:
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "fingerprint": self.fingerprint,
            "generatorURL": self.generator_url,
            "severity": self.severity,
        }


def record_alerts(
    *, session: Session, alerts: Sequence[PlatformAlert], at: float
) -> int:
    """Log each alert as a `platform.alert` event (once per key), in one
    transaction; how many were given."""
    logs = SignalLogs(session)
    for alert in alerts:
        logs.add_event(
            key=alert.key,
            event="platform.alert",
            series_id=None,
            title=alert.title,
            text=alert.text,
            document=alert.document(),
            at=at,
        )
    session.commit()
    return len(alerts)
