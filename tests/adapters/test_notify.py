"""Notification channels against real receivers: an HTTP server in a thread, an
SMTP server (aiosmtpd), and Apprise posting to that HTTP server."""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

import atalaia
from atalaia.adapters.notify import ChannelSender
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.notifications import (
    ATTACHMENTS,
    CHANNEL_TYPES,
    Channel,
    ChannelType,
    DeliveryFailed,
    Notification,
    StoredFile,
)
from atalaia.settings import Settings
from fixtures.receivers import Mailbox, Receiver
from fixtures.s3 import through
from fixtures.tcp_proxy import TcpProxy

TIMEOUT_S = 0.3  # of the HTTP channels: the slow receiver answers later
NOTIFICATION = Notification(
    key="incident:42:opened",
    event="incident.opened",
    severity="critical",
    title="Bearing 7 vibrates",
    text="sensor_007_radial scored 9.1 at 12:00 UTC",
    created_at=1_767_225_600.0,  # 2026-01-01T00:00:00Z
    document={"incident_id": 42, "series_id": "sensor_007_radial"},
)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_records() -> Iterator[list[logging.LogRecord]]:
    """Every record that reaches the root logger (stderr, in a process)."""
    records: list[logging.LogRecord] = []
    root, handler = logging.getLogger(), _Keep(records)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


SenderFactory = Callable[..., ChannelSender]


@pytest.fixture
def make_sender(settings: Settings) -> Iterator[SenderFactory]:
    """`make_sender(**settings_overrides)`: a ChannelSender, closed afterwards."""
    senders: list[ChannelSender] = []

    def make(**overrides: Any) -> ChannelSender:
        update = {"notify_timeout_s": TIMEOUT_S, "smtp_timeout_s": 2.0} | overrides
        senders.append(ChannelSender.from_settings(settings.model_copy(update=update)))
        return senders[-1]

    yield make
    for sender in senders:
        sender.close()


@pytest.fixture
def sender(make_sender: SenderFactory, smtp_port: int) -> ChannelSender:
    return make_sender(smtp_host="127.0.0.1", smtp_port=smtp_port)


def failure(sender: ChannelSender, type_: ChannelType, target: str) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        sender.send(Channel("ops", type_, target), NOTIFICATION)
    return caught.value


class TestWebhook:
    def test_posts_the_notification_with_its_key(
        self, sender: ChannelSender, receiver: Receiver
    ) -> None:
        sender.send(Channel("ops", "webhook", receiver.url("/hook")), NOTIFICATION)

        [request] = receiver.requests
        assert request.path == "/hook"
        assert request.body == {
            "key": "incident:42:opened",
            "event": "incident.opened",
            "severity": "critical",
            "title": "Bearing 7 vibrates",
            "text": "sensor_007_radial scored 9.1 at 12:00 UTC",
            "created_at": "2026-01-01T00:00:00+00:00",
            "data": {"incident_id": 42, "series_id": "sensor_007_radial"},
        }
        assert request.headers["Idempotency-Key"] == "incident:42:opened"
        assert request.headers["User-Agent"] == f"atalaia/{atalaia.__version__}"
        assert request.headers["Content-Type"] == "application/json"

    @pytest.mark.parametrize(
        ("status", "retryable"),
        [(500, True), (503, True), (429, True), (408, True), (400, False),
         (404, False), (301, False)],
    )  # fmt: skip
    def test_an_answer_other_than_2xx_fails(
        self, sender: ChannelSender, receiver: Receiver, status: int, retryable: bool
    ) -> None:
        failed = failure(sender, "webhook", receiver.url(f"/status/{status}"))

        assert (str(failed), failed.retryable) == (
            f"POST {receiver.url('')}: HTTP {status}",
            retryable,
        )

    def test_an_unreachable_receiver_is_retryable(
        self, sender: ChannelSender, closed_port: int
    ) -> None:
        failed = failure(sender, "webhook", f"http://127.0.0.1:{closed_port}/hook")

        assert failed.retryable
        assert "ConnectError" in str(failed)

    def test_a_receiver_slower_than_the_timeout_is_retryable(
        self, sender: ChannelSender, receiver: Receiver
    ) -> None:
        failed = failure(sender, "webhook", receiver.url("/slow"))

        assert failed.retryable
        assert "ReadTimeout" in str(failed)

    def test_the_failure_shows_no_credentials_of_the_url(
        self, sender: ChannelSender, receiver: Receiver
    ) -> None:
        port = receiver.server_address[1]
        target = f"http://user:pw-secret@127.0.0.1:{port}/status/400?token=q-secret"

        failed = failure(sender, "webhook", target)

        assert str(failed) == f"POST http://127.0.0.1:{port}: HTTP 400"
        assert receiver.requests[0].headers["Authorization"].startswith("Basic ")

    @pytest.mark.parametrize("target", ["ftp://127.0.0.1/hook", "hooks.example.com"])
    def test_a_target_that_is_no_http_url_is_not_retryable(
        self, sender: ChannelSender, target: str
    ) -> None:
        assert not failure(sender, "webhook", target).retryable


