"""Scheduled reports on SQLite and PostgreSQL: last week's report stored, its
notifications queued once per channel, delivered with their files attached
(e-mail over a real SMTP server) or linked (webhook)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AlertConfig, AuditLog, ReportFileStore
from atalaia.adapters.db.tables import NotificationRow, PlatformEventRow
from atalaia.adapters.notify import ChannelSender
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.notifications import Channel
from atalaia.core.schedule import last_week
from atalaia.errors import Conflict
from atalaia.services import reports
from atalaia.services.alerter import Alerter
from atalaia.services.reports import scheduled
from atalaia.settings import ReportSubscription, Settings
from fixtures.receivers import Mailbox, Receiver
from fixtures.reports import CRITICAL_SENSOR, fill_week, pdf_text

Sessions = sessionmaker[Session]
NOW = datetime.now(UTC)
START, END = last_week(NOW)
WEEKLY = ReportSubscription(
    name="weekly", formats=["pdf", "xlsx"], channels=["mail", "hook"]
)


@pytest.fixture
def artifacts(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def delivery(artifacts: LocalArtifactStore) -> reports.Delivery:
    return reports.Delivery(artifacts, None, "https://atalaia.plant.example/")


@pytest.fixture
def week(sessions: Sessions) -> Sessions:
    """Last week's incidents and rollups, half a day before its end."""
    fill_week(sessions, (END - timedelta(hours=12)).timestamp())
    return sessions


def send(
    sessions: Sessions,
    delivery: reports.Delivery,
    *subscriptions: ReportSubscription,
    now: datetime = NOW,
) -> reports.ScheduledRun:
    return reports.send_scheduled_reports(
        sessions=sessions, subscriptions=subscriptions or [WEEKLY],
        delivery=delivery, now=now,
    )  # fmt: skip


def outbox(sessions: Sessions) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(NotificationRow.key, NotificationRow.channel, NotificationRow.state)
            .order_by(NotificationRow.channel)
        ).all()  # fmt: skip
    return [(key, channel, state) for key, channel, state in rows]


class TestSendScheduledReports:
    def test_stores_last_weeks_files_and_queues_a_message_per_channel(
        self, week: Sessions, delivery: reports.Delivery, artifacts: LocalArtifactStore,
        tmp_path: Path,
    ) -> None:  # fmt: skip
        run = send(week, delivery)

        assert run.error is None
        assert (run.period_start, run.period_end) == (
            START.isoformat(), END.isoformat(),
        )  # fmt: skip
        with week() as session:
            files = ReportFileStore(session).page(before=None, limit=10)
            events = session.scalars(
                select(PlatformEventRow.key).where(
                    PlatformEventRow.event == "report.ready"
                )
            ).all()
            audited = AuditLog(session).details("scheduler.report", since=START)
        assert sorted(f.format for f in files) == ["pdf", "xlsx"]
        assert sorted(run.stored["weekly"]) == sorted(f.id for f in files)
        pdf = next(f for f in files if f.format == "pdf")
        assert (pdf.period_start, pdf.period_end) == (START, END)
        assert pdf.file_name.endswith(f"{START:%Y%m%d}-{END:%Y%m%d}.pdf")
        body = artifacts.get(pdf.artifact_key)
        assert len(body) == pdf.size
        assert CRITICAL_SENSOR in pdf_text(body, tmp_path)
        key = f"report.weekly.{START:%Y-%m-%d}"
        assert outbox(week) == [
            (f"{key}.hook", "hook", "pending"), (f"{key}.mail", "mail", "pending"),
        ]  # fmt: skip
        assert events == [key]
        assert [a["stored"] for a in audited] == [run.stored]

    def test_a_rerun_in_the_same_week_stores_and_sends_nothing(
        self, week: Sessions, delivery: reports.Delivery
    ) -> None:
        first = send(week, delivery)
        again = send(week, delivery, now=NOW + timedelta(hours=1))

        assert list(first.stored) == ["weekly"]
        assert (again.stored, again.skipped) == ({}, ["weekly"])
        assert len(outbox(week)) == 2

    def test_a_second_run_racing_the_first_gets_a_conflict_and_leaves_no_file(
        self, week: Sessions, delivery: reports.Delivery, artifacts: LocalArtifactStore
    ) -> None:
        send(week, delivery)
        period = reports.Period(START.timestamp(), END.timestamp())

        # What a second scheduler does that checked before the first stored.
        with pytest.raises(Conflict) as refused:
            scheduled._store_and_send(week, WEEKLY, period, delivery)

        assert refused.value.rule == "one_report_per_period"
        assert len(outbox(week)) == 2
        stored = list((artifacts.root / "reports" / "weekly").iterdir())
        assert len(stored) == 2  # the first run's pdf and xlsx alone

    def test_each_subscription_has_its_own_report_and_a_failure_is_said(
        self, week: Sessions, delivery: reports.Delivery
    ) -> None:
        site = ReportSubscription(name="no-site", asset="nowhere", channels=["mail"])

        run = send(week, delivery, site, WEEKLY)

        assert list(run.stored) == ["weekly"]
        assert run.error is not None
        assert run.error.startswith("no-site: ")
        with week() as session:
            failed = AuditLog(session).details("scheduler.report_failed", since=START)
        assert [f["error"] for f in failed] == [run.error]


