"""The registry at a glance: production versions by algorithm, versions by
stage, staging versions waiting, the ledger's latest entries (all, promotions,
rollbacks). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import JobStore, ModelStore
from atalaia.api import training
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.registry import (
    ModelVersion,
    plan_direct_promotion,
    plan_rollback,
)
from atalaia.services.registry_overview import CHANGES, WAITING
from fixtures import factories
from fixtures.api import Headers, SettingsFactory, promote, train

OVERVIEW = "/api/v1/models/overview"
Sessions = sessionmaker[Session]


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    settings = make_settings(database_url, training_min_interval_s=0)
    with TestClient(training.create_app(settings)) as test_client:
        yield test_client


def register(sessions: Sessions, series_id: str, versions: int, algorithm: str) -> None:
    """Versions 1 to `versions` of a series, in Staging, each with its job."""
    with sessions() as session:
        for number in range(1, versions + 1):
            model = factories.model_version(
                number, series_id=series_id, algorithm=algorithm
            )
            JobStore(session).add(_job_of(model))
            session.flush()
            ModelStore(session).add(model, actor="trainer")
        session.commit()


def _job_of(model: ModelVersion) -> TrainingJob:
    return TrainingJob(
        job_id=model.lineage.job_id, series_id=model.series_id,
        status=JobStatus.SUCCEEDED, algorithm=model.algorithm,
        hyperparameters=model.lineage.hyperparameters, payload_key=None,
        window_hours=168.0, created_at=model.created_at, submitted_by="trainer",
    )  # fmt: skip


def promote_version(
    sessions: Sessions, series_id: str, version: int, *, archive: bool = True
) -> None:
    with sessions() as session:
        models = ModelStore(session)
        changes = plan_direct_promotion(
            models.get(series_id, version),
            models.production(series_id),
            archive_existing=archive,
        )
        models.apply(changes, actor="eve", reason=f"promote v{version}")
        session.commit()


def roll_back(sessions: Sessions, series_id: str) -> None:
    with sessions() as session:
        models = ModelStore(session)
        changes = plan_rollback(
            models.production(series_id), models.past_production(series_id)
        )
        models.apply(changes, actor="eve", reason="bad alarms")
        session.commit()


@pytest.fixture
def registry(sessions: Sessions) -> None:
    """Four series:

    - a_radial (zscore): v1 archived, v2 production, v3 staging (waits);
    - b_radial (robust): v1 staging (kept when v2 was promoted), v2 production;
    - c_radial (robust): v1 production after v2 was rolled back (archived);
    - d_radial (seasonal): v1 staging, never promoted (waits).
    """
    register(sessions, "a_radial", 3, "zscore")
    promote_version(sessions, "a_radial", 1)
    promote_version(sessions, "a_radial", 2)
    register(sessions, "b_radial", 2, "robust")
    promote_version(sessions, "b_radial", 1)
    promote_version(sessions, "b_radial", 2, archive=False)
    register(sessions, "c_radial", 2, "robust")
    promote_version(sessions, "c_radial", 1)
    promote_version(sessions, "c_radial", 2)
    roll_back(sessions, "c_radial")
    register(sessions, "d_radial", 1, "seasonal")


def overview(client: TestClient, headers: Headers, query: str = "") -> dict[str, Any]:
    answer = client.get(f"{OVERVIEW}{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def moves(changes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (c["series_id"], c["version"], c["kind"], c["from_stage"], c["to_stage"])
        for c in changes
    ]


@pytest.mark.usefixtures("registry")
class TestFigures:
    def test_counts_production_by_algorithm_and_versions_by_stage(
        self, client: TestClient, viewer: Headers
    ) -> None:
        body = overview(client, viewer)

        assert body["production_by_algorithm"] == {"robust": 2, "zscore": 1}
        assert body["stages"] == {"staging": 3, "production": 3, "archived": 2}

    def test_lists_staging_versions_newer_than_production_newest_first(
        self, client: TestClient, viewer: Headers
    ) -> None:
        waiting = overview(client, viewer)["staging_waiting"]

        assert [(w["series_id"], w["version"]) for w in waiting] == [
            ("d_radial", 1),
            ("a_radial", 3),
        ]
        assert waiting[0]["algorithm"] == "seasonal"
        assert waiting[0]["metrics"] == {
            "fit_seconds": 0.01,
            "train_anomaly_rate": 0.002,
        }

    def test_lists_the_ledger_newest_first_with_each_moves_kind(
        self, client: TestClient, viewer: Headers
    ) -> None:
        changes = overview(client, viewer)["recent_changes"]

        assert moves(changes[:6]) == [
            ("d_radial", 1, "registration", None, "staging"),
            ("c_radial", 1, "rollback", "archived", "production"),
            ("c_radial", 2, "retirement", "production", "archived"),
            ("c_radial", 2, "promotion", "staging", "production"),
            ("c_radial", 1, "retirement", "production", "archived"),
            ("c_radial", 1, "promotion", "staging", "production"),
        ]
        assert (changes[1]["actor"], changes[1]["reason"]) == ("eve", "bad alarms")
        assert len(changes) == 19  # 8 registrations and 11 moves

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            (
                "kind=promotion",
                [("c_radial", 2), ("c_radial", 1), ("b_radial", 2), ("b_radial", 1),
                 ("a_radial", 2), ("a_radial", 1)],
            ),
            ("kind=rollback", [("c_radial", 1)]),
            (
                "kind=promotion&kind=rollback",
                [("c_radial", 1), ("c_radial", 2), ("c_radial", 1), ("b_radial", 2),
                 ("b_radial", 1), ("a_radial", 2), ("a_radial", 1)],
            ),
        ],
    )  # fmt: skip
    def test_filters_the_ledger_by_kind(
        self,
        client: TestClient,
        viewer: Headers,
        query: str,
        expected: list[tuple[str, int]],
    ) -> None:
        changes = overview(client, viewer, f"?{query}")["recent_changes"]

        assert [(c["series_id"], c["version"]) for c in changes] == expected
        assert {c["kind"] for c in changes} == set(
            query.replace("kind=", "").split("&")
        )

    def test_refuses_another_kind(self, client: TestClient, viewer: Headers) -> None:
        answer = client.get(f"{OVERVIEW}?kind=registration", headers=viewer)

        assert answer.status_code == 422
        assert answer.json()["rule"] == "request_schema"


def test_shows_at_most_its_share_of_each_list(
    client: TestClient, viewer: Headers, sessions: Sessions
) -> None:
    for i in range(WAITING + 5):
        register(sessions, f"s{i:03d}_radial", 2, "zscore")
        promote_version(sessions, f"s{i:03d}_radial", 1)
    for i in range(CHANGES):  # the newest entries: registrations
        register(sessions, f"t{i:03d}_radial", 1, "zscore")

    body = overview(client, viewer)
    promotions = overview(client, viewer, "?kind=promotion&kind=rollback")

    assert len(body["staging_waiting"]) == WAITING
    assert body["staging_waiting"][0]["series_id"] == f"t{CHANGES - 1:03d}_radial"
    assert {c["kind"] for c in body["recent_changes"]} == {"registration"}
    assert len(body["recent_changes"]) == CHANGES
    assert [c["series_id"] for c in promotions["recent_changes"]] == [
        f"s{i:03d}_radial" for i in reversed(range(WAITING + 5))
    ]
    assert body["stages"] == {
        "staging": WAITING + 5 + CHANGES, "production": WAITING + 5, "archived": 0
    }  # fmt: skip


def test_an_empty_registry(client: TestClient, viewer: Headers) -> None:
    assert overview(client, viewer) == {
        "production_by_algorithm": {},
        "stages": {"staging": 0, "production": 0, "archived": 0},
        "staging_waiting": [],
        "recent_changes": [],
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_follows_trainings_promotions_and_a_rollback(
    client: TestClient, engineer: Headers
) -> None:
    """Through the API: two trainings, two promotions, one rollback."""
    for seed in (1, 2):
        train(client, "sensor_003_axial", engineer, seed=seed, algorithm="zscore")
    promote(client, "sensor_003_axial", 1, engineer)
    promote(client, "sensor_003_axial", 2, engineer)
    rolled = client.post("/api/v1/models/sensor_003_axial/rollback", headers=engineer)
    assert rolled.status_code == 200, rolled.text

    body = overview(client, engineer, "?kind=rollback")

    assert body["production_by_algorithm"] == {"zscore": 1}
    assert body["stages"] == {"staging": 0, "production": 1, "archived": 1}
    assert body["staging_waiting"] == []
    assert moves(body["recent_changes"]) == [
        ("sensor_003_axial", 1, "rollback", "archived", "production")
    ]
    assert body["recent_changes"][0]["actor"] == "tester"
