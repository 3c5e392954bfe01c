"""The alerter on SQLite and PostgreSQL, delivering to a real HTTP receiver,
its clock injected: one incident per event, one notification per incident
and rule, a receiver down for ten minutes losing nothing, silences and
escalation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import (
    AlertConfig,
    AnomalyLog,
    IncidentFilter,
    IncidentStore,
    Outbox,
)
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.adapters.db.tables import NotificationRow
from atalaia.adapters.notify import ChannelSender
from atalaia.core.incidents import IncidentPolicy, acknowledge
from atalaia.core.notifications import Channel
from atalaia.errors import InvalidInput
from atalaia.services import platform_events
from atalaia.services.alert_config import RuleSpec
from atalaia.services.alerter import Alerter, load_rules_file
from atalaia.services.inference.signals import IncidentSignals
from atalaia.settings import Settings
from fixtures.receivers import Mailbox, Receiver
from fixtures.serving import scored_reading

Sessions = sessionmaker[Session]
T0 = 1_733_587_200.0
STEP_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def alerter(sessions: Sessions, settings: Settings, clock: Clock) -> Iterator[Alerter]:
    sender = ChannelSender.from_settings(
        settings.model_copy(update={"notify_timeout_s": 1.0})
    )
    try:
        yield Alerter(
            sessions, sender, IncidentPolicy(gap_s=600, resolve_after=5), clock
        )
    finally:
        sender.close()


def configure(sessions: Sessions, receiver: Receiver, **rule: object) -> None:
    with sessions() as session:
        config = AlertConfig(session)
        config.put_channel(Channel("hook", "webhook", receiver.url("/hook")), 60, "api")
        config.put_channel(
            Channel("pager", "webhook", receiver.url("/pager")), 60, "api"
        )
        spec = RuleSpec.model_validate({"name": "ops", "channels": ["hook"], **rule})
        config.put_rule("ops", spec.model_dump(mode="json"), "api")
        session.commit()


def stream(
    sessions: Sessions, events: dict[str, tuple[int, int]], readings: int
) -> IncidentSignals:
    """Every series of `events` read once a minute for `readings` readings,
    anomalous over its event's [start, stop); the signals written."""
    signals = IncidentSignals(resolve_after=5)
    for i in range(readings):
        t = T0 + STEP_S * i
        for series, (start, stop) in events.items():
            anomalous = start <= i < stop
            scored = scored_reading(
                anomaly=anomalous, score=3.0 if anomalous else 0.2, width=2.0,
                version=4,
            )  # fmt: skip
            signals.one(series, t, 9.0 if anomalous else 1.0, scored)
    signals.flush(DatabaseServingStore(sessions))
    return signals


def steps(alerter: Alerter) -> None:
    while alerter.step():
        pass


def test_a_stream_with_events_makes_one_incident_per_event(
    sessions: Sessions, alerter: Alerter, receiver: Receiver
) -> None:
    configure(sessions, receiver)
    stream(
        sessions,
        {
            "sensor_001_radial": (10, 40),  # 30 readings of one event
            "sensor_001_axial": (15, 25),  # the same sensor, the same event
            "sensor_002_radial": (50, 52),
            "sensor_003_radial": (0, 0),  # never anomalous
        },
        readings=80,
    )
    steps(alerter)
    alerter.deliver()

    with sessions() as session:
        incidents, _ = IncidentStore(session).page(IncidentFilter(), None, 10)
    by_sensor = {i.sensor_id: i for i in incidents}
    assert sorted(by_sensor) == ["sensor_001", "sensor_002"]
    one = by_sensor["sensor_001"]
    assert (one.count, one.state, one.resolved_by) == (40, "resolved", "atalaia")
    assert sorted(one.series) == ["sensor_001_axial", "sensor_001_radial"]
    assert (one.started_at, one.last_at) == (T0 + 600, T0 + 39 * 60)
    assert one.peak["version"] == 4
    assert one.peak["algorithm"] == "zscore"
    assert by_sensor["sensor_002"].count == 2
    events = [(r.path, r.body["event"]) for r in receiver.requests]
    assert sorted(events) == [
        ("/hook", "incident.opened"), ("/hook", "incident.opened"),
        ("/hook", "incident.resolved"), ("/hook", "incident.resolved"),
    ]  # fmt: skip


def test_a_receiver_down_ten_minutes_gets_everything_once_in_order(
    sessions: Sessions, alerter: Alerter, receiver: Receiver, clock: Clock
) -> None:
    configure(sessions, receiver)
    receiver.down.set()
    stream(sessions, {f"sensor_{n:03d}_radial": (n, n + 3) for n in range(1, 6)}, 20)
    steps(alerter)
    for _ in range(12):  # ten minutes of retries
        alerter.deliver()
        clock.now += 50.0
    assert receiver.requests == []
    with sessions() as session:
        pending = session.scalar(
            select(func.count()).where(NotificationRow.state == "pending")
        )
        attempts = session.scalar(select(func.max(NotificationRow.attempts)))
    assert pending == 10  # 5 opened, 5 resolved
    assert attempts
    assert attempts >= 5

    receiver.down.clear()
    clock.now += 300.0
    while alerter.deliver():
        clock.now += 1.0

    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == 10 == len(set(keys))
    with sessions() as session:
        outbox, _ = Outbox(session).page(None, 100)
    assert keys == [o.notification.key for o in sorted(outbox, key=lambda o: o.id)]
    assert {o.state for o in outbox} == {"sent"}


