"""Canaries and shadows through the API, in compressed time.

The embedded platform serves them for real: the candidate is routed in
inference, its counters are flushed to the database, and the rollout task
steps them. Time is compressed by handing the task its clock (`now`): a
step that is due two hours later is taken at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from atalaia.adapters.db.tables import PlatformEventRow
from atalaia.api.common.resources import Resources
from atalaia.embedded import create_embedded_app
from atalaia.services import rollouts
from atalaia.services.inference import Predictor
from fixtures.api import Headers, SettingsFactory, finished_job, promote, wait_for
from fixtures.readings import sensor_series

SERIES = "sensor_001_radial"
# Readings to predict: after the training data, from the same process.
T0 = 1_734_000_000.0


def _trained(
    client: TestClient, headers: Headers, *, level: float = 0.3, seed: int = 0,
    algorithm: str = "zscore",
) -> int:  # fmt: skip
    """A version of SERIES trained on a week of readings around `level`."""
    timestamps, values = sensor_series(10_080, seed=seed, level=level)
    response = client.post(
        f"/api/v1/training/{SERIES}",
        json={
            "timestamps": timestamps.tolist(),
            "values": values.tolist(),
            "config": {"algorithm": algorithm},
        },
        headers=headers,
    )
    assert response.status_code == 202, response.text
    job = finished_job(client, response.json()["job_id"], headers)
    assert job["status"] == "succeeded", job
    version: int = job["model_version"]
    return version


@dataclass
class Platform:
    client: TestClient
    admin: Headers
    predictor: Predictor
    resources: Resources
    production: int
    clock: datetime
    sent: int = 0  # readings predicted so far

    def predict(self, n: int) -> dict[str, Any]:
        """The columnar answer to the next `n` readings of SERIES."""
        timestamps, values = sensor_series(n, seed=50 + self.sent, start=T0)
        timestamps = timestamps + 60.0 * self.sent
        self.sent += n
        body = {
            "series_id": [SERIES] * n,
            "timestamp": timestamps.tolist(),
            "value": values.tolist(),
        }
        response = self.client.post(
            "/api/v1/predict/batch", json=body, headers=self.admin
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def start(self, version: int, **body: Any) -> dict[str, Any]:
        response = self.client.post(
            f"/api/v1/models/{SERIES}/versions/{version}/promote",
            json=body,
            headers=self.admin,
        )
        assert response.status_code == 202, response.text
        self.clock = datetime.now(UTC)  # the rollout's steps count from here
        rollout: dict[str, Any] = response.json()["rollout"]
        return rollout

    def step(self, hours: float = 0.0) -> rollouts.StepReport:
        """Flush inference's counters, then run the rollout task `hours` on."""
        self.predictor.candidates.flush(self.predictor.store)
        self.clock += timedelta(hours=hours)
        return rollouts.run_steps(sessions=self.resources.sessions, now=self.clock)

    def config(self) -> dict[str, Any]:
        response = self.client.get(
            f"/api/v1/models/{SERIES}/deployment-config", headers=self.admin
        )
        assert response.status_code == 200, response.text
        config: dict[str, Any] = response.json()
        return config

    def stages(self) -> dict[int, str]:
        versions = self.client.get(
            f"/api/v1/models/{SERIES}/versions", headers=self.admin
        ).json()
        return {v["version"]: v["stage"] for v in versions}

    def rollout(self, rollout_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.client.get(
            f"/api/v1/rollouts/{rollout_id}", headers=self.admin
        ).json()
        return found

    def wait_for_role(self, role: str) -> None:
        """Until inference routes some reading to `role` (it follows the
        registry's change feed)."""
        wait_for(lambda: True if role in self.predict(200)["role"] else None)

    def wait_for_share(self, percentage: float) -> None:
        """Until inference routes `percentage` % of SERIES' readings to its
        candidate (it follows the registry's change feed)."""
        candidates = self.predictor.candidates
        wait_for(
            lambda: (
                True
                if (split := candidates.routes.splits.get(SERIES))
                and split.share == percentage / 100
                else None
            )
        )

    def wait_until_only(self, role: str) -> None:
        wait_for(lambda: True if set(self.predict(200)["role"]) == {role} else None)


@pytest.fixture
def platform(
    make_settings: SettingsFactory, database_url: str, admin: Headers
) -> Iterator[Platform]:
    """The embedded platform on each backend (versions trained back to back),
    SERIES served by a production version."""
    settings = make_settings(database_url, training_min_interval_s=0)
    with TestClient(create_embedded_app(settings)) as client:
        production = _trained(client, admin)
        promote(client, SERIES, production, admin)
        state = client.app_state
        platform = Platform(
            client, admin, state["predictor"], state["resources"], production,
            datetime.now(UTC),
        )  # fmt: skip
        platform.wait_until_only("production")
        yield platform


CANARY = {
    "strategy": "canary",
    "canary_config": {
        "initial_percentage": 5,
        "increment_percentage": 15,
        "increment_interval_hours": 2,
    },
    "gates": {"min_predictions": 50},
}


class TestCanary:
    def test_a_healthy_canary_walks_from_5_to_100_percent(
        self, platform: Platform
    ) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        rollout = platform.start(candidate, **CANARY)
        assert (rollout["state"], rollout["percentage"]) == ("running", 5)
        platform.wait_for_role("canary")

        shares = []
        while (canary_now := platform.config()["canary"]) is not None:
            platform.wait_for_share(canary_now["percentage"])
            answer = platform.predict(2_000)
            canary = np.array(answer["role"]) == "canary"
            assert set(np.array(answer["version"])[canary]) == {candidate}
            assert set(np.array(answer["stage"])[canary]) == {"staging"}
            shares.append((platform.config()["split"]["candidate"], canary.mean()))
            platform.step(hours=2)
            assert len(shares) < 10, shares

        assert [percentage for percentage, _ in shares] == [
            5, 20, 35, 50, 65, 80, 95
        ]  # fmt: skip
        for percentage, seen in shares:
            assert abs(seen - percentage / 100) < 0.05, shares
        assert platform.stages() == {platform.production: "archived",
                                     candidate: "production"}  # fmt: skip
        ended = platform.rollout(rollout["id"])
        assert ended["state"] == "promoted"
        assert ended["figures"]["candidate"]["errors"] == 0
        assert ended["figures"]["paired"]["agreement"] > 0.95
        history = platform.config()["history"]
        steps = [e for e in history if "canary" in e["reason"]]
        assert steps[-1]["to_stage"] == "production"
        assert all(e["evidence"]["rollout_id"] == rollout["id"] for e in steps)
        assert "candidate_anomaly_rate" in steps[-1]["evidence"]
        recent = platform.client.get(
            "/api/v1/models/overview", headers=platform.admin
        ).json()["recent_changes"]
        assert {c["kind"] for c in recent if c["series_id"] == SERIES} >= {
            "rollout", "promotion", "retirement"
        }  # fmt: skip
        platform.wait_until_only("production")
        assert set(platform.predict(100)["version"]) == {candidate}

    def test_a_candidate_whose_anomaly_rate_is_off_is_rolled_back_at_once(
        self, platform: Platform
    ) -> None:
        shifted = _trained(platform.client, platform.admin, level=0.6, seed=2)
        rollout = platform.start(shifted, **CANARY)
        platform.wait_for_role("canary")
        platform.predict(4_000)

        report = platform.step()  # its step is 2 h away: a failed gate waits not

        assert report.actions == {rollout["id"]: "roll_back"}
        ended = platform.rollout(rollout["id"])
        assert ended["state"] == "rolled_back"
        assert "anomaly rate" in ended["outcome"]
        assert ended["evidence"]["candidate_anomaly_rate"] > 0.5
        assert platform.stages() == {platform.production: "production",
                                     shifted: "archived"}  # fmt: skip
        rollback = platform.config()["history"][-1]
        assert (rollback["from_stage"], rollback["to_stage"]) == ("staging", "archived")
        assert rollback["evidence"]["candidate_anomaly_rate"] > 0.5
        platform.wait_until_only("production")
        with platform.resources.sessions() as session:
            told = session.scalars(
                select(PlatformEventRow.title).where(
                    PlatformEventRow.event == "model.rolled_back"
                )
            ).all()
        assert told == [f"{SERIES}: v{shifted} rolled back by scheduler"]

    def test_a_candidate_that_cannot_answer_is_rolled_back(
        self, platform: Platform
    ) -> None:
        forest = _trained(platform.client, platform.admin, seed=3,
                          algorithm="isolation_forest")  # fmt: skip
        key = platform.client.get(
            f"/api/v1/models/{SERIES}/versions/{forest}", headers=platform.admin
        ).json()["artifact"]
        platform.resources.artifacts.delete(key)  # its trees are lost
        rollout = platform.start(forest, **CANARY)
        wait_for(lambda: _scored(platform, rollout["id"]) or None)
        platform.predict(4_000)

        report = platform.step()

        assert report.actions == {rollout["id"]: "roll_back"}
        ended = platform.rollout(rollout["id"])
        assert ended["figures"]["candidate"]["error_rate"] == 1.0
        assert "error rate 100.00%" in ended["outcome"]
        assert set(platform.predict(500)["role"]) == {"production"}

    def test_a_replayed_reading_goes_the_same_way(self, platform: Platform) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        platform.start(candidate, **{**CANARY, "canary_config": {
            "initial_percentage": 50, "increment_percentage": 10,
        }})  # fmt: skip
        platform.wait_for_role("canary")
        platform.sent = 0

        first = platform.predict(1_000)
        platform.sent = 0
        again = platform.predict(1_000)

        assert first["role"] == again["role"]
        assert 0.4 < np.mean(np.array(first["role"]) == "canary") < 0.6
        one = platform.client.post(
            f"/api/v1/predict/{SERIES}",
            json={"timestamp": T0, "value": first["expected"][0]},
            headers=platform.admin,
        ).json()
        assert one["model_info"]["role"] == first["role"][0]
        expected_stage = "staging" if first["role"][0] == "canary" else "production"
        assert one["model_info"]["stage"] == expected_stage


class TestShadow:
    def test_a_shadow_answers_nothing_and_is_rejected_with_its_reasons(
        self, platform: Platform
    ) -> None:
        shifted = _trained(platform.client, platform.admin, level=0.6, seed=2)
        rollout = platform.start(
            shifted, strategy="shadow", shadow_config={"duration_hours": 6},
            gates={"min_predictions": 50},
        )  # fmt: skip
        wait_for(lambda: _scored(platform, rollout["id"]) or None)
        answer = platform.predict(2_000)
        assert set(answer["role"]) == {"production"}
        assert set(answer["version"]) == {platform.production}

        assert platform.step(hours=5).actions == {}  # not over yet
        assert platform.step(hours=1).actions == {rollout["id"]: "reject"}

        ended = platform.rollout(rollout["id"])
        assert (ended["state"], ended["decision"]) == ("rejected", "reject")
        assert "anomaly rate" in ended["outcome"]
        assert ended["figures"]["paired"]["readings"] >= 2_000
        assert ended["figures"]["paired"]["agreement"] < 0.5
        assert platform.stages()[shifted] == "staging"
        listed = platform.client.get(
            "/api/v1/rollouts", params={"strategy": "shadow", "decision": "reject"},
            headers=platform.admin,
        ).json()["rollouts"]  # fmt: skip
        assert [r["id"] for r in listed] == [rollout["id"]]
        assert platform.config()["shadow"]["decision"] == "reject"

    def test_a_shadow_that_passes_starts_its_canary(self, platform: Platform) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        rollout = platform.start(
            candidate, strategy="shadow", shadow_config={"duration_hours": 1},
            canary_config={"initial_percentage": 10}, gates={"min_predictions": 50},
        )  # fmt: skip
        wait_for(lambda: _scored(platform, rollout["id"]) or None)
        platform.predict(2_000)

        assert platform.step(hours=1).actions == {rollout["id"]: "canary"}

        assert platform.rollout(rollout["id"])["state"] == "passed"
        canary = platform.config()["canary"]
        assert (canary["percentage"], canary["candidate_version"]) == (10, candidate)
        platform.wait_for_role("canary")


class TestAbTest:
    def test_an_ab_test_splits_for_its_period_then_reports_and_moves_nothing(
        self, platform: Platform
    ) -> None:
        shifted = _trained(platform.client, platform.admin, level=0.6, seed=2)
        test = platform.start(
            shifted, strategy="ab",
            ab_config={"percentage": 30, "duration_hours": 24},
        )  # fmt: skip
        assert (test["strategy"], test["split"]) == (
            "ab", {"candidate": 30, "production": 70}
        )  # fmt: skip
        platform.wait_for_role("challenger")
        answer = platform.predict(3_000)
        challenger = np.array(answer["role"]) == "challenger"
        assert 0.25 < challenger.mean() < 0.35
        assert set(np.array(answer["stage"])[challenger]) == {"staging"}
        alarms = np.flatnonzero(challenger & np.array(answer["anomaly"]))
        for at in alarms[:12].tolist():  # its alarms, judged false by a person
            label = {"timestamp": answer["timestamp"][at], "is_anomaly": False,
                     "version": shifted}  # fmt: skip
            response = platform.client.post(
                f"/api/v1/feedback/{SERIES}", json=label, headers=platform.admin
            )
            assert response.status_code in (200, 201), response.text

        assert platform.step(hours=23).actions == {}  # a failing arm waits its end
        assert platform.step(hours=1).actions == {test["id"]: "report"}

        ended = platform.rollout(test["id"])
        assert ended["state"] == "reported"
        report = ended["report"]
        assert report["anomaly_rate"]["challenger"] > 0.5
        assert report["anomaly_rate"]["significant"] is True
        assert report["labels"] == {"production": 0, "challenger": 12}
        assert report["precision"]["challenger"] == 0.0
        assert report["precision"]["p_value"] is None  # production has no label
        assert "anomaly rate" in ended["outcome"]
        assert platform.stages() == {platform.production: "production",
                                     shifted: "staging"}  # fmt: skip
        assert platform.config()["ab"]["report"] == report
        platform.wait_until_only("production")


def _scored(platform: Platform, rollout_id: int) -> bool:
    """Whether inference scored readings with the rollout's candidate yet."""
    platform.predict(50)
    platform.predictor.candidates.flush(platform.predictor.store)
    figures = platform.rollout(rollout_id)["figures"]["candidate"]
    return bool(figures["predictions"])


class TestRules:
    def test_one_rollout_at_a_time_and_no_direct_promotion_meanwhile(
        self, platform: Platform
    ) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        platform.start(candidate, **CANARY)
        url = f"/api/v1/models/{SERIES}/versions/{candidate}/promote"

        again = platform.client.post(url, json=CANARY, headers=platform.admin)
        direct = platform.client.post(url, json={}, headers=platform.admin)

        assert again.status_code == direct.status_code == 409
        assert again.json()["rule"] == direct.json()["rule"] == "one_rollout_per_series"

    def test_a_fleet_operation_leaves_a_series_in_a_canary_alone(
        self, platform: Platform
    ) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        platform.start(candidate, **CANARY)

        accepted = platform.client.post(
            "/api/v1/operations",
            json={"action": "promote", "selector": {"series_ids": [SERIES]}},
            headers=platform.admin,
        )  # fmt: skip
        assert accepted.status_code == 202, accepted.text
        url = f"/api/v1/operations/{accepted.json()['operation_id']}"

        ended = wait_for(
            lambda: (
                found
                if (found := platform.client.get(url, headers=platform.admin).json())[
                    "status"
                ]
                == "done"
                else None
            )
        )
        assert ended["skipped_by_reason"] == {"rollout_running": 1}
        assert platform.stages()[candidate] == "staging"

    def test_a_rollback_during_a_canary_rolls_the_canary_back(
        self, platform: Platform
    ) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        rollout = platform.start(candidate, **CANARY)

        response = platform.client.post(
            f"/api/v1/models/{SERIES}/rollback", json={"reason": "not today"},
            headers=platform.admin,
        )  # fmt: skip

        assert response.status_code == 200, response.text
        assert response.json()["rollout_ended"] is True
        assert platform.rollout(rollout["id"])["state"] == "rolled_back"
        assert platform.stages() == {platform.production: "production",
                                     candidate: "archived"}  # fmt: skip

    def test_a_cancelled_rollout_leaves_its_candidate_in_staging(
        self, platform: Platform, viewer: Headers
    ) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        rollout = platform.start(candidate, **CANARY)
        url = f"/api/v1/rollouts/{rollout['id']}/cancel"

        assert platform.client.post(url, headers=viewer).status_code == 403
        cancelled = platform.client.post(url, headers=platform.admin)
        twice = platform.client.post(url, headers=platform.admin)

        assert cancelled.json()["state"] == "cancelled"
        assert twice.status_code == 409
        assert twice.json()["rule"] == "rollout_running"
        assert platform.stages()[candidate] == "staging"
        assert platform.config()["split"] is None

    @pytest.mark.parametrize(
        ("body", "rule"),
        [
            ({"strategy": "direct", "gates": {}}, "request_schema"),
            ({"strategy": "canary", "shadow_config": {}}, "request_schema"),
            ({"strategy": "canary", "canary_config": {"initial_percentage": 0}},
             "request_schema"),
            ({"strategy": "canary", "gates": {"max_error_rate": 2}}, "request_schema"),
            ({"strategy": "ab", "ab_config": {"percentage": 100}}, "request_schema"),
            ({"strategy": "ab", "canary_config": {}}, "request_schema"),
        ],
    )  # fmt: skip
    def test_bad_bodies_are_refused(
        self, platform: Platform, body: dict[str, Any], rule: str
    ) -> None:
        candidate = _trained(platform.client, platform.admin, seed=1)
        response = platform.client.post(
            f"/api/v1/models/{SERIES}/versions/{candidate}/promote",
            json=body, headers=platform.admin,
        )  # fmt: skip

        assert response.status_code == 422
        assert response.json()["rule"] == rule
