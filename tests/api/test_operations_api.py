"""POST /operations and its progress, over HTTP on the embedded server (its
runner thread runs them)."""

from __future__ import annotations

from typing import Any

import pytest
from bench._fleet import series_ids
from fastapi.testclient import TestClient

from atalaia.api.training.operation_schemas import OperationBody
from atalaia.core.operations import MAX_SERIES
from atalaia.errors import InvalidInput
from atalaia.settings import Settings
from fixtures.api import Headers, refused, wait_for
from fixtures.operations import BEFORE, promotable_at, stages_at

OPERATIONS = "/api/v1/operations"
FLEET = series_ids(90)  # 30 sensors


@pytest.fixture
def fleet(client: TestClient, settings: Settings) -> TestClient:
    promotable_at(settings.database_url, FLEET)
    return client


def finished(client: TestClient, headers: Headers, operation_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found: dict[str, Any] = client.get(
            f"{OPERATIONS}/{operation_id}", headers=headers
        ).json()
        return found if found["status"] not in ("queued", "running") else None

    return wait_for(probe)


def start(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(OPERATIONS, json=body, headers=headers)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


class TestCreate:
    def test_a_promotion_is_queued_then_run_with_its_progress(
        self, fleet: TestClient, engineer: Headers, viewer: Headers
    ) -> None:
        body = {
            "action": "promote",
            "selector": {"prefix": "sensor_00001"},  # sensors 10 to 19
            "reason": "weekly retraining",
        }

        accepted = start(fleet, engineer, body)
        ended = finished(fleet, viewer, accepted["operation_id"])

        assert accepted["status"] == "queued"
        assert accepted["total"] == 30
        assert accepted["links"]["self"] == f"{OPERATIONS}/{accepted['operation_id']}"
        assert ended["status"] == "done"
        assert (ended["done"], ended["failed"], ended["skipped"]) == (30, 0, 0)
        assert ended["remaining"] == 0
        assert ended["rate_per_s"] > 0
        assert ended["eta_s"] is None
        assert ended["started_at"] <= ended["finished_at"]
        assert ended["actor"] == "tester"
        assert ended["reason"] == "weekly retraining"
        assert ended["selector"] == {"prefix": "sensor_00001"}
        assert ended["errors"] == []

    def test_the_promoted_versions_are_served(
        self, fleet: TestClient, engineer: Headers
    ) -> None:
        accepted = start(
            fleet, engineer, {"action": "promote", "selector": {"all": True}}
        )
        finished(fleet, engineer, accepted["operation_id"])

        def served_v2() -> dict[str, Any] | None:
            points = [{"series_id": s, "timestamp": 1.7e9, "value": 0.3} for s in FLEET]
            answer: dict[str, Any] = fleet.post(
                "/api/v1/predict/batch", json={"points": points}, headers=engineer
            ).json()
            versions = {r["model_info"]["version"] for r in answer["results"]}
            return answer if versions == {2} else None

        assert wait_for(served_v2)["count"] == len(FLEET)

    def test_a_canary_operation_starts_canaries_that_answer(
        self, fleet: TestClient, engineer: Headers
    ) -> None:
        body = {
            "action": "canary",
            "selector": {"prefix": "sensor_00001"},  # sensors 10 to 19
            "canary_config": {"initial_percentage": 50},
            "gates": {"min_predictions": 1_000},
        }

        accepted = start(fleet, engineer, body)
        ended = finished(fleet, engineer, accepted["operation_id"])
        running = fleet.get(
            "/api/v1/rollouts?state=running&limit=100", headers=engineer
        ).json()["rollouts"]

        assert (ended["status"], ended["done"], ended["skipped"]) == ("done", 30, 0)
        assert ended["canary"]["plan"]["initial"] == 50
        assert ended["canary"]["gates"]["min_predictions"] == 1_000
        assert len(running) == 30
        assert {(r["strategy"], r["percentage"]) for r in running} == {("canary", 50)}
        chosen = sorted(r["series_id"] for r in running)

        def both_answer() -> set[str] | None:
            points = [
                {"series_id": s, "timestamp": 1.7e9 + i, "value": 0.3}
                for s in chosen
                for i in range(4)
            ]
            answer = fleet.post(
                "/api/v1/predict/batch", json={"points": points}, headers=engineer
            ).json()
            roles = {r["model_info"]["role"] for r in answer["results"]}
            return roles if roles == {"production", "canary"} else None

        assert wait_for(both_answer) == {"production", "canary"}

    def test_a_dry_run_answers_the_counts_and_changes_nothing(
        self, fleet: TestClient, settings: Settings, engineer: Headers
    ) -> None:
        body = {
            "action": "promote",
            "selector": {"series_ids": ["sensor_000001_axial", "nobody"]},
            "condition": {"max_holdout_false_alarm_rate": 0.01},
            "dry_run": True,
        }

        response = fleet.post(OPERATIONS, json=body, headers=engineer)

        assert response.status_code == 200, response.text
        assert response.json() == {
            "dry_run": True,
            "action": "promote",
            "selected": 2,
            "eligible": 1,
            "skipped": 0,
            "skipped_by_reason": {},
            "failed": 1,
            "errors": [{"series_id": "nobody", "error": "no model version"}],
        }
        listed = fleet.get(OPERATIONS, headers=engineer).json()
        assert listed["operations"] == []
        assert set(stages_at(settings.database_url).values()) == {BEFORE}

    def test_a_list_of_a_hundred_thousand_series_is_taken(
        self, fleet: TestClient, engineer: Headers
    ) -> None:
        named = [*FLEET, *(f"pump_{i:06d}_radial" for i in range(100_000))]
        body = {"action": "rollback", "selector": {"series_ids": named}}

        response = fleet.post(
            OPERATIONS, json=body | {"dry_run": True}, headers=engineer
        )

        assert response.status_code == 200, response.text
        counts = response.json()
        assert (counts["selected"], counts["failed"]) == (100_090, 100_000)
        assert counts["skipped_by_reason"] == {"no_earlier_production_version": 90}
        assert len(counts["errors"]) == 20

    def test_a_viewer_may_read_but_not_start_one(
        self, fleet: TestClient, viewer: Headers
    ) -> None:
        body = {"action": "rollback", "selector": {"all": True}}

        response = fleet.post(OPERATIONS, json=body, headers=viewer)

        assert response.status_code == 403
        assert response.json()["rule"] == "role_allows"
        assert fleet.get(OPERATIONS, headers=viewer).status_code == 200


class TestRefused:
    @pytest.mark.parametrize(
        ("body", "rule"),
        [
            ({"action": "promote", "selector": {}}, "selector_exactly_one"),
            ({"action": "promote", "selector": {"all": None}}, "selector_exactly_one"),
            (
                {"action": "promote", "selector": {"prefix": "a", "sensor": None}},
                "selector_exactly_one",
            ),
            (
                {"action": "promote", "selector": {"prefix": "a", "sensor": "b"}},
                "selector_exactly_one",
            ),
            ({"action": "promote", "selector": {"series_ids": []}}, "series_ids_count"),
            ({"action": "promote", "selector": {"prefix": ""}}, "selector_not_empty"),
            (
                {"action": "promote", "selector": {"series_ids": ["bad id"]}},
                "series_id_format",
            ),
            (
                {
                    "action": "rollback",
                    "selector": {"all": True},
                    "condition": {"anomaly_rate_within": 0.2},
                },
                "condition_of_candidates",
            ),
            (
                {
                    "action": "promote",
                    "selector": {"all": True},
                    "condition": {"max_holdout_false_alarm_rate": 1.5},
                },
                "condition_range",
            ),
            (
                {
                    "action": "promote",
                    "selector": {"all": True},
                    "canary_config": {"initial_percentage": 5},
                },
                "canary_config_canary",
            ),
            (
                {"action": "rollback", "selector": {"all": True}, "gates": {}},
                "canary_config_canary",
            ),
            (
                {
                    "action": "canary",
                    "selector": {"all": True},
                    "canary_config": {"initial_percentage": 0},
                },
                "request_schema",
            ),
            ({"action": "retrain", "selector": {"all": True}}, "request_schema"),
            ({"action": "promote", "selector": {"all": False}}, "request_schema"),
            (
                {"action": "promote", "selector": {"all": True}, "x": 1},
                "request_schema",
            ),
        ],
    )
    def test_a_bad_body_names_the_rule(
        self, fleet: TestClient, engineer: Headers, body: dict[str, Any], rule: str
    ) -> None:
        refused(fleet.post(OPERATIONS, json=body, headers=engineer), rule)

    def test_no_more_than_the_largest_list(self) -> None:
        ids = [f"s{i}" for i in range(MAX_SERIES + 1)]
        body = {"action": "promote", "selector": {"series_ids": ids}}

        with pytest.raises(InvalidInput) as refusal:
            OperationBody.model_validate(body)
        assert refusal.value.rule == "series_ids_count"

    def test_an_unknown_batch_or_nothing_selected(
        self, fleet: TestClient, engineer: Headers
    ) -> None:
        batch = {"action": "promote", "selector": {"batch_id": "b-1"}}
        nothing = {"action": "promote", "selector": {"prefix": "pump"}}

        unknown = fleet.post(OPERATIONS, json=batch, headers=engineer)
        empty = fleet.post(OPERATIONS, json=nothing, headers=engineer)

        assert (unknown.status_code, unknown.json()["rule"]) == (404, "batch_exists")
        assert (empty.status_code, empty.json()["rule"]) == (404, "selector_matches")


class TestListAndCancel:
    def test_lists_newest_first_a_page_at_a_time(
        self, fleet: TestClient, engineer: Headers
    ) -> None:
        ids = []
        for sensor in range(3):
            selector = {"sensor": f"sensor_{sensor:06d}"}
            ids.append(
                start(fleet, engineer, {"action": "promote", "selector": selector})
            )
        newest_first = [a["operation_id"] for a in reversed(ids)]

        first = fleet.get(f"{OPERATIONS}?limit=2", headers=engineer).json()
        cursor = first["next_cursor"]
        second = fleet.get(f"{OPERATIONS}?limit=2&cursor={cursor}", headers=engineer)

        assert [o["id"] for o in first["operations"]] == newest_first[:2]
        assert [o["id"] for o in second.json()["operations"]] == newest_first[2:]
        assert second.json()["next_cursor"] is None

    def test_an_ended_operation_cannot_be_cancelled(
        self, fleet: TestClient, engineer: Headers
    ) -> None:
        accepted = start(
            fleet, engineer, {"action": "rollback", "selector": {"all": True}}
        )
        path = f"{OPERATIONS}/{accepted['operation_id']}"
        ended = finished(fleet, engineer, accepted["operation_id"])

        again = fleet.post(f"{path}/cancel", headers=engineer)
        unknown = fleet.post(f"{OPERATIONS}/nope/cancel", headers=engineer)

        assert ended["skipped_by_reason"] == {"no_earlier_production_version": 90}
        assert again.status_code == 409
        assert again.json()["rule"] == "operation_cancellable"
        assert unknown.status_code == 404
        assert unknown.json()["rule"] == "operation_exists"
