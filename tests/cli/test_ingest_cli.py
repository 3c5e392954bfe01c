"""`atalaia ingest mqtt` as its own process, beside the platform."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from atalaia.api.common.auth import Role
from atalaia.cli import app
from atalaia.cli.demo import embedded_server, free_port
from atalaia.cluster import supervisor
from atalaia.cluster.supervisor import ProcessSpec
from atalaia.settings import Settings
from fixtures.api import bearer, wait_for
from fixtures.mqtt import Publisher

ATALAIA = str(Path(sys.executable).with_name("atalaia"))
T0 = 1_734_000_000.0


def _page(url: str, headers: dict[str, str], n: int) -> dict[str, Any] | None:
    """The series' page of readings once it holds `n`, else None."""
    answer = httpx.get(url, headers=headers)
    if answer.status_code != 200 or len(answer.json()["timestamps"]) < n:
        return None
    page: dict[str, Any] = answer.json()
    return page


def test_says_what_to_set_without_a_broker(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["ingest", "mqtt"], env={"ATALAIA_HOME": str(tmp_path)}
    )

    assert result.exit_code == 2
    assert "ATALAIA_MQTT_URL" in result.output
    assert "ATALAIA_MQTT_TOPICS" in result.output


def test_stores_what_is_published_and_exports_its_metrics(
    tmp_path: Path, mosquitto: str, publisher: Publisher, unique_prefix: str
) -> None:
    home = tmp_path / "home"
    settings = Settings(
        home=home, database_url=f"sqlite:///{tmp_path / 'a.db'}", log_json=False
    )
    port = free_port()
    with embedded_server(settings) as base:
        env = {
            "ATALAIA_HOME": str(home),
            "ATALAIA_MQTT_URL": mosquitto,
            "ATALAIA_MQTT_TOPICS": f"{unique_prefix}/{{sensor}}/{{axis}}",
            "ATALAIA_MQTT_CLIENT_ID": unique_prefix,
            "ATALAIA_MQTT_INGEST_URL": base,
        }
        argv = (ATALAIA, "ingest", "mqtt", "--metrics-port", str(port))
        spec = ProcessSpec("mqtt", argv, port=port, ready_path="/metrics", env=env)
        started = supervisor.spawn(spec, tmp_path / "logs")
        try:
            supervisor.wait_ready([started], timeout_s=60)
            metrics = f"http://127.0.0.1:{port}/metrics"
            wait_for(
                lambda: "mqtt_broker_connected 1.0" in httpx.get(metrics).text or None,
                attempts=600,
            )
            publisher.readings(
                f"{unique_prefix}/pump7/axial", [(T0, 0.5), (T0 + 1, 0.6)]
            )
            url = f"{base}/api/v1/series/pump7_axial/points"
            found = wait_for(
                lambda: _page(url, bearer(settings, Role.VIEWER), 2), attempts=600
            )
            assert "mqtt_readings_stored_total 2.0" in httpx.get(metrics).text
        finally:
            supervisor.stop([started])

    assert (found["timestamps"], found["values"]) == ([T0, T0 + 1], [0.5, 0.6])
