"""Scheduled reports: each subscription's report of the last whole week,
stored and sent, once.

The scheduler's `report` task runs `send_scheduled_reports`. For each
subscription (`settings.ReportSubscription`) whose report of the week is not
stored yet, the report is gathered and rendered in each of its formats (here,
in the scheduler: no request waits for it, and its reads are not bound by
a request's statement timeout), each file put in the artifact
store, then in one transaction: the files recorded (`report_files`, one per
subscription, period and format: the database keeps it so, and the run that
comes second — another scheduler, a rerun — gets Conflict, removes its files
and sends nothing), a notification per channel of the subscription put in the
outbox, and a `report.ready` platform event logged (for the rules that route
it). The alerter delivers the notifications as it does every other: retried
with backoff while a failure may pass, each failure kept on its row, which
`GET /reports/files` shows. `email` and `apprise` channels get the files
attached, the others a link to each (`GET /api/v1/reports/files/{id}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from atalaia.adapters.db.patience import patient
from atalaia.adapters.db.repositories import AuditLog, Outbox, ReportFileStore
from atalaia.core.notifications import ATTACHMENTS, Notification, StoredFile
from atalaia.core.ports import ArtifactStore
from atalaia.core.report_files import ReportFile
from atalaia.core.schedule import Task, last_week
from atalaia.errors import AtalaiaError, Conflict
from atalaia.services import platform_events
from atalaia.services.reports.build import fleet_report
from atalaia.services.reports.content import Period, Report
from atalaia.services.reports.pdf import render_pdf
from atalaia.services.reports.workbook import render_xlsx
from atalaia.services.training import new_job_id
from atalaia.services.training_chunk import SessionFactory
from atalaia.settings import ReportSubscription

log = structlog.get_logger()

ACTOR = "scheduler"
FILES_PATH = "/api/v1/reports/files"
SUMMARY_LINES = 8  # of the report's headline figures, in the message's text
# How long each of a scheduled report's reads may take (a request's are bounded
# by ATALAIA_DB_STATEMENT_TIMEOUT_S): a week of 90,000 series reads ~18 s in all.
GATHER_S = 900.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the scheduled reports go: the artifact store, the site's report
    templates, and the address links in messages start with."""

    artifacts: ArtifactStore
    templates_dir: Path | None
    public_url: str


@dataclass(slots=True)
class ScheduledRun:
    """What a run did: the files it stored (subscription → ids), the
    subscriptions whose report of the week was stored already, and why one
    failed."""

    period_start: str
    period_end: str
    stored: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None

    def detail(self) -> dict[str, object]:
        return {"task": Task.REPORT.value} | asdict(self)


def send_scheduled_reports(
    *,
    sessions: SessionFactory,
    subscriptions: Sequence[ReportSubscription],
    delivery: Delivery,
    now: datetime,
) -> ScheduledRun:
    """Store and send each subscription's report of the last whole week
    before `now` that is not stored yet; audit the run (`scheduler.report`)."""
    start, end = last_week(now)
    run = ScheduledRun(start.isoformat(), end.isoformat())
    period = Period(start.timestamp(), end.timestamp())
    for subscription in subscriptions:
        with sessions() as session:
            if ReportFileStore(session).made(subscription.name, start):
                run.skipped.append(subscription.name)
                continue
        try:
            files = _store_and_send(sessions, subscription, period, delivery)
        except Conflict:
            run.skipped.append(subscription.name)  # another run was first
            continue
        except AtalaiaError as exc:  # a node gone, WeasyPrint missing, a store down
            run.error = f"{subscription.name}: {exc.detail}"
            continue
        run.stored[subscription.name] = [f.id for f in files]
    _audit(sessions, run)
    return run


def _store_and_send(
    sessions: SessionFactory,
    subscription: ReportSubscription,
    period: Period,
    delivery: Delivery,
) -> list[ReportFile]:
    with sessions() as session, patient(session, GATHER_S):
        report = fleet_report(session, period, asset=subscription.asset)
    files = [
        _put(report, subscription, form, delivery) for form in subscription.formats
    ]
    try:
        with sessions() as session:
            ReportFileStore(session).add(files)
            notifications = _notifications(report, subscription, files, delivery)
            Outbox(session).add(
                (channel, f"report:{subscription.name}", None, notification)
                for channel, notification in notifications
            )
            first = notifications[0][1]
            platform_events.report_ready(
                session, files[0].delivery_key, first.title, first.text,
                first.document,
            )  # fmt: skip
            session.commit()
    except BaseException:
        for stored in files:
            delivery.artifacts.delete(stored.artifact_key)
        raise
    log.info(
        "reports.scheduled_stored",
        subscription=subscription.name,
        files=[f.id for f in files],
        channels=subscription.channels,
    )
    return files


def _put(
    report: Report, subscription: ReportSubscription, form: str, delivery: Delivery
) -> ReportFile:
    """Render `report` as `form` and put it in the artifact store."""
    if form == "pdf":
        body = render_pdf(report, templates_dir=delivery.templates_dir)
    else:
        body = render_xlsx(report)
    file_id = new_job_id()  # sorts by creation
    file_name = f"{report.filename_stem}.{form}"
    key = f"reports/{subscription.name}/{file_id}.{form}"
    delivery.artifacts.put(key, body)
    start = report.period.start_at
    return ReportFile(
        id=file_id, subscription=subscription.name, kind=report.kind,
        asset=subscription.asset, period_start=start, period_end=report.period.end_at,
        format=form, file_name=file_name, artifact_key=key, size=len(body),
        channels=tuple(subscription.channels),
        delivery_key=f"report.{subscription.name}.{start:%Y-%m-%d}",
        created_at=datetime.now(UTC),
    )  # fmt: skip


def _notifications(
    report: Report,
    subscription: ReportSubscription,
    files: Sequence[ReportFile],
    delivery: Delivery,
) -> list[tuple[str, Notification]]:
    """The message of the stored `files`, one per channel of `subscription`."""
    base = delivery.public_url.rstrip("/")
    links = [(f, f"{base}{FILES_PATH}/{f.id}") for f in files]
    period = report.period
    title = f"{report.title}: {period.start_at:%Y-%m-%d} to {period.end_at:%Y-%m-%d}"
    lines = [f"{label}: {value}" for label, value in report.summary[:SUMMARY_LINES]]
    lines += [f"{f.format.upper()} ({f.size:,} bytes): {url}" for f, url in links]
    document = {
        "subscription": subscription.name,
        "asset": subscription.asset,
        "period": {
            "start": period.start_at.isoformat(),
            "end": period.end_at.isoformat(),
        },
        "files": [
            {"id": f.id, "format": f.format, "size": f.size, "url": url}
            for f, url in links
        ],
        ATTACHMENTS: [
            StoredFile(f.artifact_key, f.file_name, f.media_type).document()
            for f in files
        ],
    }
    created = datetime.now(UTC).timestamp()
    key = files[0].delivery_key
    message = Notification(
        key, "report.ready", "info", title, "\n".join(lines), created, document
    )
    return [
        (channel, replace(message, key=f"{key}.{channel}"))
        for channel in subscription.channels
    ]


def _audit(sessions: SessionFactory, run: ScheduledRun) -> None:
    action = Task.REPORT.audit_action + ("_failed" if run.error else "")
    with sessions() as session:
        AuditLog(session).record(
            actor=ACTOR, action=action, target="reports", **run.detail()
        )
        session.commit()
    log.info(action, stored=run.stored, skipped=run.skipped, error=run.error)
