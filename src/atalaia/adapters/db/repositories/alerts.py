"""Alert channels, rules and silences; the notification outbox; the logs the
alerter reads (recoveries, platform events) and how far it has read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories.incidents import parse_cursor
from atalaia.adapters.db.tables import (
    AlertChannelRow,
    AlerterCursorRow,
    AlertRuleRow,
    IncidentRow,
    NotificationRow,
    PlatformEventRow,
    ScoredAnomalyRow,
    SeriesRecoveryRow,
    SilenceRow,
    utcnow,
)
from atalaia.core.incidents import Recovery
from atalaia.core.notifications import Channel, Notification
from atalaia.errors import InvalidInput, NotFound

# Held by a transaction appending recoveries until it ends, as the anomaly
# log's writers do: ids are then given in commit order.
_APPEND_TURN = text("SELECT pg_advisory_xact_lock(7306228153919)")


@dataclass(frozen=True, slots=True)
class StoredChannel:
    channel: Channel
    rate_per_min: int
    source: str


@dataclass(frozen=True, slots=True)
class StoredRule:
    name: str
    spec: dict[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class StoredSilence:
    id: int
    starts_at: float
    ends_at: float
    author: str
    reason: str
    matchers: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A notification in the outbox and its delivery so far."""

    id: int
    channel: str
    rule: str
    incident_id: int | None
    notification: Notification
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    sent_at: float | None


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    id: int
    key: str
    event: str
    series_id: str | None
    title: str
    text: str
    document: dict[str, Any]
    at: float


class NotFoundByName(NotFound):
    rule = "alert_object_exists"