def test_a_permanent_refusal_is_not_retried(
    sessions: Sessions, alerter: Alerter, receiver: Receiver
) -> None:
    with sessions() as session:
        config = AlertConfig(session)
        config.put_channel(
            Channel("bad", "webhook", receiver.url("/status/404")), 60, "api"
        )
        config.put_rule("ops", {"name": "ops", "channels": ["bad"]}, "api")
        session.commit()
    stream(sessions, {"sensor_001_radial": (1, 2)}, 3)
    steps(alerter)
    alerter.deliver()

    with sessions() as session:
        (row,) = session.scalars(select(NotificationRow))
    assert (row.state, row.attempts) == ("failed", 1)
    assert "404" in (row.last_error or "")
    assert alerter.deliver() == 0


def test_a_silence_holds_an_incident_back_until_it_ends(
    sessions: Sessions, alerter: Alerter, receiver: Receiver, clock: Clock
) -> None:
    configure(sessions, receiver)
    with sessions() as session:
        AlertConfig(session).add_silence(
            T0, T0 + 3600, "ana", "pump swap", {"sensor_id": "sensor_001"}
        )
        session.commit()
    alerter.sweep()  # sees the silence
    stream(sessions, {"sensor_001_radial": (1, 30), "sensor_002_radial": (1, 30)}, 30)
    steps(alerter)
    alerter.deliver()
    assert [r.body["data"]["incident"]["sensor_id"] for r in receiver.requests] == [
        "sensor_002"
    ]

    clock.now = T0 + 3601
    alerter.sweep()
    alerter.deliver()
    told = [r.body["data"]["incident"]["sensor_id"] for r in receiver.requests]
    assert told == ["sensor_002", "sensor_001"]


def test_an_unacknowledged_incident_escalates_once(
    sessions: Sessions, alerter: Alerter, receiver: Receiver, clock: Clock
) -> None:
    configure(sessions, receiver, escalate_after_min=15, escalate_to=["pager"])
    stream(sessions, {"sensor_001_radial": (1, 30), "sensor_002_radial": (1, 30)}, 30)
    steps(alerter)
    with sessions() as session:
        store = IncidentStore(session)
        (acked,) = [i for i in store.live_all() if i.sensor_id == "sensor_002"]
        assert acked.id is not None
        store.act(acked.id, lambda i: acknowledge(i, "ana", clock.now, None))
        session.commit()

    clock.now += 14 * 60
    alerter.sweep()
    alerter.deliver()
    assert [r.path for r in receiver.requests] == ["/hook", "/hook"]
    clock.now += 2 * 60
    alerter.sweep()
    alerter.sweep()
    alerter.deliver()

    pages = [r for r in receiver.requests if r.path == "/pager"]
    assert len(pages) == 1
    assert pages[0].body["data"]["incident"]["sensor_id"] == "sensor_001"
    assert pages[0].body["event"] == "incident.escalated"


def test_recovery_counts_normal_readings_of_watched_series_only() -> None:
    signals = IncidentSignals(resolve_after=3)
    signals.follow(["sensor_009_x"])
    for i in range(3):
        signals.one("sensor_009_x", T0 + i, 1.0, scored_reading(anomaly=False))
        signals.one("sensor_010_x", T0 + i, 1.0, scored_reading(anomaly=False))
    assert signals.pending == 1
    assert "sensor_009_x" not in signals.watch


def test_the_rules_file_owns_its_names(
    sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com/T0/B1/secret")
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "channels:\n"
        "  - {name: ops, type: slack, target: '${HOOK_URL}'}\n"
        "  - {name: mail, type: email, target: 'a@example.com, b@example.com'}\n"
        "rules:\n"
        "  - {name: critical, channels: [ops], min_severity: critical}\n"
        "  - {name: life, channels: [mail], kinds: [], events: [model.drift]}\n"
    )
    load_rules_file(sessions, path)
    with sessions() as session:
        config = AlertConfig(session)
        channels = {c.channel.name: c for c in config.channels()}
        assert (
            channels["ops"].channel.target == "https://hooks.example.com/T0/B1/secret"
        )
        assert [r.name for r in config.rules()] == ["critical", "life"]
        with pytest.raises(InvalidInput) as caught:
            config.put_rule("life", {"name": "life", "channels": ["mail"]}, "api")
        assert caught.value.rule == "alert_config_source"

    path.write_text(
        "channels: [{name: ops, type: webhook, target: 'https://h.example.com/x'}]\n"
        "rules: [{name: critical, channels: [ops]}]\n"
    )
    load_rules_file(sessions, path)
    with sessions() as session:
        config = AlertConfig(session)
        assert [c.channel.name for c in config.channels()] == ["ops"]
        assert [r.name for r in config.rules()] == ["critical"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [{name: r, channels: [nowhere]}]", "names no channel nowhere"),
        ("channels: [{name: c, type: webhook, target: 'ftp://x'}]", r"http\(s\) URL"),
        ("rules: [{name: r, channels: [c], kinds: []}]\n"
         "channels: [{name: c, type: email, target: a@b.c}]",
         "incident kinds, events, or both"),
        ("rules: {", "while parsing"),
    ],
)  # fmt: skip
def test_a_broken_rules_file_is_refused_with_its_reason(
    sessions: Sessions, tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=problem) as caught:
        load_rules_file(sessions, path)
    assert caught.value.rule == "alert_rules_file"


