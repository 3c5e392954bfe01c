"""The MQTT bridge process assembled from settings: subscriber → bridge → ingest API.

Readings go to the inference service's ingest route (ATALAIA_MQTT_INGEST_URL,
default ATALAIA_INFERENCE_URL), which stores and scores them: the bridge is a
process of its own, scaled apart from the services, holding no database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import httpx
import structlog
from prometheus_client import CollectorRegistry

from atalaia.adapters.ingest_api import IngestApiSender
from atalaia.adapters.mqtt_subscriber import MqttSubscriber
from atalaia.api.common.auth import Authenticator, Role
from atalaia.api.common.resources import authenticator_for
from atalaia.core.topics import TopicTemplate
from atalaia.services.mqtt_bridge import BridgeMetrics, BridgeOptions, MqttBridge
from atalaia.settings import Settings
from atalaia.tls import client_context

log = structlog.get_logger()

SUBJECT = "mqtt-bridge"
TOKEN_TTL_S = 3600.0
REQUEST_TIMEOUT_S = 60.0  # a batch of 50,000 readings stored and scored


def run_bridge(
    settings: Settings, registry: CollectorRegistry, stop: threading.Event
) -> None:
    """Bridge `settings.mqtt_url`'s topics into the ingest until `stop` is set;
    what was received is sent (or left unacknowledged) before returning."""
    assert settings.mqtt_url is not None
    base_url = settings.mqtt_ingest_url or settings.inference_url
    templates = [TopicTemplate.parse(t) for t in settings.mqtt_topics]
    metrics = BridgeMetrics(registry)
    with httpx.Client(
        base_url=base_url, timeout=REQUEST_TIMEOUT_S, verify=client_context(settings)
    ) as client:
        subscriber = MqttSubscriber(
            url=settings.mqtt_url,
            client_id=settings.mqtt_client_id,
            filters=[t.subscription for t in templates],
            qos=settings.mqtt_qos,
            session_expiry_s=settings.mqtt_session_expiry_s,
            receive_maximum=settings.mqtt_receive_maximum,
            on_message=lambda topic, payload, delivery: bridge.receive(
                topic, payload, delivery
            ),
            on_connected=lambda up: metrics.connected.set(int(up)),
        )
        bridge = MqttBridge(
            templates=templates,
            sender=IngestApiSender(client, token=token_source(settings)),
            ack=subscriber.ack,
            metrics=metrics,
            options=BridgeOptions(
                batch_size=settings.mqtt_batch_size,
                batch_age_s=settings.mqtt_batch_age_ms / 1000,
                span=settings.time_range,
                stamp_on_receipt=settings.mqtt_stamp_on_receipt,
            ),
        )
        log.info("mqtt.bridge_started", broker=settings.mqtt_url, ingest=base_url)
        subscriber.start()
        try:
            bridge.run(stop)
        finally:
            subscriber.stop()
        log.info("mqtt.bridge_stopped")


def token_source(settings: Settings) -> Callable[[], str]:
    """ATALAIA_MQTT_INGEST_TOKEN, else short-lived tokens signed with this
    installation's secret (as the scheduler's)."""
    if settings.mqtt_ingest_token is not None:
        return settings.mqtt_ingest_token.get_secret_value
    return partial(_issue, authenticator_for(settings))


def _issue(authenticator: Authenticator) -> str:
    return authenticator.issue(
        subject=SUBJECT, role=Role.DATA_SCIENTIST, ttl_s=TOKEN_TTL_S
    )
