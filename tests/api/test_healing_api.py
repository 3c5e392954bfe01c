"""Healing API: the engine's decisions, filtered and paged; its rules, which a
viewer reads and only an admin changes (audited)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import HealingLog
from atalaia.adapters.db.tables import AuditRow
from atalaia.api import training
from atalaia.core.healing import Decision, Outcome, Verdict
from fixtures.api import Headers, SettingsFactory

ACTIONS = "/api/v1/healing/actions"
RULES = "/api/v1/healing/rules"
AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The training service, on each database."""
    settings = make_settings(database_url, healing_training_backlog_dry_run=True)
    with TestClient(training.create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def decisions(sessions: sessionmaker[Session]) -> None:
    """Five decisions an hour apart, the newest at AT: retrains of pump_1 …
    pump_3 (the last rate limited), a silent sensor, a backlog alert."""
    made = [
        (Decision("data_drift", "retrain", "pump_1_x", "drifted"), Outcome.DONE),
        (Decision("data_drift", "retrain", "pump_2_x", "drifted"), Outcome.DONE),
        (Decision("data_drift", "retrain", "pump_3_x", "drifted"),
         Outcome.RATE_LIMITED),
        (Decision("sensor_quality", "open_incident", "pump_4", "silent",
                  {"series": {"pump_4_x": {"last_ts": 1.0}}}), Outcome.DONE),
        (Decision("training_backlog", "alert", "training_queue", "3 jobs queued"),
         Outcome.DRY_RUN),
    ]  # fmt: skip
    with sessions() as session:
        log = HealingLog(session)
        for i, (decision, outcome) in enumerate(made):
            log.record(
                [Verdict(decision, outcome)],
                at=AT - timedelta(hours=len(made) - 1 - i), request_id="run-1",
            )  # fmt: skip
        session.commit()


def listed(client: TestClient, headers: Headers, query: str = "") -> dict[str, Any]:
    response = client.get(f"{ACTIONS}?{query}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def targets(body: dict[str, Any]) -> list[str]:
    return [a["target"] for a in body["actions"]]


@pytest.mark.usefixtures("decisions")
class TestActions:
    def test_lists_every_decision_newest_first(
        self, client: TestClient, viewer: Headers
    ) -> None:
        body = listed(client, viewer)

        assert targets(body) == [
            "training_queue", "pump_4", "pump_3_x", "pump_2_x", "pump_1_x",
        ]  # fmt: skip
        newest = body["actions"][0]
        assert newest | {"id": 0} == {
            "id": 0, "at": "2026-12-03T12:00:00Z", "rule": "training_backlog",
            "action": "alert", "target": "training_queue", "outcome": "dry_run",
            "reason": "3 jobs queued", "evidence": {}, "episode": "",
            "request_id": "run-1",
        }  # fmt: skip
        assert body["next_cursor"] is None

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("rule=data_drift", ["pump_3_x", "pump_2_x", "pump_1_x"]),
            ("outcome=done", ["pump_4", "pump_2_x", "pump_1_x"]),
            ("rule=data_drift&outcome=rate_limited", ["pump_3_x"]),
            ("target=pump_4", ["pump_4"]),
            (f"since={(AT - timedelta(hours=1)).timestamp()}",
             ["training_queue", "pump_4"]),
            ("rule=concept_drift", []),
        ],
    )  # fmt: skip
    def test_filters(
        self, client: TestClient, viewer: Headers, query: str, expected: list[str]
    ) -> None:
        assert targets(listed(client, viewer, query)) == expected

    def test_pages_through_them_with_the_cursor(
        self, client: TestClient, viewer: Headers
    ) -> None:
        pages, cursor = [], ""
        while True:
            body = listed(client, viewer, f"limit=2{cursor}")
            pages.append(targets(body))
            if body["next_cursor"] is None:
                break
            cursor = f"&cursor={body['next_cursor']}"

        assert pages == [
            ["training_queue", "pump_4"], ["pump_3_x", "pump_2_x"], ["pump_1_x"],
        ]  # fmt: skip

    def test_refuses_an_outcome_there_is_not(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get(f"{ACTIONS}?outcome=maybe", headers=viewer)

        assert response.status_code == 422, response.text


class TestRules:
    def test_lists_each_rule_with_its_policy_from_the_settings(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get(RULES, headers=viewer)

        assert response.status_code == 200, response.text
        rules = {r["name"]: r for r in response.json()["rules"]}
        assert list(rules) == [
            "data_drift", "concept_drift", "production_gates", "sensor_quality",
            "training_backlog", "dependency_circuit",
        ]  # fmt: skip
        backlog = rules["training_backlog"]
        assert (backlog["enabled"], backlog["dry_run"]) == (True, True)
        assert (backlog["max_actions_per_hour"], backlog["source"]) == (10, "settings")
        assert backlog["description"].startswith("training jobs wait longer")

    def test_an_admin_changes_a_rule_and_the_audit_log_says_so(
        self,
        client: TestClient,
        admin: Headers,
        viewer: Headers,
        sessions: sessionmaker[Session],
    ) -> None:
        response = client.patch(
            f"{RULES}/concept_drift",
            json={"dry_run": True, "max_actions_per_hour": 5.0},
            headers=admin,
        )

        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["enabled"], changed["dry_run"]) == (True, True)
        assert (changed["max_actions_per_hour"], changed["source"]) == (5, "api")
        assert changed["updated_by"] == "tester"
        listed_rules = client.get(RULES, headers=viewer).json()["rules"]
        assert changed in listed_rules
        with sessions() as session:
            (entry,) = session.scalars(
                select(AuditRow).where(AuditRow.action == "healing.rule_changed")
            ).all()
        assert entry.target == "concept_drift"
        assert entry.detail["before"]["dry_run"] is False
        assert entry.detail["after"]["max_actions_per_hour"] == 5

    def test_a_viewer_may_not_change_a_rule(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.patch(
            f"{RULES}/data_drift", json={"enabled": False}, headers=viewer
        )

        assert response.status_code == 403, response.text
        rules = client.get(RULES, headers=viewer).json()["rules"]
        assert all(r["enabled"] for r in rules)

    def test_a_rule_there_is_not_is_a_404(
        self, client: TestClient, admin: Headers
    ) -> None:
        response = client.patch(f"{RULES}/rollback", json={}, headers=admin)

        assert response.status_code == 404, response.text
        assert response.json()["error"] == "HealingRuleNotFound"
        assert "data_drift" in response.json()["detail"]
