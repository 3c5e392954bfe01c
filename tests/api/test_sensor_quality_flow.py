"""A stuck sensor through the embedded platform: its readings, scored on
ingest by the real inference path, make one data-quality incident, told once;
the glitches it sends meanwhile are held back instead of an alarm storm."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, post_ok, predict, serve, wait_for
from fixtures.readings import DAY_S, EPOCH
from fixtures.receivers import Receiver

SERIES = "sensor_011_radial"
AFTER = 1_734_000_000.0  # past the training week
MINUTE = 60.0
GLITCHES = (10, 25)  # readings far above the band, 15 min apart (gap: 10 min)


@pytest.fixture
def alerting(settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        f"channels:\n  - {{name: ops, type: webhook, target: "
        f"'{receiver.url('/ops')}'}}\nrules:\n  - {{name: all, channels: [ops]}}\n"
    )
    return settings.model_copy(
        update={
            "alert_rules_file": rules, "incident_flush_s": 0.05,
            "alerter_poll_s": 0.05, "incident_gap_s": 600.0,
        }
    )  # fmt: skip


def usual(t: float) -> float:
    """What the training week read at time `t` (its daily sine, no noise)."""
    return 0.3 + 0.1 * math.sin(2 * math.pi * (t - EPOCH) / DAY_S)


def incidents(client: TestClient, headers: Headers, query: str) -> list[Any]:
    """The incidents still going at AFTER or later (`serve`'s probe, days
    before, may have made one of its own)."""
    found: list[dict[str, Any]] = client.get(
        f"/api/v1/incidents?start={AFTER}&{query}", headers=headers
    ).json()["incidents"]
    return found


def test_a_stuck_sensor_is_one_incident_and_its_glitches_no_storm(
    alerting: Settings, admin: Headers
) -> None:
    with TestClient(create_embedded_app(alerting)) as client:
        serve(client, SERIES, admin)  # auto: a stuck guard of 2 readings
        frozen = usual(AFTER - MINUTE)  # the value it holds from then on
        assert not predict(client, admin, frozen, SERIES, AFTER - MINUTE)["anomaly"]
        times = [AFTER + MINUTE * i for i in range(40)]
        values = [frozen + 50.0 if i in GLITCHES else frozen for i in range(40)]

        ingested = post_ok(client, admin, f"/api/v1/series/{SERIES}/points",
                           {"timestamps": times, "values": values})  # fmt: skip
        wait_for(lambda: incidents(client, admin, "kind=data_quality") or None)
        (incident,) = incidents(client, admin, "")
        detail = client.get(f"/api/v1/incidents/{incident['id']}", headers=admin).json()
        told = client.get(
            f"/api/v1/alerts/notifications?incident_id={incident['id']}",
            headers=admin,
        ).json()

    reasons = [a["reason"] for a in ingested["anomalies"]]
    assert reasons.count("stuck") == 33  # runs of 3 and longer
    assert len(reasons) == 35  # and the two glitches
    assert (incident["kind"], incident["count"]) == ("data_quality", 33)
    held = [h for h in detail["history"] if h["action"] == "suppressed"]
    assert [h["detail"] for h in held] == [
        f"2 anomalies of {SERIES} held back while the sensor's data quality is in doubt"
    ]
    # Told once, then as its severity rose (a longer run scores higher).
    events = sorted(n["event"] for n in told["notifications"])
    assert events[-1] == "incident.opened"
    assert set(events[:-1]) <= {"incident.escalated"}
