"""`mqtt-ingest`: readings published to the machine's Mosquitto (QoS 1) by
publisher processes at full speed → `atalaia ingest mqtt` (its own process) →
`atalaia serve` (its own process; a fresh SQLite file, or `--url`), which
stores and scores them.

Each publisher builds its messages first (one series' consecutive readings a
message, `per_message` of them, JSON `{"v", "t"}` with times in ms), then all
start together. The clock runs from that start until the bridge's
`mqtt_readings_stored_total` reaches every reading: readings/s sustained
through the whole chain, not the publishers' rate. Meanwhile a probe publishes
one reading of its own series every PROBE_EVERY_S and polls the platform until
it is stored: end-to-end latency under load (p50/p99). The bridge's CPU (from
/proc) over the readings gives its µs a reading; the platform's likewise.
Before the load, the platform is sent one reading of every series (their
first ingest writes the series rows) so that the run measures steady state.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from atalaia.core.topics import broker_address
from bench._report import p50_p99
from bench._servers import Server, atalaia_serve, free_port, serve, service_env

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
AXES = ("radial", "axial", "tangential")
T0_MS = 1_733_000_000_000  # 2024-11-30, in milliseconds
PROBE_EVERY_S = 0.2
POLL_S = 0.005
HTTP_TIMEOUT_S = 60.0  # the machine is saturated by design
STALL_S = 30.0
INFLIGHT = 65_535  # a publisher's unacknowledged messages


def mqtt_ingest(
    readings: int,
    per_message: int,
    publishers: int,
    sensors: int,
    batch_size: int,
    url: str | None,
    broker: str = DEFAULT_BROKER,
) -> dict[str, float | int]:
    """See the module."""
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    series = [f"sensor_{i:05d}_{axis}" for i in range(sensors) for axis in AXES]
    with TemporaryDirectory() as tmp:
        home = Path(tmp)
        env, token = service_env(
            home, url or f"sqlite:///{home / 'atalaia.db'}", rate_per_min=0
        )
        port, metrics_port = free_port(), free_port()
        bridge_env = env | {
            "ATALAIA_MQTT_URL": broker,
            "ATALAIA_MQTT_TOPICS": f"{prefix}/{{sensor}}/{{axis}}",
            "ATALAIA_MQTT_CLIENT_ID": prefix,
            "ATALAIA_MQTT_INGEST_URL": f"http://127.0.0.1:{port}",
            "ATALAIA_MQTT_BATCH_SIZE": str(batch_size),
        }
        bridge_argv = [
            *atalaia_serve(port)[:1], "ingest", "mqtt",
            "--metrics-port", str(metrics_port),
        ]  # fmt: skip
        with (
            serve(atalaia_serve(port), port=port, ready_path="/ready", env=env,
                  log_path=home / "serve.log") as platform,
            serve(bridge_argv, port=metrics_port, ready_path="/metrics",
                  env=bridge_env, log_path=home / "bridge.log") as bridge,
        ):  # fmt: skip
            _wait_metric(bridge, "mqtt_broker_connected", 1)
            _prime(prefix, series, broker)
            _wait_metric(bridge, "mqtt_readings_stored_total", len(series))
            return _run(
                prefix, series, readings, per_message, publishers,
                platform, bridge, token, broker,
            )  # fmt: skip


def _run(
    prefix: str,
    series: Sequence[str],
    readings: int,
    per_message: int,
    publishers: int,
    platform: Server,
    bridge: Server,
    token: str,
    broker: str,
) -> dict[str, float | int]:
    """The timed part: publishers and the probe, until every reading is stored."""
    messages = max(1, readings // per_message)
    total = messages * per_message
    shares = [range(p, messages, publishers) for p in range(publishers)]
    context = multiprocessing.get_context("spawn")
    ready, start = context.Barrier(publishers + 1), context.Event()
    procs = [
        context.Process(
            target=_publish,
            args=(prefix, list(series), share, per_message, ready, start, broker),
        )
        for share in shares
    ]
    for proc in procs:
        proc.start()
    ready.wait()  # every publisher has built its messages
    stored_before = _metric(bridge, "mqtt_readings_stored_total")
    cpu_bridge, cpu_platform = bridge.cpu_seconds(), platform.cpu_seconds()
    started = time.perf_counter()
    start.set()
    probe = _Probe(prefix, platform.base_url, token, broker)
    probe.start()
    stored = _wait_metric(
        bridge, "mqtt_readings_stored_total", stored_before + total, probe.count
    )
    elapsed = time.perf_counter() - started
    if stored < stored_before + total:  # the stall is no part of the run
        elapsed -= STALL_S
    cpu_bridge = bridge.cpu_seconds() - cpu_bridge
    cpu_platform = platform.cpu_seconds() - cpu_platform
    probe.stop(at_least=1)
    for proc in procs:
        proc.join(60)
    expected = stored_before + total
    lost = expected - _wait_metric(
        bridge, "mqtt_readings_stored_total", expected, probe.count
    )
    stored -= stored_before
    return {
        "readings": total,
        # Never received: the broker dropped them (its log says so).
        "lost": round(lost),
        "per_message": per_message,
        "publishers": publishers,
        "series": len(series),
        "seconds": round(elapsed, 2),
        "readings_per_s": round(stored / elapsed),
        "messages_per_s": round(stored / per_message / elapsed),
        "vs_target_100k": round(stored / elapsed / 100_000, 2),
        "bridge_cpu_us_per_reading": round(cpu_bridge / stored * 1e6, 2),
        "bridge_cores": round(cpu_bridge / elapsed, 2),
        "platform_cpu_us_per_reading": round(cpu_platform / stored * 1e6, 2),
        **p50_p99("e2e", probe.samples),
        "probes": len(probe.samples),
    }


def _publish(
    prefix: str,
    series: list[str],
    share: range,
    per_message: int,
    ready: threading.Barrier,
    start: threading.Event,
    broker: str,
) -> None:
    """Publish message k of `share`: series k mod len(series), its readings
    per_message × (k // len(series)) onwards, one second apart."""
    payloads = []
    for k in share:
        sid = series[k % len(series)]
        first = (k // len(series)) * per_message + 1  # 0: the priming reading
        body = [
            {"v": 0.3 + 0.01 * (i % 7), "t": T0_MS + (first + i) * 1000}
            for i in range(per_message)
        ]
        sensor, _, axis = sid.rpartition("_")
        payloads.append((f"{prefix}/{sensor}/{axis}", json.dumps(body).encode()))
    client = _client(broker)
    ready.wait()
    start.wait()
    sent = [client.publish(topic, body, qos=1) for topic, body in payloads]
    for info in sent:
        info.wait_for_publish(600)
    client.disconnect()
    client.loop_stop()


def _client(broker: str) -> mqtt.Client:
    # MQTT 3.1.1: the broker takes a publisher's messages without a Receive
    # Maximum of its own (v5 would announce mosquitto's default of 20).
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)
    client.connect(*broker_address(broker))
    client.loop_start()
    return client


def _prime(prefix: str, series: Sequence[str], broker: str) -> None:
    """One reading of every series, at T0."""
    client = _client(broker)
    sent = []
    for sid in series:
        sensor, _, axis = sid.rpartition("_")
        body = json.dumps({"v": 0.3, "t": T0_MS}).encode()
        sent.append(client.publish(f"{prefix}/{sensor}/{axis}", body, qos=1))
    for info in sent:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


class _Probe:
    """One reading of `probe_<axis>` every PROBE_EVERY_S, each timed from
    publishing to its appearance in the platform's store."""

    def __init__(self, prefix: str, base_url: str, token: str, broker: str) -> None:
        self._prefix = prefix
        self._broker = broker
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT_S,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.samples: list[float] = []
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def count(self) -> int:
        """Probe readings sent so far."""
        return self.sent

    def stop(self, at_least: int) -> None:
        """Stop once `at_least` samples are in (a short run may have none)."""
        deadline = time.monotonic() + HTTP_TIMEOUT_S
        while len(self.samples) < at_least and time.monotonic() < deadline:
            time.sleep(PROBE_EVERY_S)
        self._stop.set()
        self._thread.join(60)
        self._http.close()

    def _loop(self) -> None:
        client = _client(self._broker)
        k = 0
        while not self._stop.wait(PROBE_EVERY_S):
            k += 1
            t_ms = T0_MS + k * 1000
            sent = time.perf_counter()
            body = json.dumps({"v": 0.3, "t": t_ms}).encode()
            client.publish(f"{self._prefix}/probe/radial", body, qos=1)
            self.sent += 1
            if self._stored(t_ms / 1000):
                self.samples.append(time.perf_counter() - sent)
        client.disconnect()
        client.loop_stop()

    def _stored(self, timestamp: float) -> bool:
        while not self._stop.is_set():
            answer = self._http.get(
                "/api/v1/series/probe_radial/points", params={"start": timestamp}
            )
            if answer.status_code == 200 and answer.json()["timestamps"]:
                return True
            time.sleep(POLL_S)
        return False


def _metric(server: Server, name: str) -> float:
    answer = httpx.get(server.base_url + "/metrics", timeout=HTTP_TIMEOUT_S)
    for line in answer.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _wait_metric(
    server: Server, name: str, at_least: float, besides: Callable[[], int] = int
) -> float:
    """Wait until metric `name` less `besides()` (the probe's readings) reaches
    `at_least`, or stops growing for STALL_S (readings the broker dropped
    never come); its last value so."""
    value, moved = _metric(server, name) - besides(), time.monotonic()
    while value < at_least and time.monotonic() - moved < STALL_S:
        time.sleep(0.1)
        if (now := _metric(server, name) - besides()) > value:
            value, moved = now, time.monotonic()
    return value
