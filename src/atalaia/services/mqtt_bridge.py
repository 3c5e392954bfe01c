"""Live readings from MQTT: batched, stored and scored, then acknowledged.

Messages arrive on the subscriber's thread (`receive`): their topic names the
series (the first template that matches), their payload the readings
(`core.reading_payloads`). A message that names no series or whose payload
breaks a rule is counted by reason, logged and acknowledged: sent again it
would be refused again. The others join the open batch, which is sealed at
`batch_size` readings; `run` sends the sealed batches, and the open one once
it is `batch_age_s` old, to the platform's ingest (which stores them,
idempotent per series and timestamp, and scores them on the way in).

Only after the ingest answered are a batch's messages acknowledged. Until
then it is sent again with a growing pause (the store is down: nothing is
dropped, and the broker stops sending once the subscriber's Receive Maximum
of unacknowledged messages is reached). Should the bridge die in between, the
broker sends the messages again and the ingest ignores what it already
stored: every reading is stored once. A reading twice in one batch (a message
sent again while its first copy waits) is sent once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from atalaia.adapters.mqtt_subscriber import Delivery
from atalaia.core.reading_payloads import decode_readings
from atalaia.core.series import TimeRange, check_series_id
from atalaia.core.topics import TopicTemplate
from atalaia.errors import DependencyUnavailable, InvalidInput

log = structlog.get_logger()

MAX_MESSAGE_READINGS = 50_000  # with batch_size ≤ 50,000: a batch < 100,000
RETRY_S = (0.1, 5.0)  # first pause after a failed send, and the longest
_TOPIC_CACHE = 1_000_000  # topics remembered (a fleet has ~285,000)


class ReadingSender(Protocol):
    def send(
        self,
        series_ids: Sequence[str],
        timestamps: Sequence[float],
        values: Sequence[float],
    ) -> int: ...


class BridgeMetrics:
    """The bridge's Prometheus metrics (no series label: see DESIGN)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "mqtt_messages_received_total", "MQTT messages received", registry=registry
        )
        self.ingested = Counter(
            "mqtt_readings_ingested_total",
            "Readings sent to the ingest and accepted",
            registry=registry,
        )
        self.stored = Counter(
            "mqtt_readings_stored_total",
            "Readings the ingest stored (not stored before: a message sent again "
            "is ingested, not stored, again)",
            registry=registry,
        )
        self.refused = Counter(
            "mqtt_readings_refused_total",
            "Messages (or, refused by the ingest, readings) refused, by rule",
            ["reason"],
            registry=registry,
        )
        self.batches = Counter(
            "mqtt_batches_total",
            "Batches sent, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "mqtt_ingest_duration_seconds",
            "Time the ingest took to answer a batch",
            registry=registry,
        )
        self.connected = Gauge(
            "mqtt_broker_connected",
            "1 while connected to the broker",
            registry=registry,
        )


@dataclass(slots=True)
class Batch:
    """Readings as three columns, the messages they came in, and when it opened."""

    opened: float
    series_ids: list[str] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    seen: set[tuple[str, float]] = field(default_factory=set)

    def add(self, series_id: str, readings: list[tuple[float, float]]) -> None:
        for timestamp, value in readings:
            if (series_id, timestamp) in self.seen:
                continue
            self.seen.add((series_id, timestamp))
            self.series_ids.append(series_id)
            self.timestamps.append(timestamp)
            self.values.append(value)


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    batch_size: int = 20_000
    batch_age_s: float = 0.2
    span: TimeRange = TimeRange()
    stamp_on_receipt: bool = False


