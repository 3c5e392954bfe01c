"""Anomalies grouped into incidents: per sensor and kind, within the gap,
resolved by recovery or after a quiet gap, graded by their peak."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.incidents import (
    Anomaly,
    Grouper,
    Incident,
    IncidentPolicy,
    Recovery,
    acknowledge,
    comment,
    resolve,
    sensor_group,
)
from atalaia.errors import Conflict, InvalidInput

T0 = 1_733_587_200.0
POLICY = IncidentPolicy(gap_s=600.0, resolve_after=10)


def anomaly(
    series: str = "sensor_001_radial", t: float = T0, score: float = 1.5,
    reason: str = "outside_band",
) -> Anomaly:  # fmt: skip
    return Anomaly(series, t, 10.0, score, 1.0, 0.0, 2.0, "above", reason, 3, "zscore")


def grouper(*incidents: Incident) -> Grouper:
    return Grouper(POLICY, {(i.sensor_id, i.kind): i for i in incidents})


def test_a_sustained_event_on_every_reading_is_one_incident() -> None:
    g = grouper()
    changes = g.apply(anomaly(t=T0 + 60 * i) for i in range(120))

    incidents = {id(c.incident) for c in changes}
    assert len(incidents) == 1
    incident = changes[0].incident
    assert (incident.state, incident.count) == ("open", 120)
    assert (incident.started_at, incident.last_at) == (T0, T0 + 60 * 119)
    assert [c.action for c in changes] == ["opened"] + ["grew"] * 119


def test_the_axes_of_a_sensor_share_its_incident() -> None:
    g = grouper()
    g.apply([anomaly("sensor_001_radial"), anomaly("sensor_001_axial", T0 + 5)])

    (incident,) = g.live.values()
    assert incident.sensor_id == "sensor_001"
    assert incident.series == ["sensor_001_radial", "sensor_001_axial"]


def test_other_sensors_and_data_quality_make_incidents_of_their_own() -> None:
    g = grouper()
    g.apply(
        [
            anomaly("sensor_001_radial"),
            anomaly("sensor_002_radial"),
            anomaly("sensor_001_radial", T0 + 1, reason="stuck"),
            anomaly("pump7", T0 + 2),  # no axis: a sensor of its own
        ]
    )

    assert sorted(g.live) == [
        ("pump7", "anomaly"),
        ("sensor_001", "anomaly"),
        ("sensor_001", "data_quality"),
        ("sensor_002", "anomaly"),
    ]


def test_an_anomaly_after_a_quiet_gap_resolves_the_old_incident_and_opens_one() -> None:
    g = grouper()
    g.apply([anomaly(t=T0)])
    first = g.live[("sensor_001", "anomaly")]
    changes = g.apply([anomaly(t=T0 + 601)])

    assert [c.action for c in changes] == ["resolved", "opened"]
    assert first.state == "resolved"
    assert first.resolved_by == "atalaia"
    assert g.live[("sensor_001", "anomaly")] is not first


def test_recovery_of_every_anomalous_axis_resolves_it() -> None:
    g = grouper()
    g.apply([anomaly("sensor_001_radial"), anomaly("sensor_001_axial", T0 + 1)])
    incident = g.live[("sensor_001", "anomaly")]

    assert not g.apply([Recovery("sensor_001_radial", T0 + 10)])
    assert incident.live
    assert incident.active == {"sensor_001_axial": T0 + 1}
    (change,) = g.apply([Recovery("sensor_001_axial", T0 + 11)])
    assert change.action == "resolved"
    assert "10 normal readings" in change.detail
    assert not incident.live
    assert not g.live


def test_a_recovery_older_than_the_last_anomaly_is_ignored() -> None:
    g = grouper()
    g.apply([anomaly(t=T0 + 100)])

    assert not g.apply([Recovery("sensor_001_radial", T0 + 50)])
    assert g.live


def test_severity_follows_the_peak_and_only_rises() -> None:
    g = grouper()
    changes = g.apply(
        [anomaly(score=1.2), anomaly(t=T0 + 1, score=2.5), anomaly(t=T0 + 2, score=1.1),
         anomaly(t=T0 + 3, score=4.5)]
    )  # fmt: skip

    incident = changes[0].incident
    assert [c.action for c in changes] == ["opened", "escalated", "grew", "escalated"]
    assert incident.severity == "critical"
    assert incident.peak_score == 4.5
    assert incident.peak["timestamp"] == T0 + 3


@given(st.lists(st.floats(0, 10_000), min_size=1, max_size=60))
def test_anomalies_within_the_gap_never_split(offsets: list[float]) -> None:
    """However the anomalies of one series fall, consecutive ones less than the
    gap apart are in the same incident."""
    times = sorted(T0 + o for o in offsets)
    g = grouper()
    changes = g.apply(anomaly(t=t) for t in times)

    opened = sum(c.action == "opened" for c in changes)
    gaps = sum(b - a > POLICY.gap_s for a, b in zip(times, times[1:], strict=False))
    assert opened == gaps + 1


class TestPeopleActions:
    def live_incident(self) -> Incident:
        g = grouper()
        g.apply([anomaly()])
        incident = g.live[("sensor_001", "anomaly")]
        incident.id = 7
        return incident

    def test_acknowledge_then_resolve(self) -> None:
        incident = self.live_incident()
        changes = acknowledge(incident, "ana", T0 + 5, "bruno")
        assert [c.action for c in changes] == ["acknowledged", "assigned"]
        assert (incident.state, incident.assignee) == ("acknowledged", "bruno")

        resolve(incident, "bruno", T0 + 9, "bearing replaced")
        assert (incident.state, incident.resolved_by) == ("resolved", "bruno")
        assert incident.active == {}

    def test_only_an_open_incident_is_acknowledged(self) -> None:
        incident = self.live_incident()
        acknowledge(incident, "ana", T0, None)
        with pytest.raises(Conflict, match="acknowledged") as caught:
            acknowledge(incident, "ana", T0, None)
        assert caught.value.rule == "incident_state"

    def test_a_resolved_incident_is_not_resolved_again(self) -> None:
        incident = self.live_incident()
        resolve(incident, "ana", T0, "")
        with pytest.raises(Conflict, match="already resolved"):
            resolve(incident, "ana", T0, "")

    def test_a_comment_needs_text(self) -> None:
        incident = self.live_incident()
        with pytest.raises(InvalidInput) as caught:
            comment(incident, "ana", T0, "  ")
        assert caught.value.rule == "comment_text"
        (change,) = comment(incident, "ana", T0, "looking at it")
        assert (change.action, change.detail) == ("commented", "looking at it")


@pytest.mark.parametrize(
    ("sensor", "group"),
    [("sensor_001", "sensor"), ("press.l2.m07", "press.l2"), ("pump7", "pump7"),
     ("a-b:c_d", "a-b:c")],
)  # fmt: skip
def test_a_sensor_group_is_its_id_up_to_the_last_separator(
    sensor: str, group: str
) -> None:
    assert sensor_group(sensor) == group


def test_a_late_anomaly_within_the_gap_moves_the_start_back() -> None:
    g = grouper()
    g.apply([anomaly(t=T0 + 300), anomaly(t=T0)])

    (incident,) = g.live.values()
    assert (incident.started_at, incident.last_at, incident.count) == (T0, T0 + 300, 2)


class TestDataQualityHoldsBackAnomalies:
    def test_a_stuck_sensors_anomalies_make_no_incident_but_a_count(self) -> None:
        g = grouper()
        changes = g.apply(
            [anomaly("sensor_001_radial", T0, reason="stuck")]
            + [anomaly("sensor_001_axial", T0 + 60 * i, 3.0) for i in range(1, 40)]
        )

        assert list(g.live) == [("sensor_001", "data_quality")]
        assert g.suppressed == 39
        assert [c.action for c in changes] == ["opened", "suppressed"]
        line = changes[-1]
        assert line.incident.kind == "data_quality"
        assert line.detail.startswith("39 anomalies of sensor_001_axial held back")
        assert line.at == T0 + 60 * 39

    def test_holds_back_while_a_stored_incident_lives_across_steps(self) -> None:
        g = grouper()
        g.apply([anomaly(reason="silent")])

        assert not g.apply([])
        (change,) = g.apply([anomaly(t=T0 + 30), anomaly(t=T0 + 40)])
        assert (change.action, change.incident.kind) == ("suppressed", "data_quality")
        assert ("sensor_001", "anomaly") not in g.live

    def test_anomalies_before_it_or_after_it_ended_are_incidents(self) -> None:
        g = grouper()
        g.apply(
            [
                anomaly(t=T0 - 5),  # before the sensor's readings were in doubt
                anomaly(t=T0, reason="stuck"),
                Recovery("sensor_001_radial", T0 + 100),  # ends both
                anomaly(t=T0 + 200),
            ]
        )

        assert list(g.live) == [("sensor_001", "anomaly")]
        assert g.suppressed == 0

    def test_other_sensors_are_not_held_back(self) -> None:
        g = grouper()
        g.apply([anomaly(reason="dropout"), anomaly("sensor_002_radial", T0 + 1)])

        assert sorted(g.live) == [
            ("sensor_001", "data_quality"),
            ("sensor_002", "anomaly"),
        ]
