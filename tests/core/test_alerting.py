"""Rules and silences: which incidents and events are told, once, to whom."""

from __future__ import annotations

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
from atalaia.core.incidents import Anomaly, Grouper, Incident, IncidentPolicy

T0 = 1_733_587_200.0


def incident_of(
    *scores: float, series: str = "pump_07_radial", step: float = 60.0
) -> Incident:
    g = Grouper(IncidentPolicy(), {})
    changes = g.apply(
        Anomaly(
            series,
            T0 + step * i,
            5.0,
            s,
            1.0,
            0.0,
            2.0,
            "above",
            "outside_band",
            2,
            "zscore",
        )
        for i, s in enumerate(scores)
    )
    incident = changes[0].incident
    incident.id = 42
    return incident


def keys(planned: list[Planned]) -> list[str]:
    return [p.notification.key for p in planned]


def test_an_incident_is_told_once_when_it_first_matches() -> None:
    rule = AlertRule("ops", ("hook", "mail"))
    incident = incident_of(1.5)
    told: set[str] = set()

    first = plan_incident(incident, "opened", [rule], told, [], T0)
    again = plan_incident(incident, "grew", [rule], told, [], T0 + 60)

    assert keys(first) == ["incident-42.opened.ops.hook", "incident-42.opened.ops.mail"]
    assert first[0].notification.event == "incident.opened"
    assert again == []
    assert told == {"ops"}


def test_escalation_of_severity_and_resolution_are_told_to_the_rules_that_told() -> (
    None
):
    rule = AlertRule("ops", ("hook",))
    quiet = AlertRule("quiet", ("hook",), notify_resolved=False)
    incident = incident_of(1.5)
    told = {"ops", "quiet"}
    incident.severity = "critical"

    escalated = plan_incident(incident, "escalated", [rule, quiet], told, [], T0)
    resolved = plan_incident(incident, "resolved", [rule, quiet], told, [], T0)

    assert keys(escalated) == [
        "incident-42.escalated.critical.ops.hook",
        "incident-42.escalated.critical.quiet.hook",
    ]
    assert keys(resolved) == ["incident-42.resolved.ops.hook"]


def test_conditions_must_all_hold() -> None:
    long_enough = AlertRule("long", ("hook",), min_duration_s=120)
    severe = AlertRule("severe", ("hook",), min_severity="major")
    dense = AlertRule("dense", ("hook",), min_anomalies=3, window_s=100)
    pumps = AlertRule("pumps", ("hook",), series_prefix="pump_")
    group = AlertRule("group", ("hook",), sensor_group="press")
    quality = AlertRule("quality", ("hook",), kinds=("data_quality",))
    rules = [long_enough, severe, dense, pumps, group, quality]

    incident = incident_of(1.5, 1.5, 1.5, step=60.0)  # 120 s long, 3 within 120 s

    assert [r.name for r in rules if r.matches(incident)] == ["long", "pumps"]
    incident = incident_of(1.5, 1.5, 2.5, step=40.0)
    assert [r.name for r in rules if r.matches(incident)] == [
        "severe",
        "dense",
        "pumps",
    ]


def test_a_silence_holds_back_what_it_covers_while_it_lasts() -> None:
    rule = AlertRule("ops", ("hook",))
    incident = incident_of(1.5)
    pumps = Silence(1, T0 - 10, T0 + 3600, "ana", "maintenance", series_prefix="pump_")
    other = Silence(2, T0 - 10, T0 + 3600, "ana", "other line", sensor_group="press")

    assert plan_incident(incident, "opened", [rule], set(), [pumps], T0) == []
    assert plan_incident(incident, "opened", [rule], set(), [other], T0) != []
    after = plan_incident(incident, "opened", [rule], set(), [pumps], T0 + 3600)
    assert keys(after) == ["incident-42.opened.ops.hook"]


def test_an_incident_open_too_long_escalates_to_another_channel() -> None:
    rule = AlertRule("ops", ("hook",), escalate_after_min=15, escalate_to=("pager",))
    incident = incident_of(1.5)

    assert not escalation_due(incident, rule, T0, T0 + 14 * 60)
    assert escalation_due(incident, rule, T0, T0 + 15 * 60)
    assert keys(plan_escalation(incident, rule, T0 + 900)) == [
        "incident-42.escalated.unacknowledged.ops.pager"
    ]
    incident.state = "acknowledged"
    assert not escalation_due(incident, rule, T0, T0 + 3600)


def test_lifecycle_events_go_by_the_rules_that_name_them() -> None:
    lifecycle = AlertRule("life", ("hook",), kinds=(), events=("model.drift",))
    pumps = AlertRule("pumps", ("mail",), kinds=(), events=("model.drift",),
                      series_prefix="pump_")  # fmt: skip
    silence = Silence(1, T0, T0 + 60, "ana", "retraining", events=("model.drift",))

    planned = plan_event(
        "model.drift", "drift.7", "drift on press_1", "", {}, "press_1_x",
        [lifecycle, pumps], [], T0,
    )  # fmt: skip
    held = plan_event(
        "model.drift",
        "drift.8",
        "drift",
        "",
        {},
        "press_1_x",
        [lifecycle],
        [silence],
        T0,
    )

    assert keys(planned) == ["drift.7.life.hook"]
    assert held == []


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 10, 20)] == [1.0, 2.0, 4.0, 300.0, 300.0]
