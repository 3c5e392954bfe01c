"""`ChannelSender`: the `Sender` of every channel type, built from the settings;
the files a notification names are read from the artifact store for the
channels that carry them (`core.notifications.ATTACHING`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import httpx

from atalaia.adapters.notify.apprise_channel import AppriseSender
from atalaia.adapters.notify.smtp import EmailSender, SmtpServer
from atalaia.adapters.notify.webhook import (
    HttpSender,
    http_client,
    slack_message,
    webhook_document,
)
from atalaia.adapters.storage import artifact_store_for
from atalaia.core.notifications import (
    ATTACHING,
    Attachment,
    Channel,
    ChannelType,
    DeliveryFailed,
    Notification,
    Sender,
)
from atalaia.core.ports import ArtifactStore
from atalaia.errors import DependencyUnavailable, NotFound
from atalaia.settings import Settings


class ChannelSender:
    """Sends each notification by the sender of its channel's type; raises
    `DeliveryFailed`. `close()` releases the HTTP client the senders share."""

    def __init__(
        self,
        senders: Mapping[ChannelType, Sender],
        *,
        client: httpx.Client,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._senders = dict(senders)
        self._client = client
        self._artifacts = artifacts

    @classmethod
    def from_settings(cls, settings: Settings) -> ChannelSender:
        client = http_client(timeout_s=settings.notify_timeout_s)
        senders: dict[ChannelType, Sender] = {
            "webhook": HttpSender(client, render=webhook_document),
            "slack": HttpSender(client, render=slack_message),
            "email": EmailSender(SmtpServer.from_settings(settings)),
            "apprise": AppriseSender(timeout_s=settings.notify_timeout_s),
        }
        artifacts = artifact_store_for(settings)
        return cls(senders, client=client, artifacts=artifacts)

    def send(self, channel: Channel, notification: Notification) -> None:
        if channel.type in ATTACHING:
            notification = self._attached(notification)
        self._senders[channel.type].send(channel, notification)

    def _attached(self, notification: Notification) -> Notification:
        """`notification` with the files its document names; DeliveryFailed
        when one is no longer stored (not retryable), or the store cannot be
        read now (retryable)."""
        files = notification.stored_files()
        if not files:
            return notification
        if self._artifacts is None:
            raise DeliveryFailed(
                "no artifact store to read files from", retryable=False
            )
        try:
            attachments = tuple(
                Attachment(
                    f.filename, f.media_type, self._artifacts.get(f.artifact_key)
                )
                for f in files
            )
        except NotFound as exc:
            raise DeliveryFailed(exc.detail, retryable=False) from exc
        except DependencyUnavailable as exc:
            raise DeliveryFailed(exc.detail, retryable=True) from exc
        return replace(notification, attachments=attachments)

    def close(self) -> None:
        self._client.close()
