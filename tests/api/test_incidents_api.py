"""Incidents API: the list and its filters, one incident and its history, what
people do to incidents (and the audit log), the fleet's status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import IncidentStore, RollupStore
from atalaia.adapters.db.tables import AuditRow
from atalaia.api import training
from atalaia.api.common.auth import Role
from atalaia.core import incidents
from atalaia.core.serving import Rollups
from atalaia.services.fleet import GroupRates
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, bearer, refused
from fixtures.incidents import anomaly, record

INCIDENTS = "/api/v1/incidents"


@dataclass(frozen=True)
class Fleet:
    """The incidents `fleet` made, by name, around `now`."""

    ids: dict[str, int]
    now: float

    @property
    def t0(self) -> float:
        """Recent: within the 600 s that make a sensor anomalous now."""
        return self.now - 120

    def of(self, *names: str) -> list[int]:
        """Their ids, newest first (as lists give them)."""
        return sorted((self.ids[n] for n in names), reverse=True)


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The training service, on each database."""
    with TestClient(training.create_app(make_settings(database_url))) as test_client:
        yield test_client


@pytest.fixture
def ana(settings: Settings) -> Headers:
    """A data scientist called ana."""
    return bearer(settings, Role.DATA_SCIENTIST, subject="ana")


@pytest.fixture
def fleet(sessions: sessionmaker[Session]) -> Fleet:
    """Six incidents, five live:

    - sensor_001: two axes anomalous a minute apart, the second critical;
    - sensor_002: minor; sensor_003: minor, its last anomaly 20 minutes ago;
    - press.l2.m07: stuck, a data-quality incident (group press.l2);
    - pump7 (no axis): a major incident two hours ago, resolved when the next
      anomaly came after the gap, which opened a major one.
    """
    now = time.time()
    t0 = Fleet({}, now).t0
    made = record(
        sessions,
        [
            anomaly("pump7", t0 - 7200, 3.0),
            anomaly("sensor_001_radial", t0, 2.5),
            anomaly("sensor_001_axial", t0 + 60, 4.5),
            anomaly("sensor_002_radial", t0, 1.2),
            anomaly("sensor_003_radial", now - 1200, 1.1),
            anomaly("press.l2.m07_radial", t0, 1.5, reason="stuck"),
            anomaly("pump7", t0 + 30, 2.2),
        ],
    )
    ids = {sensor: found[-1].id for sensor, found in made.items()}
    ids["pump7_old"] = made["pump7"][0].id
    return Fleet({name: i for name, i in ids.items() if i is not None}, now)


