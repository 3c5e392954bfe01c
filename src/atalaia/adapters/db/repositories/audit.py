"""The audit log: every change to the registry, and who made it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import AuditRow


class AuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, *, actor: str, action: str, target: str, **detail: Any) -> None:
        self.session.add(
            AuditRow(actor=actor, action=action, target=target, detail=detail)
        )
