"""What people do to incidents: acknowledge, resolve, comment; each change is
written with its history lines and an audit-log entry, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from atalaia.adapters.db.conflicts import conflicts_translated
from atalaia.adapters.db.repositories import AuditLog, IncidentStore
from atalaia.core import incidents
from atalaia.core.incidents import Change, Incident


def acknowledge(
    *,
    session: Session,
    incident_id: int,
    actor: str,
    at: float,
    assignee: str | None,
    note: str,
) -> Incident:
    """Take an open incident (409 `incident_state` otherwise), assign it when
    `assignee` is given, and add `note` as a comment when there is one."""

    def change(incident: Incident) -> list[Change]:
        changes = incidents.acknowledge(incident, actor, at, assignee)
        if note.strip():
            changes += incidents.comment(incident, actor, at, note)
        return changes

    return _act(
        session, incident_id, actor, "acknowledged", change,
        assignee=assignee, note=note,
    )  # fmt: skip


def resolve(
    *, session: Session, incident_id: int, actor: str, at: float, note: str
) -> Incident:
    """Resolve a live incident (409 `incident_state` once resolved)."""
    return _act(
        session, incident_id, actor, "resolved",
        lambda incident: incidents.resolve(incident, actor, at, note),
        note=note,
    )  # fmt: skip


def comment(
    *, session: Session, incident_id: int, actor: str, at: float, text: str
) -> Incident:
    """Add a comment (not blank: 422 `comment_text`) in any state."""
    return _act(
        session, incident_id, actor, "commented",
        lambda incident: incidents.comment(incident, actor, at, text),
    )  # fmt: skip


def _act(
    session: Session,
    incident_id: int,
    actor: str,
    verb: str,
    change: Callable[[Incident], list[Change]],
    **detail: Any,
) -> Incident:
    with conflicts_translated(f"{verb} of incident {incident_id}"):
        incident = IncidentStore(session).act(incident_id, change)
        AuditLog(session).record(
            actor=actor,
            action=f"incident.{verb}",
            target=f"incident/{incident_id}",
            **detail,
        )
        session.commit()
    return incident