def listed(client: TestClient, headers: Headers, query: str = "") -> list[int]:
    response = client.get(f"{INCIDENTS}?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["incidents"]]


class TestList:
    def test_lists_every_incident_newest_first(
        self, client: TestClient, viewer: Headers, fleet: Fleet
    ) -> None:
        body = client.get(INCIDENTS, headers=viewer).json()

        assert [i["id"] for i in body["incidents"]] == fleet.of(*fleet.ids)
        assert body["next_cursor"] is None
        first = next(i for i in body["incidents"] if i["id"] == fleet.ids["sensor_001"])
        assert first["severity"] == "critical"
        assert first["count"] == 2
        assert first["series"] == ["sensor_001_radial", "sensor_001_axial"]
        assert first["active"] == {
            "sensor_001_radial": fleet.t0,
            "sensor_001_axial": fleet.t0 + 60,
        }
        assert first["peak"]["series_id"] == "sensor_001_axial"
        assert first["sensor_group"] == "sensor"

    @pytest.mark.parametrize(
        ("query", "names"),
        [
            ("state=resolved", ["pump7_old"]),
            (
                "state=open&state=acknowledged",
                ["sensor_001", "sensor_002", "sensor_003", "press.l2.m07", "pump7"],
            ),
            ("kind=data_quality", ["press.l2.m07"]),
            ("severity=critical", ["sensor_001"]),
            ("severity=major&severity=critical", ["sensor_001", "pump7", "pump7_old"]),
            ("series_prefix=sensor_001", ["sensor_001"]),
            ("series_prefix=sensor_001_ax", ["sensor_001"]),
            ("series_prefix=press.", ["press.l2.m07"]),
            ("series_prefix=pump7_ra", ["pump7", "pump7_old"]),
            ("series_prefix=pump70", []),  # not a series of sensor pump7
            ("sensor=pump7", ["pump7", "pump7_old"]),
            ("sensor_group=sensor", ["sensor_001", "sensor_002", "sensor_003"]),
            ("start={now_900}&kind=anomaly", ["sensor_001", "sensor_002", "pump7"]),
            ("end={t0_3600}", ["pump7_old"]),
            ("state=open&sensor_group=press.l2&kind=anomaly", []),
        ],
    )
    def test_filters(
        self,
        client: TestClient,
        viewer: Headers,
        fleet: Fleet,
        query: str,
        names: list[str],
    ) -> None:
        times = {
            "now_900": f"{fleet.now - 900:.0f}",
            "t0_3600": f"{fleet.t0 - 3600:.0f}",
        }

        assert listed(client, viewer, query.format(**times)) == fleet.of(*names)

    def test_pages_by_cursor_give_each_incident_once(
        self, client: TestClient, viewer: Headers, fleet: Fleet
    ) -> None:
        seen: list[int] = []
        after = ""
        for _ in range(10):
            body = client.get(f"{INCIDENTS}?limit=4{after}", headers=viewer).json()
            seen += [i["id"] for i in body["incidents"]]
            if body["next_cursor"] is None:
                break
            after = f"&after={body['next_cursor']}"

        assert seen == fleet.of(*fleet.ids)
        assert len(listed(client, viewer, "limit=4")) == 4

    @pytest.mark.parametrize(
        ("query", "rule"),
        [
            ("after=abc", "cursor"),
            ("limit=1001", "request_schema"),
            ("state=closed", "request_schema"),
            ("severity=huge", "request_schema"),
            ("start=1e12", "timestamp_range"),
            ("kind=anomaly&kind=data_quality", "query_parameters"),
            ("sensor=a%00b", "no_control_characters"),
        ],
    )
    def test_bad_filters_are_refused_naming_the_rule(
        self, client: TestClient, viewer: Headers, query: str, rule: str
    ) -> None:
        refused(client.get(f"{INCIDENTS}?{query}", headers=viewer), rule)


class TestOne:
    def test_has_its_history(
        self, client: TestClient, viewer: Headers, fleet: Fleet
    ) -> None:
        body = client.get(
            f"{INCIDENTS}/{fleet.ids['sensor_001']}", headers=viewer
        ).json()

        assert [h["action"] for h in body["history"]] == ["opened", "escalated"]
        assert {h["actor"] for h in body["history"]} == {"atalaia"}
        assert body["history"][1]["detail"].startswith("to critical")

    def test_unknown_incident_is_404(self, client: TestClient, viewer: Headers) -> None:
        answer = client.get(f"{INCIDENTS}/999", headers=viewer)

        assert answer.status_code == 404
        assert answer.json()["rule"] == "incident_exists"


def act(
    client: TestClient, headers: Headers, incident_id: int, action: str, **body: Any
) -> Any:
    return client.post(
        f"{INCIDENTS}/{incident_id}/{action}", json=body, headers=headers
    )


class TestActions:
    def test_acknowledge_then_resolve(
        self,
        client: TestClient,
        ana: Headers,
        fleet: Fleet,
        sessions: sessionmaker[Session],
    ) -> None:
        target = fleet.ids["sensor_002"]

        acked = act(client, ana, target, "acknowledge", assignee="bo", note="on it")
        resolved = act(client, ana, target, "resolve", note="bearing replaced")

        assert acked.status_code == 200, acked.text
        assert (acked.json()["state"], acked.json()["assignee"]) == (
            "acknowledged",
            "bo",
        )
        assert resolved.status_code == 200, resolved.text
        body = resolved.json()
        assert (body["state"], body["resolved_by"]) == ("resolved", "ana")
        assert body["active"] == {}
        lines = [(h["action"], h["actor"], h["detail"]) for h in body["history"]]
        assert lines[1:] == [
            ("acknowledged", "ana", ""),
            ("assigned", "ana", "bo"),
            ("commented", "ana", "on it"),
            ("resolved", "ana", "bearing replaced"),
        ]
        with sessions() as session:
            audited = session.execute(
                select(AuditRow.actor, AuditRow.action, AuditRow.target).where(
                    AuditRow.action.startswith("incident.")
                )
            ).all()
        assert [tuple(a) for a in audited] == [
            ("ana", "incident.acknowledged", f"incident/{target}"),
            ("ana", "incident.resolved", f"incident/{target}"),
        ]

    def test_a_state_that_forbids_the_action_is_409(
        self, client: TestClient, ana: Headers, fleet: Fleet
    ) -> None:
        target = fleet.ids["sensor_001"]
        assert act(client, ana, target, "acknowledge").status_code == 200

        again = act(client, ana, target, "acknowledge")
        assert act(client, ana, target, "resolve").status_code == 200
        resolved_again = act(client, ana, target, "resolve")

        for answer in (again, resolved_again):
            assert answer.status_code == 409, answer.text
            assert answer.json()["rule"] == "incident_state"

    def test_the_alerter_cannot_reopen_what_a_person_resolved(
        self,
        client: TestClient,
        ana: Headers,
        fleet: Fleet,
        sessions: sessionmaker[Session],
    ) -> None:
        act(client, ana, fleet.ids["sensor_002"], "resolve")

        made = record(sessions, [anomaly("sensor_002_radial", fleet.t0 + 60, 1.3)])

        assert made["sensor_002"][0].id != fleet.ids["sensor_002"]
        assert made["sensor_002"][0].state == "open"

    def test_a_comment_in_any_state(
        self, client: TestClient, ana: Headers, fleet: Fleet
    ) -> None:
        answer = act(client, ana, fleet.ids["pump7_old"], "comment", text="seen")

        assert answer.status_code == 200, answer.text
        assert answer.json()["history"][-1] == {
            "action": "commented",
            "actor": "ana",
            "detail": "seen",
            "at": pytest.approx(time.time(), abs=60),
        }

    @pytest.mark.parametrize(
        ("body", "rule"),
        [
            ({"text": "   "}, "comment_text"),
            ({"text": ""}, "comment_text"),
            ({}, "request_schema"),
            ({"text": "x" * 1001}, "request_schema"),
            ({"text": "a\x1bb"}, "no_control_characters"),
            ({"text": "ok", "by": "me"}, "request_schema"),
        ],
    )
    def test_a_bad_comment_is_refused(
        self,
        client: TestClient,
        ana: Headers,
        fleet: Fleet,
        body: dict[str, Any],
        rule: str,
    ) -> None:
        refused(act(client, ana, fleet.ids["sensor_001"], "comment", **body), rule)

    @pytest.mark.parametrize("action", ["acknowledge", "resolve", "comment"])
    def test_viewers_read_but_do_not_act(
        self, client: TestClient, viewer: Headers, fleet: Fleet, action: str
    ) -> None:
        body = {"text": "x"} if action == "comment" else {}
        answer = act(client, viewer, fleet.ids["sensor_001"], action, **body)

        assert answer.status_code == 403
        assert answer.json()["rule"] == "role_allows"

    @pytest.mark.parametrize("action", ["acknowledge", "resolve", "comment"])
    def test_an_unknown_incident_is_404(
        self, client: TestClient, ana: Headers, action: str
    ) -> None:
        body = {"text": "x"} if action == "comment" else {}
        answer = act(client, ana, 12345, action, **body)

        assert answer.status_code == 404
        assert answer.json()["rule"] == "incident_exists"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_change_made_meanwhile_is_409(
    client: TestClient, ana: Headers, fleet: Fleet, sessions: sessionmaker[Session]
) -> None:
    """A person resolves the incident while another's acknowledgement waits for
    the row (PostgreSQL's row locks): the acknowledgement finds it changed."""
    target = fleet.ids["sensor_001"]
    with sessions() as other, ThreadPoolExecutor(1) as pool:
        IncidentStore(other).act(
            target, lambda i: incidents.resolve(i, "bo", time.time(), "")
        )
        pending = pool.submit(act, client, ana, target, "acknowledge")
        _wait_for_a_lock_wait(sessions)
        other.commit()
        answer = pending.result(timeout=10)

    assert answer.status_code == 409, answer.text
    assert answer.json()["rule"] == "concurrent_change"


def _wait_for_a_lock_wait(sessions: sessionmaker[Session]) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(200):
        with sessions() as session:
            if session.scalar(waiting):
                return
        time.sleep(0.02)
    pytest.fail("the acknowledgement never waited for the row")


def add_rollups(
    sessions: sessionmaker[Session],
    hours_ago: int,
    counts: dict[str, tuple[int, int]],
    now: float | None = None,
) -> None:
    """(predictions, anomalies) per series in the hour `hours_ago` before the
    one holding `now` (default: this one)."""
    at = time.time() if now is None else now
    hour = datetime.fromtimestamp((at // 3600 - hours_ago) * 3600, UTC)
    n = len(counts)
    with sessions() as session:
        RollupStore(session).add(
            Rollups(
                hour,
                list(counts),
                [p for p, _ in counts.values()],
                [a for _, a in counts.values()],
                [1] * n,
                [1.0] * n,
                [1.0] * n,
            )  # fmt: skip
        )
        session.commit()


class TestFleetStatus:
    @pytest.fixture
    def rollups(self, sessions: sessionmaker[Session]) -> None:
        add_rollups(sessions, 0, {"sensor_001_radial": (100, 5), "line9.m1_x": (50, 0)})
        add_rollups(sessions, 1, {"sensor_002_axial": (300, 3)})
        add_rollups(sessions, 3, {"sensor_002_axial": (1000, 1000)})  # too old

    @pytest.mark.usefixtures("rollups")
    def test_figures(self, client: TestClient, viewer: Headers, fleet: Fleet) -> None:
        body = client.get("/api/v1/fleet/status", headers=viewer).json()

        assert body["live"] == {
            "total": 5,
            "by_severity": {"minor": 3, "major": 1, "critical": 1},
            "by_kind": {"anomaly": 4, "data_quality": 1},
        }
        assert body["sensors_anomalous_now"] == 4  # not sensor_003
        assert [
            (g["group"], g["live_incidents"], g["sensors_affected"],
             g["predictions"], g["anomalies"], g["anomaly_rate"])
            for g in body["groups"]
        ] == [
            ("sensor", 3, 3, 400, 8, 0.02),
            ("press.l2", 1, 1, 0, 0, None),
            ("pump7", 1, 1, 0, 0, None),
            ("line9", 0, 0, 50, 0, 0.0),
        ]  # fmt: skip
        assert body["groups_total"] == 4
        assert [i["id"] for i in body["top"]] == [
            fleet.ids[n]
            for n in ("sensor_001", "pump7", "press.l2.m07", "sensor_002", "sensor_003")
        ]

    @pytest.mark.usefixtures("rollups", "fleet")
    def test_shows_as_many_groups_as_asked(
        self, client: TestClient, viewer: Headers
    ) -> None:
        body = client.get("/api/v1/fleet/status?groups=1", headers=viewer).json()

        assert [g["group"] for g in body["groups"]] == ["sensor"]
        assert body["groups_total"] == 4

    def test_rates_are_kept_then_read_again(
        self, sessions: sessionmaker[Session]
    ) -> None:
        clock = [1_800_000_000.0]  # the start of an hour
        rates = GroupRates(sessions, ttl_s=15.0, clock=lambda: clock[0])
        add_rollups(sessions, 0, {"sensor_001_radial": (100, 5)}, clock[0])
        first, stale = rates.current()
        add_rollups(sessions, 0, {"sensor_001_radial": (100, 5)}, clock[0])

        clock[0] += 10
        kept, still_fresh = rates.current()
        clock[0] += 10
        _, now_stale = rates.current()
        rates.refresh()
        fresh, _ = rates.current()

        assert first.by_group == kept.by_group == {"sensor": (100, 5)}
        assert (stale, still_fresh, now_stale) == (False, False, True)
        assert fresh.by_group == {"sensor": (200, 10)}
