"""`ChannelSender`: the `Sender` of every channel type, built from the settings."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from atalaia.adapters.notify.apprise_channel import AppriseSender
from atalaia.adapters.notify.smtp import EmailSender, SmtpServer
from atalaia.adapters.notify.webhook import (
    HttpSender,
    http_client,
    slack_message,
    webhook_document,
)
from atalaia.core.notifications import Channel, ChannelType, Notification, Sender
from atalaia.settings import Settings


class ChannelSender:
    """Sends each notification by the sender of its channel's type; raises
    `DeliveryFailed`. `close()` releases the HTTP client the senders share."""

    def __init__(
        self, senders: Mapping[ChannelType, Sender], *, client: httpx.Client
    ) -> None:
        self._senders = dict(senders)
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> ChannelSender:
        client = http_client(timeout_s=settings.notify_timeout_s)
        senders: dict[ChannelType, Sender] = {
            "webhook": HttpSender(client, render=webhook_document),
            "slack": HttpSender(client, render=slack_message),
            "email": EmailSender(SmtpServer.from_settings(settings)),
            "apprise": AppriseSender(timeout_s=settings.notify_timeout_s),
        }
        return cls(senders, client=client)

    def send(self, channel: Channel, notification: Notification) -> None:
        self._senders[channel.type].send(channel, notification)

    def close(self) -> None:
        self._client.close()
