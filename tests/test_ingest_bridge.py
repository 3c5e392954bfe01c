"""The MQTT bridge end to end: the machine's Mosquitto, the platform served over
HTTP (SQLite and PostgreSQL), the bridge on a thread. Readings published with
QoS 1 are stored and scored; a broker cut, the ingest down, or the bridge
stopped with readings unacknowledged lose nothing and store nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from atalaia.api.common.auth import Role
from atalaia.cli.demo import embedded_server
from atalaia.core.topics import broker_address
from atalaia.settings import Settings
from fixtures.api import Headers, bearer, serve, wait_for
from fixtures.mqtt import Publisher, metric, running_bridge
from fixtures.tcp_proxy import TcpProxy

SettingsFactory = Any
AFTER = 1_734_000_000.0  # after `serve`'s training readings and its probe
# Polls of `wait_for` (0.05 s apart): a loaded machine, a reconnection ~1 s.
PATIENCE = 1200


@dataclass(frozen=True, slots=True)
class Platform:
    settings: Settings
    client: httpx.Client
    admin: Headers


@pytest.fixture
def platform(make_settings: SettingsFactory, database_url: str) -> Iterator[Platform]:
    """The embedded platform served on loopback, on each database."""
    settings = make_settings(database_url, log_level="WARNING")
    with embedded_server(settings) as base, httpx.Client(base_url=base) as client:
        yield Platform(settings, client, bearer(settings, Role.ADMIN))


def bridge_settings(
    platform: Platform, broker: str, prefix: str, ingest_url: str | None = None
) -> Settings:
    return platform.settings.model_copy(
        update={
            "mqtt_url": broker,
            "mqtt_topics": [f"{prefix}/+/{{sensor}}/{{axis}}"],
            "mqtt_client_id": prefix,
            "mqtt_ingest_url": ingest_url or str(platform.client.base_url),
            "mqtt_batch_age_ms": 50.0,
        }
    )


def stored(platform: Platform, series_id: str) -> list[tuple[float, float]]:
    answer = platform.client.get(
        f"/api/v1/series/{series_id}/points",
        params={"start": AFTER},  # not `serve`'s training readings
        headers=platform.admin,
    )
    if answer.status_code == 404:
        return []
    body = answer.json()
    return list(zip(body["timestamps"], body["values"], strict=True))


def wait_stored(
    platform: Platform, series_id: str, n: int
) -> list[tuple[float, float]]:
    """The series' readings once there are `n` (fails the test if never)."""
    return wait_for(
        lambda: found if len(found := stored(platform, series_id)) >= n else None,
        attempts=PATIENCE,
    )


def readings(n: int, start: float = AFTER) -> list[tuple[float, float]]:
    return [(start + i, round(0.3 + 0.01 * (i % 7), 2)) for i in range(n)]


def test_published_readings_are_stored_and_scored(
    platform: Platform, mosquitto: str, publisher: Publisher, unique_prefix: str
) -> None:
    serve(platform.client, "sensor_001_radial", platform.admin, algorithm="zscore")
    sent = readings(200)
    spike = (AFTER + 500, 50.0)
    settings = bridge_settings(platform, mosquitto, unique_prefix)

    with running_bridge(settings) as registry:
        publisher.readings(f"{unique_prefix}/line1/sensor_001/radial", sent)
        publisher.publish(
            f"{unique_prefix}/line1/sensor_001/radial",
            [json.dumps([{"v": spike[1], "t": spike[0]}]).encode()],
        )
        found = wait_stored(platform, "sensor_001_radial", len(sent) + 1)

    assert found == [*sent, spike]
    log = platform.client.get("/api/v1/anomalies", headers=platform.admin).json()
    assert [(a["series_id"], a["timestamp"]) for a in log["anomalies"]] == [
        ("sensor_001_radial", spike[0])
    ]
    assert metric(registry, "mqtt_readings_stored_total") == len(sent) + 1


def test_a_bad_message_is_counted_and_the_next_ones_stored(
    platform: Platform, mosquitto: str, publisher: Publisher, unique_prefix: str
) -> None:
    topic = f"{unique_prefix}/line1/sensor_002/axial"

    with running_bridge(
        bridge_settings(platform, mosquitto, unique_prefix)
    ) as registry:
        publisher.publish(topic, [b"not json", b'{"v": 1}', b'{"v": NaN, "t": 1}'])
        publisher.publish(f"{unique_prefix}/line1//axial", [b"1"])  # no sensor
        publisher.publish(f"{unique_prefix}/line1/bad id/axial", [b"1"])
        publisher.readings(topic, readings(3))
        found = wait_stored(platform, "sensor_002_axial", 3)

    assert found == readings(3)
    refused = {
        reason: metric(registry, "mqtt_readings_refused_total", reason=reason)
        for reason in (
            "payload_format",
            "payload_timestamp",
            "value_range",
            "topic",
            "series_id_format",
        )
    }
    assert refused == {
        "payload_format": 1,
        "payload_timestamp": 1,
        "value_range": 1,
        "topic": 1,
        "series_id_format": 1,
    }