def test_lifecycle_events_are_told_once_by_the_rules_naming_them(
    sessions: Sessions, alerter: Alerter, receiver: Receiver
) -> None:
    configure(sessions, receiver, kinds=[], events=["training.failed", "model.drift"])
    with sessions() as session:
        platform_events.training_failed(
            session,
            {
                "job-1": ("pump_01_x", "constant series"),
                "job-2": ("pump_02_x", "too few points"),
            },
        )
        platform_events.drift_detected(session, ["press_1_x"], "2026-12-02T00:00:00")
        platform_events.drift_detected(session, ["press_1_x"], "2026-12-02T00:00:00")
        session.commit()
    steps(alerter)
    alerter.deliver()

    told = [(r.body["event"], r.body["title"]) for r in receiver.requests]
    assert told == [
        ("training.failed", "training failed for 2 series"),
        ("model.drift", "drift detected on press_1_x"),
    ]
    assert receiver.requests[0].body["data"]["count"] == 2


def test_an_incident_goes_by_webhook_and_email_each_once(
    sessions: Sessions, settings: Settings, receiver: Receiver, mailbox: Mailbox,
    smtp_port: int, clock: Clock,
) -> None:  # fmt: skip
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "notify_timeout_s": 1.0}
    sender = ChannelSender.from_settings(settings.model_copy(update=smtp))
    alerter = Alerter(sessions, sender, IncidentPolicy(resolve_after=5), clock)
    with sessions() as session:
        config = AlertConfig(session)
        config.put_channel(Channel("hook", "webhook", receiver.url("/hook")), 60, "api")
        config.put_channel(Channel("mail", "email", "oncall@plant.example"), 60, "api")
        rule = {"name": "both", "channels": ["hook", "mail"], "notify_resolved": False}
        config.put_rule("both", rule, "api")
        session.commit()
    try:
        stream(sessions, {"pump_07_x": (2, 12)}, 14)
        steps(alerter)
        alerter.deliver()
        alerter.deliver()  # nothing more to send
    finally:
        sender.close()

    assert [r.body["event"] for r in receiver.requests] == ["incident.opened"]
    ((recipients, message),) = mailbox.messages
    assert recipients == ["oncall@plant.example"]
    assert str(message["Subject"]) == "[atalaia] major: major anomaly on pump_07 opened"
    assert "pump_07_x" in message.get_content()


def test_a_channel_over_its_rate_waits_and_loses_nothing(
    sessions: Sessions, alerter: Alerter, receiver: Receiver, clock: Clock
) -> None:
    with sessions() as session:
        config = AlertConfig(session)
        config.put_channel(Channel("hook", "webhook", receiver.url("/hook")), 2, "api")
        rule = {"name": "ops", "channels": ["hook"], "notify_resolved": False}
        config.put_rule("ops", rule, "api")
        session.commit()
    stream(sessions, {f"sensor_{n:03d}_x": (1, 3) for n in range(5)}, 4)
    steps(alerter)

    sent = [alerter.deliver(), alerter.deliver()]
    clock.now += 61.0
    sent += [alerter.deliver(), alerter.deliver()]
    clock.now += 61.0
    sent.append(alerter.deliver())

    assert sent == [2, 0, 2, 0, 1]
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 5


def test_what_was_read_goes_once_past_its_retention_and_nothing_else(
    sessions: Sessions, alerter: Alerter, clock: Clock
) -> None:
    stream(sessions, {"sensor_001_x": (1, 3)}, 10)
    steps(alerter)
    stream(sessions, {"sensor_002_x": (1, 3)}, 10)  # not read yet

    clock.now = time.time() + 29 * 86_400
    assert alerter.prune() == 1  # the recovery read, of a reading of 2024
    clock.now = time.time() + 31 * 86_400
    assert alerter.prune() == 2  # the anomalies read, logged a month ago
    with sessions() as session:
        left, _ = AnomalyLog(session).after(None, 100)
    assert [a.series_id for a in left] == ["sensor_002_x", "sensor_002_x"]