class AlertConfig:
    """Channels, rules and silences."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def channels(self) -> list[StoredChannel]:
        stmt = select(AlertChannelRow).order_by(AlertChannelRow.name)
        return [
            StoredChannel(
                Channel(r.name, r.type, r.target),  # type: ignore[arg-type]
                r.rate_per_min,
                r.source,
            )
            for r in self.session.scalars(stmt)
        ]

    def put_channel(self, channel: Channel, rate_per_min: int, source: str) -> None:
        row = self.session.get(AlertChannelRow, channel.name)
        _owned(row, source, f"channel {channel.name!r}")
        if row is None:
            row = AlertChannelRow(name=channel.name)
            self.session.add(row)
        row.type, row.target = channel.type, channel.target
        row.rate_per_min, row.source, row.updated_at = rate_per_min, source, utcnow()

    def delete_channel(self, name: str, source: str) -> None:
        row = self.session.get(AlertChannelRow, name)
        if row is None:
            raise NotFoundByName(f"no channel {name!r}")
        _owned(row, source, f"channel {name!r}")
        users = [r.name for r in self.rules() if name in _channels_of(r.spec)]
        if users:
            raise InvalidInput(
                f"channel {name!r} is used by rules {', '.join(users)}",
                rule="channel_in_use",
            )
        self.session.delete(row)

    def rules(self) -> list[StoredRule]:
        rows = self.session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.name))
        return [StoredRule(r.name, dict(r.spec), r.source) for r in rows]

    def rule(self, name: str) -> StoredRule | None:
        row = self.session.get(AlertRuleRow, name)
        return None if row is None else StoredRule(row.name, dict(row.spec), row.source)

    def put_rule(self, name: str, spec: Mapping[str, Any], source: str) -> None:
        row = self.session.get(AlertRuleRow, name)
        _owned(row, source, f"rule {name!r}")
        if row is None:
            row = AlertRuleRow(name=name)
            self.session.add(row)
        row.spec, row.source, row.updated_at = dict(spec), source, utcnow()

    def delete_rule(self, name: str, source: str) -> None:
        row = self.session.get(AlertRuleRow, name)
        if row is None:
            raise NotFoundByName(f"no rule {name!r}")
        _owned(row, source, f"rule {name!r}")
        self.session.delete(row)

    def replace_file_config(
        self,
        channels: Sequence[tuple[Channel, int]],
        rules: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> None:
        """Make the file's channels and rules exactly these (those made through
        the API stay; a name the API already uses is refused)."""
        for channel, rate in channels:
            self.put_channel(channel, rate, "file")
        for name, spec in rules:
            self.put_rule(name, spec, "file")
        keep_channels = {c.name for c, _ in channels}
        keep_rules = {name for name, _ in rules}
        self.session.execute(
            delete(AlertRuleRow).where(
                AlertRuleRow.source == "file", AlertRuleRow.name.not_in(keep_rules)
            )
        )
        self.session.execute(
            delete(AlertChannelRow).where(
                AlertChannelRow.source == "file",
                AlertChannelRow.name.not_in(keep_channels),
            )
        )

    def silences(self, *, active_at: float | None = None) -> list[StoredSilence]:
        """Every silence, newest first; or those not yet over at `active_at`."""
        stmt = select(SilenceRow).order_by(SilenceRow.id.desc())
        if active_at is not None:
            stmt = stmt.where(SilenceRow.ends_at > active_at)
        return [_silence(r) for r in self.session.scalars(stmt)]

    def add_silence(
        self, starts_at: float, ends_at: float, author: str, reason: str,
        matchers: Mapping[str, Any],
    ) -> StoredSilence:  # fmt: skip
        row = SilenceRow(
            starts_at=starts_at, ends_at=ends_at, author=author, reason=reason,
            matchers=dict(matchers),
        )  # fmt: skip
        self.session.add(row)
        self.session.flush()
        return _silence(row)

    def silence(self, silence_id: int) -> StoredSilence:
        return _silence(self._silence_row(silence_id))

    def end_silence(self, silence_id: int, at: float) -> StoredSilence:
        """End a silence now (it stays listed, ended)."""
        row = self._silence_row(silence_id)
        row.ends_at = min(row.ends_at, max(at, row.starts_at))
        return _silence(row)

    def _silence_row(self, silence_id: int) -> SilenceRow:
        row = self.session.get(SilenceRow, silence_id)
        if row is None:
            raise NotFoundByName(f"no silence {silence_id}")
        return row


def _channels_of(spec: Mapping[str, Any]) -> set[str]:
    return set(spec.get("channels", ())) | set(spec.get("escalate_to", ()))


def _owned(row: AlertChannelRow | AlertRuleRow | None, source: str, what: str) -> None:
    if row is not None and row.source != source:
        raise InvalidInput(
            f"{what} comes from the {row.source}; change it there",
            rule="alert_config_source",
        )


def _silence(row: SilenceRow) -> StoredSilence:
    return StoredSilence(
        row.id, row.starts_at, row.ends_at, row.author, row.reason, dict(row.matchers)
    )


class Outbox:
    """Notifications stored before they are sent (see `services.alerter`)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def add(self, planned: Iterable[tuple[str, str, int | None, Notification]]) -> int:
        """Store notifications (channel, rule, incident id, notification); one
        whose key is stored already is left as it is. How many were new."""
        rows = [
            {
                "key": n.key, "channel": channel, "rule": rule, "event": n.event,
                "severity": n.severity, "title": n.title[:400], "text": n.text[:4000],
                "document": dict(n.document), "incident_id": incident,
                "state": "pending", "attempts": 0, "next_attempt_at": n.created_at,
                "created_at": n.created_at,
            }
            for channel, rule, incident, n in planned
        ]  # fmt: skip
        if not rows:
            return 0
        upsert = pg_insert if self.postgres else sqlite_insert
        stmt = upsert(NotificationRow).on_conflict_do_nothing(index_elements=["key"])
        result = self.session.execute(stmt.returning(NotificationRow.id), rows)
        return len(result.all())

    def due(self, at: float, limit: int) -> dict[str, list[Outgoing]]:
        """Per channel whose oldest pending notification is due at `at`, its
        pending notifications oldest first (of the `limit` oldest of all): a
        channel's go out one after the other, in order."""
        stmt = (
            select(NotificationRow)
            .where(NotificationRow.state == "pending")
            .order_by(NotificationRow.id)
            .limit(limit)
        )
        queues: dict[str, list[Outgoing]] = {}
        for row in self.session.scalars(stmt):
            queues.setdefault(row.channel, []).append(_outgoing(row))
        return {c: q for c, q in queues.items() if q[0].next_attempt_at <= at}

    def sent(self, notification_id: int, at: float) -> None:
        self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id)
            .values(state="sent", sent_at=at, attempts=NotificationRow.attempts + 1)
        )

    def failed(
        self, notification_id: int, error: str, *, retry_at: float | None
    ) -> None:
        """An attempt failed: try again at `retry_at`, or never (None)."""
        values: dict[str, object] = {
            "attempts": NotificationRow.attempts + 1,
            "last_error": error[:1000],
        }
        if retry_at is None:
            values["state"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
        self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id)
            .values(**values)
        )

    def told(self, incident_ids: Iterable[int]) -> dict[int, dict[str, float]]:
        """Per incident, the rules it was told by and when first."""
        ids = list(set(incident_ids))
        told: dict[int, dict[str, float]] = {}
        for start in range(0, len(ids), 5_000):
            stmt = (
                select(
                    NotificationRow.incident_id, NotificationRow.rule,
                    func.min(NotificationRow.created_at),
                )
                .where(
                    NotificationRow.incident_id.in_(ids[start : start + 5_000]),
                    NotificationRow.event == "incident.opened",
                )
                .group_by(NotificationRow.incident_id, NotificationRow.rule)
            )  # fmt: skip
            for incident, rule, at in self.session.execute(stmt):
                if incident is not None:
                    told.setdefault(incident, {})[rule] = float(at)
        return told

    def told_open(self, rules: Sequence[str]) -> dict[int, dict[str, float]]:
        """Per incident still open (not acknowledged), the rules among `rules`
        it was told by and when first."""
        if not rules:
            return {}
        stmt = (
            select(
                NotificationRow.incident_id, NotificationRow.rule,
                func.min(NotificationRow.created_at),
            )
            .join(IncidentRow, IncidentRow.id == NotificationRow.incident_id)
            .where(
                IncidentRow.state == "open",
                NotificationRow.event == "incident.opened",
                NotificationRow.rule.in_(rules),
            )
            .group_by(NotificationRow.incident_id, NotificationRow.rule)
        )  # fmt: skip
        told: dict[int, dict[str, float]] = {}
        for incident, rule, at in self.session.execute(stmt):
            if incident is not None:
                told.setdefault(incident, {})[rule] = float(at)
        return told

    def page(
        self, after: str | None, limit: int, *, state: str | None = None,
        channel: str | None = None, incident_id: int | None = None,
    ) -> tuple[list[Outgoing], str | None]:  # fmt: skip
        """Notifications, newest first, after cursor `after`."""
        stmt = select(NotificationRow)
        if after is not None:
            stmt = stmt.where(NotificationRow.id < parse_cursor(after))
        if state:
            stmt = stmt.where(NotificationRow.state == state)
        if channel:
            stmt = stmt.where(NotificationRow.channel == channel)
        if incident_id is not None:
            stmt = stmt.where(NotificationRow.incident_id == incident_id)
        rows = list(
            self.session.scalars(
                stmt.order_by(NotificationRow.id.desc()).limit(limit + 1)
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return [_outgoing(r) for r in rows], (str(rows[-1].id) if more else None)


def _outgoing(row: NotificationRow) -> Outgoing:
    notification = Notification(
        row.key, row.event, row.severity, row.title, row.text,  # type: ignore[arg-type]
        row.created_at, dict(row.document),
    )  # fmt: skip
    return Outgoing(
        row.id, row.channel, row.rule, row.incident_id, notification, row.state,
        row.attempts, row.next_attempt_at, row.last_error, row.sent_at,
    )  # fmt: skip


_Logged = TypeVar("_Logged", SeriesRecoveryRow, PlatformEventRow)


class SignalLogs:
    """The recoveries and platform events, appended by their producers and
    read in order by the alerter; and its cursors."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def add_recoveries(self, recoveries: Sequence[Recovery]) -> None:
        if not recoveries:
            return
        if self.postgres:
            self.session.execute(_APPEND_TURN)
        self.session.execute(
            insert(SeriesRecoveryRow),
            [{"series_id": r.series_id, "ts": r.timestamp} for r in recoveries],
        )

    def recoveries_after(self, position: int, limit: int) -> tuple[list[Recovery], int]:
        """Up to `limit` recoveries logged after `position`, and the position
        after them."""
        rows, at = self._after(SeriesRecoveryRow, position, limit)
        return [Recovery(r.series_id, r.ts) for r in rows], at

    def add_event(
        self, key: str, event: str, series_id: str | None, title: str, text: str,
        document: Mapping[str, Any], at: float,
    ) -> None:  # fmt: skip
        """Log a platform event once per `key`."""
        if self.postgres:
            self.session.execute(_APPEND_TURN)
        upsert = pg_insert if self.postgres else sqlite_insert
        self.session.execute(
            upsert(PlatformEventRow).on_conflict_do_nothing(index_elements=["key"]),
            [{
                "key": key[:200], "event": event, "series_id": series_id,
                "title": title[:400], "text": text[:4000], "document": dict(document),
                "at": at,
            }],
        )  # fmt: skip

    def events_after(
        self, position: int, limit: int
    ) -> tuple[list[PlatformEvent], int]:
        """Up to `limit` platform events logged after `position`, and the
        position after them."""
        rows, at = self._after(PlatformEventRow, position, limit)
        events = [
            PlatformEvent(
                r.id,
                r.key,
                r.event,
                r.series_id,
                r.title,
                r.text,
                dict(r.document),
                r.at,
            )  # fmt: skip
            for r in rows
        ]
        return events, at

    def _after(
        self, table: type[_Logged], position: int, limit: int
    ) -> tuple[list[_Logged], int]:
        stmt = select(table).where(table.id > position).order_by(table.id).limit(limit)
        rows = list(self.session.scalars(stmt))
        return rows, rows[-1].id if rows else position

    def cursor(self, name: str) -> int:
        row = self.session.get(AlerterCursorRow, name)
        return row.position if row is not None else 0

    def move(self, name: str, position: int) -> None:
        row = self.session.get(AlerterCursorRow, name)
        if row is None:
            self.session.add(AlerterCursorRow(name=name, position=position))
        else:
            row.position = position

    def prune(self, before: float, chunk: int = 10_000) -> int:
        """Delete up to `chunk` rows of each log read by the alerter already
        and older than `before` (epoch seconds: when an anomaly was logged, a
        recovery's reading, an event); how many went."""
        gone = 0
        logs: list[tuple[str, Any, Any]] = [
            ("anomalies", ScoredAnomalyRow,
             ScoredAnomalyRow.scored_at < datetime.fromtimestamp(before, UTC)),
            ("recoveries", SeriesRecoveryRow, SeriesRecoveryRow.ts < before),
            ("events", PlatformEventRow, PlatformEventRow.at < before),
        ]  # fmt: skip
        for name, table, old in logs:
            read = select(table.id).where(table.id <= self.cursor(name), old)
            ids = list(self.session.scalars(read.order_by(table.id).limit(chunk)))
            if ids:
                self.session.execute(delete(table).where(table.id.in_(ids)))
                gone += len(ids)
        return gone
