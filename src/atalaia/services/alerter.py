"""The alerter: incidents from the logged signals, notifications from the
rules, and their delivery through the outbox.

One instance at a time leads (a database lock, as the scheduler's); in the
embedded server it is a pair of threads of `atalaia serve`, else the process
`atalaia alerter`.

- `step` reads the anomaly log, the recoveries and the platform events from
  where it stopped, groups the signals into incidents (`core.incidents`),
  plans the notifications the rules make of them (`core.alerting`) and
  stores the incidents, their history, the notifications and the new read
  positions in one transaction: a crash before its commit leaves nothing
  done, and the next leader reads the same signals again. A sensor's anomalies
  while it has a live data-quality incident (stuck, silent) are held back:
  no incident, no notification, a count in that incident's history.
- `sweep` escalates the incidents left unacknowledged past their rules'
  `escalate_after_min`, and when a silence has ended, tells the live
  incidents it held back.
- `deliver` sends the outbox's notifications, each channel's oldest first
  and one at a time (a channel's receiver gets them in order), with backoff
  on a failure that may pass: a receiver down for ten minutes gets them all
  once it is back, once each (the same notification is never stored twice,
  and carries its key, an idempotency key, on every attempt). A channel over
  its `rate_per_min` waits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import structlog

from atalaia.adapters.db.repositories import (
    AlertConfig,
    AnomalyLog,
    IncidentStore,
    Outbox,
    SignalLogs,
)
from atalaia.adapters.db.repositories.alerts import Outgoing, StoredChannel
from atalaia.core.alerting import (
    AlertRule,
    Planned,
    Silence,
    backoff_s,
    escalation_due,
    plan_escalation,
    plan_event,
    plan_incident,
)
from atalaia.core.incidents import (
    Anomaly,
    Grouper,
    IncidentPolicy,
    Signal,
    by_key,
    live_keys,
)
from atalaia.core.notifications import DeliveryFailed, Notification, Sender
from atalaia.core.serving import ScoredAnomaly
from atalaia.errors import ConcurrentChange, DependencyUnavailable
from atalaia.services.alert_config import RuleSpec, read_rules_file, silence_of
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

LOCK_NAME = "atalaia.alerter"
BATCH = 5_000  # signals read per step from each log
DELIVERY_BATCH = 1_000  # the oldest pending notifications looked at per round


@dataclass(frozen=True, slots=True)
class Config:
    rules: list[AlertRule]
    channels: dict[str, StoredChannel]
    silences: list[Silence]


@dataclass(eq=False)
class Alerter:
    """See the module. `clock` gives epoch seconds (tests inject one)."""

    sessions: SessionFactory
    sender: Sender
    policy: IncidentPolicy = field(default_factory=IncidentPolicy)
    clock: Callable[[], float] = time.time
    batch: int = BATCH
    retention_s: float = 30 * 86_400.0  # of the logs it reads; 0: forever
    wake: threading.Event = field(default_factory=threading.Event)
    _silenced: set[int] = field(default_factory=set)
    _sent: dict[str, deque[float]] = field(default_factory=dict)  # send times

    def config(self) -> Config:
        now = self.clock()
        with self.sessions() as session:
            stored = AlertConfig(session)
            rules = [RuleSpec.model_validate(r.spec).rule() for r in stored.rules()]
            channels = {c.channel.name: c for c in stored.channels()}
            silences = [
                silence_of(s.id, s.starts_at, s.ends_at, s.author, s.reason, s.matchers)
                for s in stored.silences(active_at=now)
            ]
        return Config(rules, channels, silences)

    def step(self) -> int:
        """Apply the signals logged since the last step (see the module); how
        many it read."""
        config = self.config()
        now = self.clock()
        with self.sessions() as session:
            logs = SignalLogs(session)
            anomalies, a_at = _anomalies_after(
                AnomalyLog(session), logs.cursor("anomalies"), self.batch
            )
            recoveries, r_at = logs.recoveries_after(
                logs.cursor("recoveries"), self.batch
            )
            events, e_at = logs.events_after(logs.cursor("events"), self.batch)
            if not (anomalies or recoveries or events):
                return 0
            signals: list[Signal] = sorted(
                [*anomalies, *recoveries], key=lambda s: s.timestamp
            )
            incidents = IncidentStore(session)
            grouper = Grouper(self.policy, by_key(incidents.live(live_keys(signals))))
            changes = grouper.apply(signals)
            if grouper.suppressed:
                log.info("alerter.anomalies_suppressed", count=grouper.suppressed)
            incidents.save(changes)
            outbox = Outbox(session)
            told = {
                incident: set(rules)
                for incident, rules in outbox.told(
                    c.incident.id for c in changes if c.incident.id
                ).items()
            }
            planned: list[Planned] = []
            for change in changes:
                incident = change.incident
                assert incident.id is not None  # saved above
                names = told.setdefault(incident.id, set())
                planned += plan_incident(
                    incident, change.action, config.rules, names, config.silences, now
                )
            for e in events:
                planned += plan_event(
                    e.event, e.key, e.title, e.text, e.document, e.series_id,  # type: ignore[arg-type]
                    config.rules, config.silences, now,
                )  # fmt: skip
            new = outbox.add(_rows(planned))
            logs.move("anomalies", a_at)
            logs.move("recoveries", r_at)
            logs.move("events", e_at)
            session.commit()
        if new:
            self.wake.set()
        return len(anomalies) + len(recoveries) + len(events)

    def sweep(self) -> int:
        """Escalate what is due; tell what a silence that ended held back.
        How many notifications it made."""
        config = self.config()
        now = self.clock()
        active = {s.id for s in config.silences if s.id is not None and s.active(now)}
        ended = bool(self._silenced - active)
        self._silenced = active
        escalating = {
            r.name: r for r in config.rules if r.escalate_after_min and r.escalate_to
        }
        if not escalating and not ended:
            return 0
        planned: list[Planned] = []
        with self.sessions() as session:
            incidents = IncidentStore(session)
            outbox = Outbox(session)
            told = outbox.told_open(list(escalating))
            for incident in incidents.by_ids(told):
                assert incident.id is not None
                for name, at in told[incident.id].items():
                    rule = escalating[name]
                    if escalation_due(incident, rule, at, now):
                        planned += plan_escalation(incident, rule, now)
            if ended:
                live = incidents.live_all()
                told = outbox.told(i.id for i in live if i.id is not None)
                for incident in live:
                    assert incident.id is not None
                    names = set(told.get(incident.id, {}))
                    planned += plan_incident(
                        incident, "grew", config.rules, names, config.silences, now
                    )
            new = outbox.add(_rows(planned))
            session.commit()
        if new:
            self.wake.set()
        return new

    def prune(self) -> int:
        """Delete what the logs hold beyond their retention, read already (a
        chunk of each at a time); how many rows went."""
        if not self.retention_s:
            return 0
        with self.sessions() as session:
            gone = SignalLogs(session).prune(self.clock() - self.retention_s)
            session.commit()
        return gone

    def deliver(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Send the due notifications: the channels side by side (in `pool`),
        each channel's in order until one fails; how many went out."""
        config = self.config()
        now = self.clock()
        with self.sessions() as session:
            outbox = Outbox(session)
            queues = []
            for channel, queue in outbox.due(now, DELIVERY_BATCH).items():
                stored = config.channels.get(channel)
                if stored is not None:
                    queue = queue[: self._room(channel, stored.rate_per_min, now)]
                if queue:
                    queues.append(queue)
        if not queues:
            return 0
        send = partial(self._send_in_order, config=config)
        results = list(pool.map(send, queues) if pool else map(send, queues))
        sent = 0
        with self.sessions() as session:
            outbox = Outbox(session)
            done = self.clock()
            for outgoing, error in (pair for result in results for pair in result):
                if error is None:
                    outbox.sent(outgoing.id, done)
                    self._sent.setdefault(outgoing.channel, deque()).append(done)
                    sent += 1
                    continue
                retry = (
                    done + backoff_s(outgoing.attempts + 1) if error.retryable else None
                )
                outbox.failed(outgoing.id, str(error), retry_at=retry)
                log.warning(
                    "alerter.delivery_failed", channel=outgoing.channel,
                    key=outgoing.notification.key, error=str(error),
                    retry_in_s=None if retry is None else round(retry - done, 1),
                )  # fmt: skip
            session.commit()
        return sent

    def _room(self, channel: str, rate_per_min: int, now: float) -> int:
        """How many more `channel` may send now: its rate less what it sent in
        the last minute (as this instance saw: a new leader starts afresh)."""
        times = self._sent.setdefault(channel, deque())
        while times and times[0] <= now - 60.0:
            times.popleft()
        return max(rate_per_min - len(times), 0)

    def _send_in_order(
        self, queue: list[Outgoing], config: Config
    ) -> list[tuple[Outgoing, DeliveryFailed | None]]:
        """A channel's notifications sent in order, up to the first failure."""
        results: list[tuple[Outgoing, DeliveryFailed | None]] = []
        for outgoing in queue:
            error = self._attempt(outgoing, config)
            results.append((outgoing, error))
            if error is not None:
                break
        return results

    def _attempt(self, outgoing: Outgoing, config: Config) -> DeliveryFailed | None:
        stored = config.channels.get(outgoing.channel)
        if stored is None:
            return DeliveryFailed(f"no channel {outgoing.channel!r}", retryable=False)
        try:
            self.sender.send(stored.channel, outgoing.notification)
        except DeliveryFailed as exc:
            return exc
        except Exception as exc:  # a bug of a sender: said, and retried later
            log.error("alerter.sender_crashed", channel=outgoing.channel, exc_info=True)
            return DeliveryFailed(type(exc).__name__, retryable=True)
        return None