class TestSlack:
    def test_posts_the_slack_form_with_the_key(
        self, sender: ChannelSender, receiver: Receiver
    ) -> None:
        sender.send(
            Channel("chat", "slack", receiver.url("/services/T/B/X")), NOTIFICATION
        )

        [request] = receiver.requests
        assert request.body == {
            "text": "*Bearing 7 vibrates*\nsensor_007_radial scored 9.1 at 12:00 UTC"
        }
        assert request.headers["Idempotency-Key"] == "incident:42:opened"

    def test_a_server_error_is_retryable(
        self, sender: ChannelSender, receiver: Receiver
    ) -> None:
        assert failure(sender, "slack", receiver.url("/status/503")).retryable


class TestEmail:
    def test_delivers_the_message_to_every_address(
        self, sender: ChannelSender, mailbox: Mailbox
    ) -> None:
        channel = Channel("ops", "email", "ops@plant.example, oncall@plant.example")

        sender.send(channel, NOTIFICATION)

        [(recipients, message)] = mailbox.messages
        assert recipients == ["ops@plant.example", "oncall@plant.example"]
        assert message["Subject"] == "[atalaia] critical: Bearing 7 vibrates"
        assert message["From"] == "atalaia@localhost"
        assert message["To"] == "ops@plant.example, oncall@plant.example"
        assert message["Message-ID"] == "<incident=3A42=3Aopened@atalaia>"
        assert message["X-Atalaia-Key"] == "incident:42:opened"
        assert message["Date"].datetime == datetime(2026, 1, 1, tzinfo=UTC)
        assert message.get_content().rstrip() == NOTIFICATION.text

    def test_a_recipient_refused_for_good_is_not_retryable(
        self, sender: ChannelSender, mailbox: Mailbox
    ) -> None:
        failed = failure(sender, "email", "nobody@refused.example")

        assert not failed.retryable
        assert "550 5.1.1 no such mailbox" in str(failed)
        assert mailbox.messages == []

    def test_a_recipient_refused_for_now_is_retryable(
        self, sender: ChannelSender
    ) -> None:
        failed = failure(sender, "email", "ops@busy.example")

        assert failed.retryable
        assert "451 4.3.0 try again later" in str(failed)

    def test_a_partial_refusal_is_not_retryable_as_the_others_took_it(
        self, sender: ChannelSender, mailbox: Mailbox
    ) -> None:
        failed = failure(sender, "email", "ops@plant.example, ops@busy.example")

        assert not failed.retryable
        assert "ops@busy.example: 451" in str(failed)
        assert [recipients for recipients, _ in mailbox.messages] == [
            ["ops@plant.example"]
        ]

    def test_a_server_down_is_retryable(
        self, make_sender: SenderFactory, closed_port: int
    ) -> None:
        sender = make_sender(smtp_host="127.0.0.1", smtp_port=closed_port)

        failed = failure(sender, "email", "ops@plant.example")

        assert failed.retryable
        assert "ConnectionRefusedError" in str(failed)

    @pytest.mark.parametrize(
        "target",
        ["ops", "ops@", "ops@plant.example,ops@@x", "Ops <ops@x.example>", " , "],
    )
    def test_a_malformed_address_is_not_retryable(
        self, sender: ChannelSender, mailbox: Mailbox, target: str
    ) -> None:
        assert not failure(sender, "email", target).retryable
        assert mailbox.messages == []

    def test_without_an_smtp_server_it_is_not_retryable(
        self, make_sender: SenderFactory
    ) -> None:
        failed = failure(make_sender(), "email", "ops@plant.example")

        assert not failed.retryable
        assert "ATALAIA_SMTP_HOST" in str(failed)


