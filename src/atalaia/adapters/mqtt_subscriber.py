"""A subscription to an MQTT broker that loses nothing, over paho-mqtt 2.

- MQTT 5 with a fixed client id, `clean_start=False` and a session expiry: the
  broker keeps the subscription and queues QoS 1 messages while the bridge is
  away (a broker cut, a restart of the bridge).
- Manual acknowledgement: a message is acknowledged only when its caller says
  so (once its readings are stored); one never acknowledged is sent again on
  the next connection, so a crash of the bridge loses nothing either.
- Receive Maximum: how many unacknowledged messages the broker may have sent.
  It bounds the bridge's memory: while nothing is acknowledged (the store is
  down) the broker stops sending and queues the rest.

Acknowledgements name the connection a message came on: one from a closed
connection is dropped (its packet id may already mean another message on the
new one), and the broker sends that message again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from atalaia.core.topics import broker_address

log = structlog.get_logger()

MAX_RECEIVE_MAXIMUM = 65535  # MQTT 5's ceiling
KEEPALIVE_S = 30
RECONNECT_DELAY_S = (1, 10)  # first, and longest between attempts


class Delivery(NamedTuple):
    """What acknowledges one message: its connection and packet id."""

    connection: int
    mid: int


MessageHandler = Callable[[str, bytes, Delivery | None], None]


class MqttSubscriber:
    """Subscribes to `filters` at `qos` and hands each message to `on_message`
    (topic, payload, the Delivery to acknowledge or None at QoS 0), on paho's
    network thread; `on_connected(bool)` follows the connection (True once
    the broker has acknowledged the subscription)."""

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        filters: Sequence[str],
        qos: int,
        session_expiry_s: int,
        receive_maximum: int,
        on_message: MessageHandler,
        on_connected: Callable[[bool], None],
    ) -> None:
        self._address = broker_address(url)
        self._filters = [(f, qos) for f in filters]
        self._on_message = on_message
        self._on_connected = on_connected
        self._connection = 0
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._client.reconnect_delay_set(*RECONNECT_DELAY_S)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._received
        self._client.on_subscribe = self._subscribed
        self._properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        self._properties.SessionExpiryInterval = session_expiry_s
        self._properties.ReceiveMaximum = receive_maximum

    def start(self) -> None:
        """Connect (retrying until the broker answers) on a thread of paho's."""
        host, port = self._address
        self._client.connect_async(
            host,
            port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=self._properties,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect; the broker keeps the session (and what was not acknowledged)."""
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge those of the current connection, in order; how many."""
        with self._lock:
            current = self._connection
        acked = 0
        for delivery in deliveries:
            if delivery.connection == current:
                self._client.ack(delivery.mid, 1)
                acked += 1
        return acked

    def _connected(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt.connect_refused", reason=str(reason))
            return
        with self._lock:
            self._connection += 1
        # Again on every connection: the session may have expired meanwhile.
        client.subscribe(self._filters)
        log.info("mqtt.connected", session_present=flags.session_present)

    def _subscribed(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("mqtt.subscription_refused", reasons=refused)
            return
        self._on_connected(True)

    def _disconnected(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        log.warning("mqtt.disconnected", reason=str(reason))
        self._on_connected(False)

    def _received(
        self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        delivery = Delivery(self._connection, message.mid) if message.qos else None
        self._on_message(message.topic, bytes(message.payload), delivery)