class TestDelivery:
    @pytest.fixture
    def alerter(
        self, week: Sessions, settings: Settings, smtp_port: int, tmp_path: Path,
        receiver: Receiver,
    ) -> Iterator[Alerter]:  # fmt: skip
        with week() as session:
            config = AlertConfig(session)
            config.put_channel(Channel("mail", "email", "ops@plant.example"), 60, "api")
            config.put_channel(
                Channel("hook", "webhook", receiver.url("/hook")), 60, "api"
            )
            config.put_channel(
                Channel("down", "webhook", receiver.url("/status/503")), 60, "api"
            )
            session.commit()
        update = {
            "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
            "notify_timeout_s": 2.0, "artifacts_dir": tmp_path / "artifacts",
        }  # fmt: skip
        sender = ChannelSender.from_settings(settings.model_copy(update=update))
        try:
            yield Alerter(week, sender)
        finally:
            sender.close()

    def test_email_gets_the_files_attached_and_a_webhook_the_links(
        self, week: Sessions, delivery: reports.Delivery, alerter: Alerter,
        mailbox: Mailbox, receiver: Receiver, tmp_path: Path,
    ) -> None:  # fmt: skip
        run = send(week, delivery)

        assert alerter.deliver() == 2
        assert alerter.deliver() == 0  # sent once
        ((recipients, message),) = mailbox.messages
        assert recipients == ["ops@plant.example"]
        assert "Fleet report: " in str(message["Subject"])
        parts = {
            str(p.get_filename()): (p.get_content_type(), p.get_content())
            for p in message.iter_attachments()
        }
        with week() as session:
            files = {
                f.file_name: f
                for f in ReportFileStore(session).page(before=None, limit=9)
            }
        assert sorted(parts) == sorted(files)
        for name, (media_type, content) in parts.items():
            assert media_type == files[name].media_type
            assert len(content) == files[name].size
        pdf = next(c for t, c in parts.values() if t == "application/pdf")
        assert CRITICAL_SENSOR in pdf_text(pdf, tmp_path)
        (hook,) = receiver.requests
        links = [f["url"] for f in hook.body["data"]["files"]]
        assert links == [
            f"https://atalaia.plant.example/api/v1/reports/files/{i}"
            for i in run.stored["weekly"]
        ]
        assert all(link in hook.body["text"] for link in links)
        assert "attachments" in hook.body["data"]  # what it names, not the bytes

    def test_a_rule_routing_report_ready_gets_the_event_too(
        self, week: Sessions, delivery: reports.Delivery, alerter: Alerter,
        mailbox: Mailbox, receiver: Receiver,
    ) -> None:  # fmt: skip
        with week() as session:
            rule = {"name": "reports", "channels": ["hook"], "events": ["report.ready"]}
            AlertConfig(session).put_rule("reports", rule, "api")
            session.commit()
        send(week, delivery, ReportSubscription(name="mail", channels=["mail"]))

        alerter.step()  # the platform event, through the rules

        assert alerter.deliver() == 2
        assert len(mailbox.messages) == 1
        (hook,) = receiver.requests
        assert hook.body["event"] == "report.ready"
        assert hook.body["data"]["subscription"] == "mail"

    def test_a_failing_channel_is_kept_pending_with_its_error(
        self, week: Sessions, delivery: reports.Delivery, alerter: Alerter,
    ) -> None:  # fmt: skip
        down = ReportSubscription(name="down", channels=["down"])
        send(week, delivery, down)

        assert alerter.deliver() == 0
        with week() as session:
            (listed,) = reports.list_report_files(session, before=None, limit=5)
        (failed,) = listed.deliveries
        assert (failed.channel, failed.state, failed.attempts) == ("down", "pending", 1)
        assert failed.last_error is not None
        assert "HTTP 503" in failed.last_error

    def test_a_file_gone_from_the_store_fails_its_email_for_good(
        self, week: Sessions, delivery: reports.Delivery, alerter: Alerter,
        artifacts: LocalArtifactStore, mailbox: Mailbox,
    ) -> None:  # fmt: skip
        mail = ReportSubscription(name="mail", channels=["mail"])
        send(week, delivery, mail)
        with week() as session:
            (listed,) = reports.list_report_files(session, before=None, limit=5)
        artifacts.delete(listed.file.artifact_key)

        assert alerter.deliver() == 0
        with week() as session:
            (listed,) = reports.list_report_files(session, before=None, limit=5)
        (failed,) = listed.deliveries
        assert failed.state == "failed"
        assert mailbox.messages == []
