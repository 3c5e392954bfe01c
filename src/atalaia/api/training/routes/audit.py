"""The audit log, read by admins: who did what, to what, when, from where."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from pydantic.json_schema import WithJsonSchema

from atalaia.adapters.db.repositories import AuditEntry, AuditFilter, AuditLog
from atalaia.api.common.deps import FleetAdmin, ResourcesDep, SessionDep
from atalaia.api.common.params import Moment, Text, id_cursor
from atalaia.core.series import TimeRange
from atalaia.errors import InvalidInput
from atalaia.services.plotting import epoch_seconds

router = APIRouter(prefix="/audit", tags=["audit"])

MAX_PAGE = 1_000
ACTION = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
# An action's name or prefix: its pattern documented, checked by the route
# (which names the rule, `audit_action`).
ActionName = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": f"^{ACTION.pattern}$"})
]
_TIME_HELP = "ISO 8601 (UTC when no offset) or epoch seconds"


class AuditEntryView(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="A token's subject, `scheduler`, `healing`…")
    action: str = Field(description="e.g. `promote`, `http.post`, `auth.sign_in`")
    target: str = Field(description="A version, a series, a route's template…")
    address: str | None = Field(
        description="The client's address (behind a trusted proxy, the one it "
        "names); null: not made by a request"
    )
    request_id: str | None = Field(description="The X-Request-ID of its request")
    detail: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryView:
        assert entry.id is not None
        return cls(
            id=entry.id, at=entry.at, actor=entry.actor, action=entry.action,
            target=entry.target, address=entry.address,
            request_id=entry.request_id, detail=entry.detail,
        )  # fmt: skip


class AuditPage(BaseModel):
    entries: list[AuditEntryView] = Field(description="Newest first")
    next_cursor: str | None = Field(description="`cursor` of the next page; none: last")


@router.get("", response_model=AuditPage)
def list_audit(
    session: SessionDep,
    resources: ResourcesDep,
    _: FleetAdmin,
    actor: Annotated[Text | None, Query(description="A token's subject…")] = None,
    action: Annotated[
        list[ActionName] | None,
        Query(
            description="Repeatable; one ending in `.` is a prefix: `model.` "
            "matches `model.registered`"
        ),
    ] = None,
    target: Text | None = None,
    since: Annotated[Moment | None, Query(description=f"{_TIME_HELP}, at or after")] = (
        None
    ),
    until: Annotated[Moment | None, Query(description=f"{_TIME_HELP}, before")] = None,
    cursor: Annotated[Text | None, id_cursor("the newest")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPage:
    """Entries matching every filter given, newest first, a page at a time."""
    actions, prefixes = split_actions(action or ())
    start, end = time_window(since, until, resources.time_range)
    where = AuditFilter(
        actor=actor, actions=actions, action_prefixes=prefixes, target=target,
        since=start, until=end,
    )  # fmt: skip
    found, next_cursor = AuditLog(session).page(where, cursor, limit)
    return AuditPage(
        entries=[AuditEntryView.of(e) for e in found], next_cursor=next_cursor
    )


def split_actions(given: Sequence[str]) -> tuple[list[str], list[str]]:
    """The actions asked for, and the prefixes (those ending in `.`);
    InvalidInput (`audit_action`) for one that no action could match."""
    for name in given:
        if not ACTION.fullmatch(name):
            raise InvalidInput(
                f"action {name!r} is not an action's name: a lowercase letter, "
                "then up to 63 lowercase letters, digits, `_`, `.`, `:` or `-` "
                "(one ending in `.` is a prefix)",
                rule="audit_action",
            )
    prefixes = [name for name in given if name.endswith(".")]
    return [name for name in given if not name.endswith(".")], prefixes


def time_window(
    since: float | datetime | None, until: float | datetime | None, span: TimeRange
) -> tuple[datetime | None, datetime | None]:
    """[since, until) as UTC datetimes; InvalidInput (`timestamp_range`) out of
    the settings' span, (`time_range`) when `until` is not after `since`."""
    start = epoch_seconds(since, name="since", span=span)
    end = epoch_seconds(until, name="until", span=span)
    if start is not None and end is not None and not end > start:
        raise InvalidInput(
            f"until ({end}) must be after since ({start})", rule="time_range"
        )
    return _utc(start), _utc(end)


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