def test_a_broker_cut_loses_nothing_and_stores_nothing_twice(
    platform: Platform, mosquitto: str, publisher: Publisher, unique_prefix: str
) -> None:
    topic = f"{unique_prefix}/line1/sensor_003/radial"
    sent = readings(600)
    with TcpProxy(*broker_address(mosquitto)) as proxy:
        settings = bridge_settings(
            platform, f"mqtt://127.0.0.1:{proxy.port}", unique_prefix
        )
        with running_bridge(settings) as registry:
            publisher.readings(topic, sent[:200])
            wait_stored(platform, "sensor_003_radial", 1)  # connected, subscribed
            proxy.cut()
            wait_for(lambda: metric(registry, "mqtt_broker_connected") == 0 or None)
            publisher.readings(topic, sent[200:500])  # queued by the broker
            proxy.restore()
            publisher.readings(topic, sent[500:])
            found = wait_stored(platform, "sensor_003_radial", len(sent))

    assert found == sent
    assert metric(registry, "mqtt_readings_stored_total") == len(sent)


def test_the_ingest_down_holds_the_readings_until_it_is_back(
    platform: Platform, mosquitto: str, publisher: Publisher, unique_prefix: str
) -> None:
    topic = f"{unique_prefix}/line1/sensor_004/radial"
    sent = readings(300)
    base = urlsplit(str(platform.client.base_url))
    assert base.hostname is not None
    assert base.port is not None
    with TcpProxy(base.hostname, base.port) as proxy:
        ingest = f"http://127.0.0.1:{proxy.port}"
        settings = bridge_settings(platform, mosquitto, unique_prefix, ingest)
        with running_bridge(settings) as registry:
            proxy.cut()
            publisher.readings(topic, sent)
            wait_for(
                lambda: (
                    metric(registry, "mqtt_batches_total", outcome="retried") >= 2
                    or None
                ),
                attempts=PATIENCE,
            )
            assert stored(platform, "sensor_004_radial") == []
            proxy.restore()
            found = wait_stored(platform, "sensor_004_radial", len(sent))

    assert found == sent
    assert metric(registry, "mqtt_readings_stored_total") == len(sent)


def test_readings_held_by_a_stopped_bridge_come_again_to_the_next(
    platform: Platform, mosquitto: str, publisher: Publisher, unique_prefix: str
) -> None:
    topic = f"{unique_prefix}/line1/sensor_005/radial"
    sent = readings(300)
    unreachable = "http://127.0.0.1:9"  # discard port: nothing listens
    settings = bridge_settings(platform, mosquitto, unique_prefix)
    with running_bridge(
        settings.model_copy(update={"mqtt_ingest_url": unreachable})
    ) as first:
        publisher.readings(topic, sent)
        wait_for(
            lambda: metric(first, "mqtt_messages_received_total") >= len(sent) or None,
            attempts=PATIENCE,
        )
    # Received, never stored, so never acknowledged: the broker sends them again.
    with running_bridge(settings) as second:
        found = wait_stored(platform, "sensor_005_radial", len(sent))

    assert found == sent
    assert metric(second, "mqtt_readings_stored_total") == len(sent)


def test_a_batch_the_ingest_refuses_is_counted_not_retried(
    platform: Platform, mosquitto: str, publisher: Publisher, unique_prefix: str
) -> None:
    topic = f"{unique_prefix}/line1/sensor_006/radial"
    late = 4_200_000_000.0  # the bridge takes it, the platform (up to 2100) not
    settings = bridge_settings(platform, mosquitto, unique_prefix).model_copy(
        update={"timestamp_max": 5e9}
    )
    with running_bridge(settings) as registry:
        publisher.readings(topic, [(late, 1.0)])
        wait_for(
            lambda: metric(registry, "mqtt_batches_total", outcome="refused") or None,
            attempts=PATIENCE,
        )
        publisher.readings(topic, readings(3))
        found = wait_stored(platform, "sensor_006_radial", 3)

    assert found == readings(3)
    assert (
        metric(registry, "mqtt_readings_refused_total", reason="timestamp_range") == 1
    )
    assert metric(registry, "mqtt_batches_total", outcome="retried") == 0
