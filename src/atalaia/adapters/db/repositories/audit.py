"""The audit log: who did what, to what, when and from where.

Append-only: the database refuses UPDATE and DELETE on its table (migration
0024). Each entry is also a structlog JSON line (event "audit", the same
fields) once its transaction commits, so a log pipeline gets what the table
holds and nothing that was rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, event, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, UOWTransaction

from atalaia.adapters.db.repositories.incidents import parse_cursor
from atalaia.adapters.db.tables import AuditRow, utcnow
from atalaia.logging import CLIENT_ADDRESS, REQUEST_ID

_ADDED = "atalaia.audit.added"  # session.info: rows added, not yet flushed
_FLUSHED = "atalaia.audit.flushed"  # session.info: their log lines, until commit


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An entry; `id` None until written. `address` and `request_id` name the
    request that made it (None: a scheduler, a worker, a command)."""

    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    address: str | None = None
    request_id: str | None = None
    at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Entries matching every field given: an actor, one of `actions` or an
    action starting with one of `action_prefixes`, a target, at or after
    `since`, before `until`."""

    actor: str | None = None
    actions: Sequence[str] = ()
    action_prefixes: Sequence[str] = ()
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, *, actor: str, action: str, target: str, **detail: Any) -> None:
        """Add an entry to the session's transaction; the request being served
        (if any) gives its address and id."""
        self.append(
            AuditEntry(
                actor=actor, action=action, target=target, detail=detail,
                address=CLIENT_ADDRESS.get(), request_id=REQUEST_ID.get(),
            )
        )  # fmt: skip

    def append(self, entry: AuditEntry) -> None:
        """Add `entry` as it is to the session's transaction."""
        row = AuditRow(**_columns(entry))
        self.session.add(row)
        self.session.info.setdefault(_ADDED, []).append(row)

    def append_once(self, entry: AuditEntry, key: str) -> bool:
        """Add `entry` unless an entry of `key` was ever written (by any
        process); whether it was added."""
        postgres = self.session.get_bind().dialect.name == "postgresql"
        insert = pg_insert if postgres else sqlite_insert
        stmt = (
            insert(AuditRow)
            .values(**_columns(entry), once_key=key)
            .on_conflict_do_nothing(index_elements=["once_key"])
            .returning(AuditRow.id)
        )
        written = self.session.execute(stmt).scalar()
        if written is None:
            return False
        flushed = self.session.info.setdefault(_FLUSHED, [])
        flushed.append(_fields(entry, written))
        return True

    def page(
        self, where: AuditFilter, after: str | None, limit: int
    ) -> tuple[list[AuditEntry], str | None]:
        """Entries matching `where`, newest first, older than cursor `after`;
        the cursor of the next page (None: no more). New entries never move a
        page: the cursor is an id, and ids only grow."""
        stmt = select(AuditRow).where(*_conditions(where))
        if after is not None:
            stmt = stmt.where(AuditRow.id < parse_cursor(after))
        stmt = stmt.order_by(AuditRow.id.desc()).limit(limit + 1)
        rows = list(self.session.scalars(stmt))
        more = len(rows) > limit
        found = [_entry(r) for r in rows[:limit]]
        return found, str(found[-1].id) if more else None

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


def _columns(entry: AuditEntry) -> dict[str, Any]:
    columns = asdict(entry)
    del columns["id"]
    return columns


def _conditions(where: AuditFilter) -> list[ColumnElement[bool]]:
    row = AuditRow
    found: list[ColumnElement[bool]] = []
    if where.actor is not None:
        found.append(row.actor == where.actor)
    if where.actions or where.action_prefixes:
        found.append(
            or_(
                *([row.action.in_(where.actions)] if where.actions else []),
                *(
                    row.action.startswith(p, autoescape=True)
                    for p in where.action_prefixes
                ),
            )
        )
    if where.target is not None:
        found.append(row.target == where.target)
    if where.since is not None:
        found.append(row.at >= where.since)
    if where.until is not None:
        found.append(row.at < where.until)
    return found


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id, at=row.at, actor=row.actor, action=row.action,
        target=row.target, detail=row.detail, address=row.address,
        request_id=row.request_id,
    )  # fmt: skip


def _fields(entry: AuditEntry, entry_id: int) -> dict[str, Any]:
    """An entry's log line: its fields, the time in ISO 8601."""
    return asdict(entry) | {"id": entry_id, "at": entry.at.isoformat()}


@event.listens_for(Session, "after_flush_postexec")
def _written(session: Session, _flush: UOWTransaction) -> None:
    """The log lines of the entries just written (their ids known now)."""
    rows: list[AuditRow] = session.info.pop(_ADDED, [])
    if rows:
        session.info.setdefault(_FLUSHED, []).extend(
            _fields(_entry(r), r.id) for r in rows
        )


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    entries = session.info.pop(_FLUSHED, [])
    if entries:
        log = _audit_logger()
        for fields in entries:
            log.info("audit", **fields)


def _audit_logger() -> Any:
    """A logger bound now, to the logging configured now (a command's), not to
    the one of the first entry this process logged."""
    return structlog.get_logger("atalaia.audit")


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_ADDED, None)
    session.info.pop(_FLUSHED, None)