def _anomalies_after(
    anomaly_log: AnomalyLog, position: int, limit: int
) -> tuple[list[Anomaly], int]:
    found, cursor = anomaly_log.after(str(position) if position else None, limit)
    return [_anomaly(a) for a in found], int(cursor) if cursor else position


def _anomaly(a: ScoredAnomaly) -> Anomaly:
    return Anomaly(
        a.series_id, a.timestamp, a.value, a.anomaly_score, a.expected, a.lower,
        a.upper, a.direction, a.reason, a.version, a.algorithm,
    )  # fmt: skip


def _rows(
    planned: Sequence[Planned],
) -> list[tuple[str, str, int | None, Notification]]:
    return [
        (p.channel, p.rule, p.incident.id if p.incident else None, p.notification)
        for p in planned
    ]


@dataclass(eq=False, kw_only=True)
class AlerterThreads:
    """ "atalaia-alerter" steps every `poll_s` (at once again while signals
    keep coming) and sweeps every `sweep_s`; "atalaia-delivery" delivers when
    woken by new notifications, or every `poll_s`. A step that finds the
    database down waits `retry_s`."""

    alerter: Alerter
    poll_s: float = 0.2
    sweep_s: float = 10.0
    retry_s: float = 5.0
    leads: Callable[[], bool] = lambda: True
    release: Callable[[], None] = lambda: None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._steps, name="atalaia-alerter", daemon=True),
            threading.Thread(
                target=self._deliveries, name="atalaia-delivery", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.alerter.wake.set()
        for thread in self._threads:
            thread.join(10.0)
        self.release()
        close = getattr(self.alerter.sender, "close", None)
        if close is not None:
            close()

    def _steps(self) -> None:
        swept = 0.0
        while not self._stop.is_set():
            wait = self.poll_s
            if self.leads():
                read = self._run("alerter.step_failed", self.alerter.step)
                if read is None:
                    wait = self.retry_s
                elif read >= self.alerter.batch:
                    wait = 0.0
                if time.monotonic() - swept >= self.sweep_s:
                    self._run("alerter.sweep_failed", self.alerter.sweep)
                    self._run("alerter.prune_failed", self.alerter.prune)
                    swept = time.monotonic()
            else:
                wait = self.sweep_s
            self._stop.wait(wait)

    def _deliveries(self) -> None:
        with ThreadPoolExecutor(8, thread_name_prefix="atalaia-send") as pool:
            while not self._stop.is_set():
                self.alerter.wake.wait(self.poll_s)
                self.alerter.wake.clear()
                if self._stop.is_set() or not self.leads():
                    continue
                sent = self._run(
                    "alerter.delivery_step_failed", partial(self.alerter.deliver, pool)
                )
                if sent is None:
                    self._stop.wait(self.retry_s)
                elif sent:
                    self.alerter.wake.set()  # more may be waiting

    def _run(self, event: str, step: Callable[[], int]) -> int | None:
        try:
            return step()
        except ConcurrentChange:
            return 0  # lost a race with a person's change: read again
        except DependencyUnavailable as exc:
            log.warning(event, error=exc.origin or str(exc))
        except Exception:
            log.error(event, exc_info=True)
        return None


def load_rules_file(sessions: SessionFactory, path: Path) -> None:
    """Make the rules file's channels and rules the stored ones from the file
    (`services.alert_config`); InvalidInput naming what is wrong with it."""
    spec = read_rules_file(path)
    with sessions() as session:
        AlertConfig(session).replace_file_config(
            [(c.channel(), c.rate_per_min) for c in spec.channels],
            [(r.name, r.model_dump(mode="json")) for r in spec.rules],
        )
        session.commit()
    log.info(
        "alerter.rules_file", path=str(path), channels=len(spec.channels),
        rules=len(spec.rules),
    )  # fmt: skip
