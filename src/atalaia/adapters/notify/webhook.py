"""`webhook` and `slack` channels: a notification POSTed as JSON over httpx.

Every attempt carries the notification's key as `Idempotency-Key`. A receiver
that cannot be reached, times out, or answers 5xx, 429 or 408 may take the
notification later (retryable); any other answer but 2xx never will.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

import atalaia
from atalaia.core.notifications import Channel, DeliveryFailed, Notification

# Answers that say "not now" rather than "never".
RETRYABLE_STATUSES = frozenset({408, 429})

Render = Callable[[Notification], dict[str, Any]]


def webhook_document(notification: Notification) -> dict[str, Any]:
    """The JSON a `webhook` receives: the notification's fields, and its
    document under `data`."""
    created_at = datetime.fromtimestamp(notification.created_at, UTC)
    return {
        "key": notification.key,
        "event": notification.event,
        "severity": notification.severity,
        "title": notification.title,
        "text": notification.text,
        "created_at": created_at.isoformat(),
        "data": dict(notification.document),
    }


def slack_message(notification: Notification) -> dict[str, Any]:
    """The Slack incoming-webhook form: the title in bold, then the text."""
    return {"text": f"*{notification.title}*\n{notification.text}"}


def http_client(*, timeout_s: float) -> httpx.Client:
    """The client every HTTP channel shares: `timeout_s` bounds connecting,
    writing and each read; redirects are answers, not followed."""
    headers = {"User-Agent": f"atalaia/{atalaia.__version__}"}
    return httpx.Client(timeout=timeout_s, headers=headers, follow_redirects=False)


class HttpSender:
    """Sends a notification by POSTing `render(notification)` to the channel's
    target URL; raises `DeliveryFailed`."""

    def __init__(self, client: httpx.Client, *, render: Render) -> None:
        self._client = client
        self._render = render

    def send(self, channel: Channel, notification: Notification) -> None:
        where = describe_url(channel.target)
        headers = {"Idempotency-Key": notification.key}
        try:
            answer = self._client.post(
                channel.target, json=self._render(notification), headers=headers
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise DeliveryFailed(
                f"{where}: not an http(s) URL", retryable=False
            ) from exc
        except httpx.HTTPError as exc:  # connect, read, write errors and timeouts
            raise DeliveryFailed(
                f"POST {where}: {type(exc).__name__}", retryable=True
            ) from exc
        if not answer.is_success:
            status = answer.status_code
            raise DeliveryFailed(
                f"POST {where}: HTTP {status}",
                retryable=status >= 500 or status in RETRYABLE_STATUSES,
            )


def describe_url(url: str) -> str:
    """`url`'s scheme, host and port alone: user info, query and path may hold
    credentials (a Slack webhook's path is its secret).

    >>> describe_url("https://user:pw@hooks.example.com/services/T0/B0/XYZ?t=1")
    'https://hooks.example.com'
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "an invalid URL"
    if not parsed.netloc:
        return "a URL without a host"
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
