"""`email` channel: a plain-text message through the SMTP server of the settings,
with the notification's files attached.

The message's `Message-ID` comes from the notification's key, so every attempt
carries the same one. A server that cannot be reached or answers 4xx may take
the message later (retryable); a 5xx answer (an address or login refused), a
malformed address or a missing server never will.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

from atalaia.core.notifications import Channel, DeliveryFailed, Notification
from atalaia.settings import Settings

# Characters kept as they are in a Message-ID; the others become =XX (UTF-8).
MESSAGE_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]")
REPLY_CHARS = 200  # of a server's answer, in a failure's detail


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how e-mail is handed over; `host` None: no server configured."""

    host: str | None
    port: int
    user: str | None
    password: str | None
    starttls: bool
    ssl: bool
    sender: str
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpServer:
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=password.get_secret_value() if password else None,
            starttls=settings.smtp_starttls,
            ssl=settings.smtp_ssl,
            sender=settings.smtp_from,
            timeout_s=settings.smtp_timeout_s,
        )


class EmailSender:
    """Sends a notification by e-mail to the channel's addresses (comma
    separated); raises `DeliveryFailed`."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    def send(self, channel: Channel, notification: Notification) -> None:
        host = self._server.host
        if host is None:
            raise DeliveryFailed(
                "email needs an SMTP server: set ATALAIA_SMTP_HOST", retryable=False
            )
        recipients = parse_recipients(channel.target)
        message = email_message(
            notification, sender=self._server.sender, recipients=recipients
        )
        where = f"SMTP {host}:{self._server.port}"
        try:
            refused = self._deliver(host, message)
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
            raise _refused(where, exc.recipients, delivered=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(
                f"{where}: {_reply(exc.smtp_code, exc.smtp_error)}",
                retryable=400 <= exc.smtp_code < 500,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS, AUTH, SMTPUTF8
            raise DeliveryFailed(f"{where}: {exc}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:  # unreachable, cut, timed out
            raise DeliveryFailed(
                f"{where}: {type(exc).__name__}", retryable=True
            ) from exc
        if refused:
            raise _refused(where, refused, delivered=True)

    def _deliver(
        self, host: str, message: EmailMessage
    ) -> dict[str, tuple[int, bytes]]:
        """Hand `message` over; the recipients refused while others took it."""
        server = self._server
        with self._connect(host) as smtp:
            if server.starttls and not server.ssl:
                smtp.starttls(context=ssl.create_default_context())
            if server.user is not None:
                smtp.login(server.user, server.password or "")
            return smtp.send_message(message)

    def _connect(self, host: str) -> smtplib.SMTP:
        server = self._server
        if server.ssl:
            return smtplib.SMTP_SSL(
                host,
                server.port,
                timeout=server.timeout_s,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(host, server.port, timeout=server.timeout_s)


def email_message(
    notification: Notification, *, sender: str, recipients: list[str]
) -> EmailMessage:
    """The plain-text message of `notification`, identified by its key, with
    its attachments."""
    message = EmailMessage()
    title = " ".join(notification.title.split())  # a header holds one line
    message["Subject"] = f"[atalaia] {notification.severity}: {title}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(notification.created_at, usegmt=True)
    message["Message-ID"] = message_id(notification.key)
    message["X-Atalaia-Key"] = notification.key
    message.set_content(notification.text)
    for attachment in notification.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype,
            filename=attachment.filename,
        )  # fmt: skip
    return message


def message_id(key: str) -> str:
    """A Message-ID that only `key` yields: characters other than letters,
    digits, `_` and `-` are written =XX, byte by byte.

    >>> message_id("incident:42/opened")
    '<incident=3A42=2Fopened@atalaia>'
    """
    local = MESSAGE_ID_SAFE.sub(
        lambda match: "".join(f"={byte:02X}" for byte in match[0].encode()), key
    )
    return f"<{local}@atalaia>"


def parse_recipients(target: str) -> list[str]:
    """The addresses of `target` (comma separated), each a bare `user@domain`;
    none, or a malformed one, raises `DeliveryFailed` (not retryable)."""
    addresses = [part.strip() for part in target.split(",") if part.strip()]
    if not addresses:
        raise DeliveryFailed("email channel names no address", retryable=False)
    for address in addresses:
        try:
            Address(addr_spec=address)
        except (ValueError, IndexError, HeaderParseError) as exc:
            raise DeliveryFailed(
                f"malformed e-mail address {address!r}", retryable=False
            ) from exc
    return addresses


def _refused(
    where: str, refused: dict[str, tuple[int, bytes]], *, delivered: bool
) -> DeliveryFailed:
    """Recipients the server refused. Retryable only when every one was, each
    with a 4xx: had others taken the message, a retry would repeat it to them."""
    replies = "; ".join(f"{a}: {_reply(c, e)}" for a, (c, e) in refused.items())
    temporary = all(400 <= code < 500 for code, _ in refused.values())
    if delivered:
        replies += " (the other recipients took it)"
    return DeliveryFailed(
        f"{where} refused {replies}", retryable=temporary and not delivered
    )


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"[:REPLY_CHARS]
