"""Alerting: channels, rules and silences; the notifications and how their
delivery went; Alertmanager's webhook for the platform's own alerts."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from atalaia.adapters.db.repositories import AlertConfig, Outbox
from atalaia.adapters.db.repositories.alerts import NotFoundByName
from atalaia.api.common.deps import (
    DataScientist,
    FleetEngineer,
    FleetViewer,
    MlEngineer,
    ResourcesDep,
    SessionDep,
    Viewer,
    scope_of,
)
from atalaia.api.common.openapi import error_responses
from atalaia.api.common.params import Text, id_cursor
from atalaia.api.training.alert_schemas import (
    NAME_PATTERN,
    Accepted,
    AlertmanagerPayload,
    ChannelBody,
    ChannelList,
    ChannelView,
    NotificationPage,
    NotificationView,
    RuleBody,
    RuleList,
    RuleView,
    SilenceBody,
    SilenceList,
    SilenceView,
)
from atalaia.core.notifications import Channel
from atalaia.errors import InvalidInput
from atalaia.services import alert_admin, platform_alerts

router = APIRouter(prefix="/alerts", tags=["alerts"])

ConfigName = Annotated[str, Path(pattern=NAME_PATTERN)]
SilenceId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAX_PAGE = 1_000


def _named(path_name: str, body_name: str | None) -> str:
    if body_name is not None and body_name != path_name:
        raise InvalidInput(
            f"the body names {body_name!r}, the path {path_name!r}: give the "
            "same name, or none in the body",
            rule="name_matches_path",
        )
    return path_name


@router.get("/channels", response_model=ChannelList)
def list_channels(session: SessionDep, _: Viewer) -> ChannelList:
    """Every channel, by name; targets masked."""
    stored = AlertConfig(session).channels()
    return ChannelList(channels=[ChannelView.of(c) for c in stored])


@router.put("/channels/{name}", response_model=ChannelView)
def put_channel(
    name: ConfigName, body: ChannelBody, session: SessionDep, principal: FleetEngineer
) -> ChannelView:
    """Create or replace a channel (one the rules file made is refused)."""
    # The target as given: `${NAME}`s are the rules file's, never expanded here.
    channel = Channel(_named(name, body.name), body.type, body.target)
    stored = alert_admin.put_channel(
        session=session,
        channel=channel,
        rate_per_min=body.rate_per_min,
        actor=principal.subject,
    )
    return ChannelView.of(stored)


@router.delete(
    "/channels/{name}", status_code=204, responses=error_responses(NotFoundByName)
)
def delete_channel(
    name: ConfigName, session: SessionDep, principal: FleetEngineer
) -> Response:
    """Delete a channel that no rule names."""
    alert_admin.delete_channel(session=session, name=name, actor=principal.subject)
    return Response(status_code=204)


@router.get("/rules", response_model=RuleList)
def list_rules(
    session: SessionDep, resources: ResourcesDep, principal: Viewer
) -> RuleList:
    """Every rule (of the caller's sensor groups), by name."""
    found = alert_admin.rules(session=session, scope=scope_of(resources, principal))
    return RuleList(rules=[RuleView.of(r) for r in found])


@router.put("/rules/{name}", response_model=RuleView)
def put_rule(
    name: ConfigName,
    body: RuleBody,
    session: SessionDep,
    resources: ResourcesDep,
    principal: MlEngineer,
) -> RuleView:
    """Create or replace a rule; the channels it names must exist."""
    spec = body.model_copy(update={"name": _named(name, body.name)})
    alert_admin.put_rule(
        session=session, spec=spec, actor=principal.subject,
        scope=scope_of(resources, principal),
    )  # fmt: skip
    return RuleView(**spec.model_dump(), source="api")


@router.delete(
    "/rules/{name}", status_code=204, responses=error_responses(NotFoundByName)
)
def delete_rule(
    name: ConfigName,
    session: SessionDep,
    resources: ResourcesDep,
    principal: MlEngineer,
) -> Response:
    """Delete a rule."""
    alert_admin.delete_rule(
        session=session, name=name, actor=principal.subject,
        scope=scope_of(resources, principal),
    )  # fmt: skip
    return Response(status_code=204)


@router.get("/silences", response_model=SilenceList)
def list_silences(
    session: SessionDep,
    resources: ResourcesDep,
    principal: Viewer,
    active: Annotated[
        bool, Query(description="Only those not over yet (active or to come)")
    ] = False,
) -> SilenceList:
    """Silences (of the caller's sensor groups), newest first."""
    now = time.time()
    found = alert_admin.silences(
        session=session, scope=scope_of(resources, principal),
        active_at=now if active else None,
    )  # fmt: skip
    return SilenceList(silences=[SilenceView.of(s, now) for s in found])


@router.post("/silences", status_code=201, response_model=SilenceView)
def add_silence(
    body: SilenceBody,
    session: SessionDep,
    resources: ResourcesDep,
    principal: DataScientist,
) -> SilenceView:
    """Hold back the notifications the matchers cover, for a while."""
    now = time.time()
    for name in ("starts_at", "ends_at"):
        if (bound := getattr(body, name)) is not None:
            resources.time_range.check_one(bound, name=name)
    starts_at = now if body.starts_at is None else body.starts_at
    ends_at = (
        body.ends_at
        if body.ends_at is not None
        else starts_at + (body.duration_s or 0.0)
    )
    silence = alert_admin.add_silence(
        session=session, starts_at=starts_at, ends_at=ends_at,
        author=principal.subject, reason=body.reason, matchers=body.matchers,
        at=now, scope=scope_of(resources, principal),
    )  # fmt: skip
    return SilenceView.of(silence, now)


@router.delete(
    "/silences/{silence_id}",
    response_model=SilenceView,
    responses=error_responses(NotFoundByName),
)
def end_silence(
    silence_id: SilenceId,
    session: SessionDep,
    resources: ResourcesDep,
    principal: DataScientist,
) -> SilenceView:
    """End a silence now (it stays listed)."""
    now = time.time()
    silence = alert_admin.end_silence(
        session=session, silence_id=silence_id, actor=principal.subject, at=now,
        scope=scope_of(resources, principal),
    )  # fmt: skip
    return SilenceView.of(silence, now)


@router.get("/notifications", response_model=NotificationPage)
def list_notifications(
    session: SessionDep,
    _: FleetViewer,
    state: Literal["pending", "sent", "failed"] | None = None,
    channel: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    after: Annotated[Text | None, id_cursor("the newest")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> NotificationPage:
    """Notifications, newest first, with how their delivery went."""
    found, cursor = Outbox(session).page(
        after, limit, state=state, channel=channel, incident_id=incident_id
    )
    return NotificationPage(
        notifications=[NotificationView.of(n) for n in found], next_cursor=cursor
    )


@router.post("/alertmanager", response_model=Accepted)
def alertmanager(
    payload: AlertmanagerPayload, session: SessionDep, _: FleetEngineer
) -> Accepted:
    """Alertmanager's webhook receiver: each alert becomes a platform event."""
    accepted = platform_alerts.record_alerts(
        session=session,
        alerts=[a.alert() for a in payload.alerts],
        at=time.time(),
    )
    return Accepted(accepted=accepted)