class TestApprise:
    def test_delivers_through_an_apprise_url(
        self, sender: ChannelSender, receiver: Receiver
    ) -> None:
        sender.send(
            Channel("ntfy", "apprise", receiver.url("/apprise", "json")), NOTIFICATION
        )

        [request] = receiver.requests
        assert request.path == "/apprise"
        assert (request.body["title"], request.body["message"]) == (
            NOTIFICATION.title,
            NOTIFICATION.text,
        )
        assert request.body["type"] == "failure"  # a critical notification

    def test_an_unreachable_receiver_is_retryable_and_apprise_stays_quiet(
        self,
        sender: ChannelSender,
        closed_port: int,
        root_records: list[logging.LogRecord],
    ) -> None:
        failed = failure(sender, "apprise", f"json://127.0.0.1:{closed_port}/a")

        assert failed.retryable
        assert f"json://127.0.0.1:{closed_port}/a" in str(failed)
        assert [r for r in root_records if r.name.startswith("apprise")] == []

    def test_a_url_apprise_does_not_know_is_not_retryable(
        self, sender: ChannelSender
    ) -> None:
        assert not failure(sender, "apprise", "nosuchservice://x").retryable


def test_sends_by_every_channel_type(
    sender: ChannelSender, receiver: Receiver, mailbox: Mailbox
) -> None:
    targets: dict[ChannelType, str] = {
        "webhook": receiver.url("/webhook"),
        "slack": receiver.url("/slack"),
        "email": "ops@plant.example",
        "apprise": receiver.url("/apprise", "json"),
    }
    assert set(targets) == set(CHANNEL_TYPES)
    for type_, target in targets.items():
        sender.send(Channel(type_, type_, target), NOTIFICATION)

    assert [r.path for r in receiver.requests] == ["/webhook", "/slack", "/apprise"]
    assert len(mailbox.messages) == 1


class TestAttachments:
    """A notification naming stored files (a scheduled report's)."""

    PDF = b"%PDF-1.7 a report"

    @pytest.fixture
    def with_file(self, settings: Settings) -> Notification:
        LocalArtifactStore(settings.artifacts_path).put("reports/w/1.pdf", self.PDF)
        stored = StoredFile("reports/w/1.pdf", "week.pdf", "application/pdf")
        document = {**NOTIFICATION.document, ATTACHMENTS: [stored.document()]}
        return replace(NOTIFICATION, document=document)

    def test_email_carries_the_file(
        self, sender: ChannelSender, mailbox: Mailbox, with_file: Notification
    ) -> None:
        sender.send(Channel("ops", "email", "ops@plant.example"), with_file)

        [(_, message)] = mailbox.messages
        [attached] = message.iter_attachments()
        assert attached.get_filename() == "week.pdf"
        assert attached.get_content_type() == "application/pdf"
        assert attached.get_content() == self.PDF
        body = message.get_body(("plain",))
        assert body is not None
        assert body.get_content().rstrip() == NOTIFICATION.text

    def test_apprise_carries_the_file(
        self, sender: ChannelSender, receiver: Receiver, with_file: Notification
    ) -> None:
        sender.send(Channel("n", "apprise", receiver.url("/a", "json")), with_file)

        [request] = receiver.requests
        [attached] = request.body["attachments"]
        assert attached["filename"] == "week.pdf"
        assert base64.b64decode(attached["base64"]) == self.PDF

    def test_a_webhook_gets_the_document_naming_the_file_not_its_bytes(
        self, sender: ChannelSender, receiver: Receiver, with_file: Notification
    ) -> None:
        sender.send(Channel("hook", "webhook", receiver.url("/hook")), with_file)

        [request] = receiver.requests
        assert request.body["data"][ATTACHMENTS] == with_file.document[ATTACHMENTS]

    def test_a_file_no_longer_stored_is_not_retryable(
        self, sender: ChannelSender, settings: Settings, with_file: Notification
    ) -> None:
        LocalArtifactStore(settings.artifacts_path).delete("reports/w/1.pdf")

        with pytest.raises(DeliveryFailed) as caught:
            sender.send(Channel("ops", "email", "ops@plant.example"), with_file)

        assert not caught.value.retryable
        assert "reports/w/1.pdf" in str(caught.value)

    def test_a_store_that_cannot_be_read_now_is_retryable(
        self,
        make_sender: SenderFactory,
        s3_proxy: TcpProxy,
        s3_bucket: str,
        with_file: Notification,
    ) -> None:
        sender = make_sender(
            artifacts_url=f"s3://{s3_bucket}/atalaia",
            s3_endpoint_url=through(s3_proxy),
            s3_path_style=True,
            s3_connect_timeout_s=0.5,
            s3_max_attempts=1,
        )
        s3_proxy.cut()

        with pytest.raises(DeliveryFailed) as caught:
            sender.send(Channel("ops", "email", "ops@plant.example"), with_file)

        assert caught.value.retryable
        assert "artifact store" in str(caught.value)
