"""`apprise` channel: the target is an Apprise URL (Teams, Telegram, ntfy, …).

A notification's files go as Apprise attachments (`attach=`, from a
temporary folder removed after the send), on the services that take them.
Apprise reports a failure as False, whatever its cause (a receiver down, a
token refused): every failure is retryable. A URL Apprise does not know never
will deliver. Apprise's own log lines below warnings are dropped; warnings and
errors go out as structlog events (`notify.apprise_log`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import apprise
import structlog

from atalaia.core.notifications import Channel, DeliveryFailed, Notification

log = structlog.get_logger()

NOTIFY_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "major": apprise.NotifyType.FAILURE,
    "minor": apprise.NotifyType.WARNING,
}


class AppriseSender:
    """Sends a notification to the Apprise URL of the channel; `timeout_s`
    bounds each of its connects and reads. Raises `DeliveryFailed`."""

    def __init__(self, *, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        route_apprise_logs()

    def send(self, channel: Channel, notification: Notification) -> None:
        # A service per send: Apprise throttles a service between its sends.
        service = apprise.Apprise.instantiate(channel.target)
        if service is None:
            raise DeliveryFailed("not an Apprise URL Apprise knows", retryable=False)
        service.socket_connect_timeout = self._timeout_s
        service.socket_read_timeout = self._timeout_s
        hub = apprise.Apprise()
        hub.add(service)
        with attached_files(notification) as files:
            delivered = hub.notify(
                body=notification.text,
                title=notification.title,
                notify_type=notify_type(notification),
                attach=files or None,
            )
        if not delivered:
            # Apprise masks the URL's secrets; its query (headers, options) is cut.
            where = hub.urls(privacy=True)[0].partition("?")[0]
            raise DeliveryFailed(f"Apprise did not deliver to {where}", retryable=True)


@contextmanager
def attached_files(notification: Notification) -> Iterator[list[str]]:
    """The paths of `notification`'s attachments, written to a temporary
    folder that is gone once the block ends."""
    if not notification.attachments:
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="atalaia-attach-") as folder:
        paths = []
        for number, attachment in enumerate(notification.attachments):
            path = Path(folder) / str(number) / Path(attachment.filename).name
            path.parent.mkdir()
            path.write_bytes(attachment.content)
            paths.append(str(path))
        yield paths


def notify_type(notification: Notification) -> apprise.NotifyType:
    """How Apprise colours the notification: a resolved incident in success,
    the others by severity."""
    if notification.event == "incident.resolved":
        return apprise.NotifyType.SUCCESS
    return NOTIFY_TYPES.get(notification.severity, apprise.NotifyType.INFO)


class _ToStructlog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log.warning("notify.apprise_log", message=record.getMessage())


def route_apprise_logs() -> None:
    """Send Apprise's warnings and errors to structlog, and nothing else of its
    log (its debug lines may show a URL's secrets). Idempotent."""
    logger = logging.getLogger(apprise.LOGGER_NAME)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    if not any(isinstance(handler, _ToStructlog) for handler in logger.handlers):
        logger.addHandler(_ToStructlog())
