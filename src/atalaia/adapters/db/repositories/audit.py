"""The audit log: every change to the registry, and who made it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import AuditRow


class AuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, *, actor: str, action: str, target: str, **detail: Any) -> None:
        self.session.add(
            AuditRow(actor=actor, action=action, target=target, detail=detail)
        )

    def last_times(self, actions: Sequence[str]) -> dict[str, datetime]:
        """When each of `actions` that was ever recorded was recorded last."""
        stmt = (
            select(AuditRow.action, func.max(AuditRow.at))
            .where(AuditRow.action.in_(actions))
            .group_by(AuditRow.action)
        )
        return dict(self.session.execute(stmt).all())

    def details(self, action: str, *, since: datetime) -> list[dict[str, Any]]:
        """The detail of each entry of `action` recorded since `since`, oldest
        first."""
        stmt = (
            select(AuditRow.detail)
            .where(AuditRow.action == action, AuditRow.at >= since)
            .order_by(AuditRow.id)
        )
        return list(self.session.scalars(stmt))
