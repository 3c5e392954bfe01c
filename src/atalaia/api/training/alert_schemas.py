"""Request and response bodies of the alert routes: channels, rules, silences,
notifications and Alertmanager's webhook.

A channel's target is a secret (a webhook URL carries its token; addresses are
personal): every answer shows it masked (`masked_target`), and so are the
URLs and addresses of a delivery's last error (`masked_text`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic.json_schema import WithJsonSchema

from atalaia.adapters.db.repositories.alerts import (
    Outgoing,
    StoredChannel,
    StoredRule,
    StoredSilence,
)
from atalaia.api.common.params import SPACE_CLASS, EpochSeconds, Text
from atalaia.core.notifications import ChannelType
from atalaia.services.alert_admin import MAX_SILENCE_S
from atalaia.services.alert_config import (
    ChannelSpec,
    Name,
    RuleSpec,
    SilenceMatchers,
)
from atalaia.services.platform_alerts import PlatformAlert

_REQUEST = ConfigDict(extra="forbid", strict=True)
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
# What `ChannelSpec` checks of a target, for OpenAPI (ECMA-262 patterns).
_SPACED_ADDRESS = (
    f"[{SPACE_CLASS}]*[^@,{SPACE_CLASS}]+@[^@,{SPACE_CLASS}]+[{SPACE_CLASS}]*"
)
_ADDRESSES = f"^{_SPACED_ADDRESS}(,{_SPACED_ADDRESS})*$"
_TARGET_PATTERNS = {
    ("webhook", "slack"): "^https?://",
    ("email",): _ADDRESSES,
    ("apprise",): "://",
}
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>,]*")
_MAIL = re.compile(r"[^\s@,'\"<>:/]+@([^\s@,'\"<>/]+)")
Prefix = Annotated[Text, Field(min_length=1, max_length=128)]
# Labels, annotations: names and values are text (pydantic's own schema lets
# any name through that does not match its pattern).
_TEXT = TypeAdapter(Text).json_schema()
TextMap = Annotated[
    dict[Text, Text],
    WithJsonSchema(
        {"type": "object", "propertyNames": _TEXT, "additionalProperties": _TEXT}
    ),
]
RFC_3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)


def masked_target(kind: ChannelType, target: str) -> str:
    """`target` with its secrets left out: the domain of each address; the
    scheme and host of an http(s) URL; the scheme alone of another (an Apprise
    URL's host is often a token)."""
    if kind == "email":
        return ", ".join(_MAIL.sub(r"…@\1", a.strip()) for a in target.split(","))
    return _masked_url(target)


def masked_text(text: str) -> str:
    """`text` (an error) with every URL and address in it masked."""
    text = _URL.sub(lambda m: _masked_url(m[0]), text)
    return _MAIL.sub(r"…@\1", text)


def _masked_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https"):
        return f"{scheme}://…"
    host = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    return f"{scheme}://{host}/…"


def _document_target_rules(schema: dict[str, Any]) -> None:
    schema["oneOf"] = [
        {
            "properties": {
                "type": {"enum": list(kinds)},
                "target": {"pattern": pattern},
            }
        }
        for kinds, pattern in _TARGET_PATTERNS.items()
    ]


class ChannelBody(ChannelSpec):
    """A channel as PUT: its name is the path's (given here too, it must match)."""

    model_config = _REQUEST | ConfigDict(json_schema_extra=_document_target_rules)

    # The path names it: the body may leave it out.
    name: Name | None = Field(  # type: ignore[assignment]
        default=None, description="The path's, if given"
    )
    target: Annotated[Text, Field(min_length=1)] = Field(
        description="A URL (webhook, slack: http(s); apprise: an Apprise URL) or "
        "comma-separated addresses (email); shown masked"
    )


class ChannelView(BaseModel):
    name: str
    type: ChannelType
    target: str = Field(description="Masked: the scheme and host, or the domains")
    rate_per_min: int
    source: Literal["api", "file"]

    @classmethod
    def of(cls, stored: StoredChannel) -> ChannelView:
        channel = stored.channel
        return cls(
            name=channel.name,
            type=channel.type,
            target=masked_target(channel.type, channel.target),
            rate_per_min=stored.rate_per_min,
            source=stored.source,
        )


class ChannelList(BaseModel):
    channels: list[ChannelView]


class RuleBody(RuleSpec):
    """A rule as PUT: its name is the path's (given here too, it must match);
    every channel it names must exist (`alert_channel_unknown`)."""

    model_config = _REQUEST

    # The path names it: the body may leave it out.
    name: Name | None = Field(  # type: ignore[assignment]
        default=None, description="The path's, if given"
    )
    series_prefix: Prefix | None = None
    sensor_group: Prefix | None = None


class RuleView(RuleSpec):
    source: Literal["api", "file"]

    @classmethod
    def of(cls, stored: StoredRule) -> RuleView:
        return cls(**{**stored.spec, "name": stored.name, "source": stored.source})


class RuleList(BaseModel):
    rules: list[RuleView]


class SilenceMatchersBody(SilenceMatchers):
    model_config = _REQUEST

    series_prefix: Prefix | None = None
    sensor_id: Prefix | None = None
    sensor_group: Prefix | None = None


class SilenceBody(BaseModel):
    """A silence: from `starts_at` (default: now) to `ends_at`, or for
    `duration_s`; at most 30 days."""

    model_config = _REQUEST

    starts_at: EpochSeconds | None = None
    ends_at: EpochSeconds | None = Field(default=None, description="Or duration_s")
    duration_s: float | None = Field(default=None, gt=0, le=MAX_SILENCE_S)
    reason: Annotated[Text, Field(min_length=1)]
    matchers: SilenceMatchersBody = Field(
        default_factory=SilenceMatchersBody,
        description="Every matcher given must hold; none: everything",
    )

    @model_validator(mode="after")
    def _one_end(self) -> SilenceBody:
        if (self.ends_at is None) == (self.duration_s is None):
            raise ValueError("give ends_at or duration_s, one of them")
        return self


class SilenceView(BaseModel):
    id: int
    starts_at: float
    ends_at: float
    author: str
    reason: str
    matchers: dict[str, Any]
    active: bool = Field(description="Holding notifications back now")

    @classmethod
    def of(cls, silence: StoredSilence, at: float) -> SilenceView:
        return cls(
            id=silence.id,
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            author=silence.author,
            reason=silence.reason,
            matchers=silence.matchers,
            active=silence.starts_at <= at < silence.ends_at,
        )


class SilenceList(BaseModel):
    silences: list[SilenceView]


class NotificationView(BaseModel):
    id: int
    key: str = Field(description="Its idempotency key, sent with every attempt")
    channel: str
    rule: str
    incident_id: int | None
    event: str
    severity: str
    title: str
    text: str
    created_at: float
    state: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: float
    last_error: str | None = Field(description="Its URLs and addresses masked")
    sent_at: float | None

    @classmethod
    def of(cls, outgoing: Outgoing) -> NotificationView:
        n = outgoing.notification
        error = outgoing.last_error
        return cls(
            id=outgoing.id, key=n.key, channel=outgoing.channel, rule=outgoing.rule,
            incident_id=outgoing.incident_id, event=n.event, severity=n.severity,
            title=n.title, text=n.text, created_at=n.created_at,
            state=outgoing.state,
            attempts=outgoing.attempts, next_attempt_at=outgoing.next_attempt_at,
            last_error=masked_text(error) if error is not None else None,
            sent_at=outgoing.sent_at,
        )  # fmt: skip


class NotificationPage(BaseModel):
    notifications: list[NotificationView]
    next_cursor: str | None


class AlertmanagerAlert(BaseModel):
    """One alert of Alertmanager's webhook (other fields are taken, not kept)."""

    model_config = ConfigDict(extra="allow", strict=True)

    status: Literal["firing", "resolved"]
    labels: TextMap = Field(default_factory=dict)
    annotations: TextMap = Field(default_factory=dict)
    startsAt: Annotated[str, Field(pattern=RFC_3339)]
    endsAt: Annotated[str, Field(pattern=RFC_3339)] | None = None
    generatorURL: Text = ""
    fingerprint: Annotated[Text, Field(min_length=1, max_length=128)]

    def alert(self) -> PlatformAlert:
        return PlatformAlert(
            status=self.status,
            labels=self.labels,
            annotations=self.annotations,
            starts_at=self.startsAt,
            ends_at=self.endsAt,
            fingerprint=self.fingerprint,
            generator_url=self.generatorURL,
        )


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook payload (version 4)."""

    model_config = ConfigDict(extra="allow", strict=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[AlertmanagerAlert] = Field(max_length=10_000)


class Accepted(BaseModel):
    accepted: int = Field(description="Alerts taken (each logged once)")
