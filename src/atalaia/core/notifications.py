"""Notifications: what the platform tells people, and the channels it goes by.

A notification is made once (an incident opened, escalated or resolved; a
model drifted, failed to train, was promoted or rolled back; a platform alert
fired) and stored in the outbox before any attempt to send it. Its `key` is
its idempotency key: every attempt to deliver it carries the same key, so a
receiver that got it once can drop a repeat.

Channels:

- `webhook`: a JSON document (`Notification.document`) POSTed to `target`;
- `slack`: the Slack-compatible form (`{"text": ...}`: Slack, Mattermost,
  Rocket.Chat incoming webhooks) POSTed to `target`;
- `email`: a plain-text message over SMTP to `target`'s addresses (comma
  separated), through the server the settings name;
- `apprise`: `target` is an Apprise URL (Teams, Telegram, PagerDuty, ntfy,
  Discord and the others Apprise knows).

A notification may name stored files (a scheduled report's) under its
document's `attachments`: `email` and `apprise` channels carry them, the
others the link its text gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

ChannelType = Literal["webhook", "slack", "email", "apprise"]
CHANNEL_TYPES: tuple[ChannelType, ...] = get_args(ChannelType)
# What a notification is about.
Event = Literal[
    "incident.opened",
    "incident.escalated",
    "incident.resolved",
    "model.drift",
    "model.promoted",
    "model.rolled_back",
    "model.canary_started",  # a fleet operation's canaries
    "training.failed",
    "platform.alert",
    "report.ready",  # a scheduled report's files were stored
]
ATTACHMENTS = "attachments"  # a document's list of `StoredFile.document()`
# The channel types that carry a notification's files (the others: a link).
ATTACHING: frozenset[ChannelType] = frozenset({"email", "apprise"})


@dataclass(frozen=True, slots=True)
class Channel:
    """Where notifications go: a name rules refer to, a type, and its target
    (a URL, or e-mail addresses)."""

    name: str
    type: ChannelType
    target: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a notification carries."""

    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file of the artifact store a notification names (its document keeps
    `document()` under `ATTACHMENTS`; the sender reads the file)."""

    artifact_key: str
    filename: str
    media_type: str

    def document(self) -> dict[str, str]:
        return {
            "artifact_key": self.artifact_key,
            "filename": self.filename,
            "media_type": self.media_type,
        }

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> StoredFile:
        return cls(
            str(document["artifact_key"]),
            str(document["filename"]),
            str(document["media_type"]),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one channel.

    `document` is the JSON a `webhook` receives as is; `title` and `text` are
    what the other channel types show; `attachments` the files of the
    document's `ATTACHMENTS`, read when it is sent by a channel that carries
    them."""

    key: str  # the idempotency key, the same for every attempt
    event: Event
    severity: str  # "critical", "major", "minor" or "info"
    title: str
    text: str
    created_at: float  # epoch seconds
    document: Mapping[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()

    def stored_files(self) -> list[StoredFile]:
        """The files its document names."""
        return [StoredFile.of(f) for f in self.document.get(ATTACHMENTS, ())]


class DeliveryFailed(Exception):
    """A channel did not take a notification; `retryable`: it may later (a
    receiver down, a timeout, a 5xx or 429), else it never will (a 4xx, an
    address refused)."""

    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.retryable = retryable


class Sender(Protocol):
    """Sends a notification by one channel; raises `DeliveryFailed`."""

    def send(self, channel: Channel, notification: Notification) -> None: ...