class MqttBridge:
    """See the module. `receive` on the subscriber's thread, `run` on another."""

    def __init__(
        self,
        *,
        templates: Sequence[TopicTemplate],
        sender: ReadingSender,
        ack: Callable[[Sequence[Delivery]], object],
        metrics: BridgeMetrics,
        options: BridgeOptions = BridgeOptions(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._templates = templates
        self._sender = sender
        self._ack = ack
        self.metrics = metrics
        self._options = options
        self._clock = clock
        self._series: dict[str, str | None] = {}
        self._sealed: deque[Batch] = deque()
        self._open = Batch(clock())
        self._ready = threading.Condition()

    def receive(self, topic: str, payload: bytes, delivery: Delivery | None) -> None:
        """Take one message (see the module)."""
        self.metrics.messages.inc()
        try:
            series_id = self._series_of(topic)
            readings = decode_readings(
                payload,
                received_at=time.time(),
                span=self._options.span,
                stamp_on_receipt=self._options.stamp_on_receipt,
            )
            if len(readings) > MAX_MESSAGE_READINGS:
                raise InvalidInput(
                    f"at most {MAX_MESSAGE_READINGS} readings a message",
                    rule="payload_size",
                )
        except InvalidInput as exc:
            self._refuse(topic, exc, delivery)
            return
        with self._ready:
            batch = self._open
            batch.add(series_id, readings)
            if delivery is not None:
                batch.deliveries.append(delivery)
            if len(batch.series_ids) >= self._options.batch_size:
                self._sealed.append(batch)
                self._open = Batch(self._clock())
                self._ready.notify()

    def run(self, stop: threading.Event) -> None:
        """Send batches until `stop` is set; the open one is sent before returning."""
        while not stop.is_set():
            batch = self._next_batch(stop)
            if batch is not None:
                self._deliver(batch, stop)
        with self._ready:
            rest = [*self._sealed, self._open]
            self._sealed.clear()
            self._open = Batch(self._clock())
        for batch in rest:
            self._deliver(batch, stop)

    def _next_batch(self, stop: threading.Event) -> Batch | None:
        """The oldest sealed batch, or the open one once it is old enough and
        not empty; None after waiting a while for either."""
        with self._ready:
            due = self._open.opened + self._options.batch_age_s
            if not self._sealed:
                self._ready.wait(timeout=max(0.0, due - self._clock()))
            if self._sealed:
                return self._sealed.popleft()
            if stop.is_set() or self._clock() < due:
                return None
            batch, self._open = self._open, Batch(self._clock())
            return batch if batch.series_ids or batch.deliveries else None

    def _deliver(self, batch: Batch, stop: threading.Event) -> None:
        """Send `batch` until the ingest answers (or `stop`); then acknowledge it."""
        pause = RETRY_S[0]
        while batch.series_ids:
            started = time.perf_counter()
            try:
                stored = self._sender.send(
                    batch.series_ids, batch.timestamps, batch.values
                )
            except DependencyUnavailable as exc:
                self.metrics.batches.labels("retried").inc()
                log.warning("mqtt.ingest_failed", error=exc.detail, retry_in_s=pause)
                if stop.wait(pause):
                    return  # not acknowledged: the broker sends it again
                pause = min(pause * 2, RETRY_S[1])
                continue
            except InvalidInput as exc:  # never stored, whatever the retries
                self.metrics.batches.labels("refused").inc()
                self.metrics.refused.labels(exc.rule).inc(len(batch.series_ids))
                log.error("mqtt.batch_refused", rule=exc.rule, detail=exc.detail)
            else:
                self.metrics.batches.labels("stored").inc()
                self.metrics.ingested.inc(len(batch.series_ids))
                self.metrics.stored.inc(stored)
            self.metrics.latency.observe(time.perf_counter() - started)
            break
        self._ack(batch.deliveries)

    def _series_of(self, topic: str) -> str:
        """The series `topic` names (remembered), or InvalidInput."""
        if topic not in self._series:
            if len(self._series) >= _TOPIC_CACHE:
                self._series.clear()
            self._series[topic] = self._map(topic)
        series_id = self._series[topic]
        if series_id is None:
            raise InvalidInput(f"topic {topic!r} matches no template", rule="topic")
        return check_series_id(series_id)

    def _map(self, topic: str) -> str | None:
        for template in self._templates:
            if (series_id := template.series_of(topic)) is not None:
                return series_id
        return None

    def _refuse(self, topic: str, exc: InvalidInput, delivery: Delivery | None) -> None:
        self.metrics.refused.labels(exc.rule).inc()
        log.info("mqtt.message_refused", topic=topic, rule=exc.rule, detail=exc.detail)
        if delivery is not None:
            # In turn with the batches: acknowledgements keep the order of arrival.
            with self._ready:
                self._open.deliveries.append(delivery)
