"""Notification delivery: webhook, Slack-compatible, e-mail and Apprise channels."""

from atalaia.adapters.notify.apprise_channel import AppriseSender
from atalaia.adapters.notify.sender import ChannelSender
from atalaia.adapters.notify.smtp import EmailSender, SmtpServer
from atalaia.adapters.notify.webhook import HttpSender

__all__ = ["AppriseSender", "ChannelSender", "EmailSender", "HttpSender", "SmtpServer"]
