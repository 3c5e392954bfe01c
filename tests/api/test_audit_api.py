"""The audit log over HTTP: GET /api/v1/audit (admins only, filtered, paged),
and what the services record in it: registry changes and every other
state-changing call with who, from where and in which request; admin calls;
a token's first sign-in, once; failed sign-ins, bounded; never sensor traffic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AuditEntry, AuditLog
from atalaia.api import training
from atalaia.api.common.auth import Role
from atalaia.api.common.sign_ins import fingerprint
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, SettingsFactory, bearer, promote, refused, train
from fixtures.api import wait_for as wait_for_result

AUDIT = "/api/v1/audit"
AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
HOOK = "https://hooks.example.com/services/T000/B000/s3cr3t"


def listed(client: TestClient, headers: Headers, **query: Any) -> dict[str, Any]:
    response = client.get(AUDIT, params=query, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def entries(client: TestClient, headers: Headers, **query: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = listed(client, headers, **query)["entries"]
    return found


def wait_for(
    client: TestClient, headers: Headers, count: int = 1, **query: Any
) -> list[dict[str, Any]]:
    """The entries matching `query` once there are `count` (the edge's are
    written off the request path)."""

    def probe() -> list[dict[str, Any]] | None:
        found = entries(client, headers, **query)
        return found if len(found) >= count else None

    return wait_for_result(probe)


class TestRoute:
    @pytest.fixture
    def client(
        self, database_url: str, make_settings: SettingsFactory
    ) -> Iterator[TestClient]:
        """The training service, on each database."""
        with TestClient(training.create_app(make_settings(database_url))) as client:
            yield client

    @pytest.fixture(autouse=True)
    def seeded(self, sessions: sessionmaker[Session]) -> None:
        """Five entries of ana and bea a minute apart, from AT."""
        made = [
            ("ana", "model.registered", "pump_1_x/v1"),
            ("bea", "promote", "pump_1_x/v1"),
            ("ana", "job.cancelled", "job-1"),
            ("bea", "model.registered", "pump_2_x/v1"),
            ("ana", "promote", "pump_2_x/v1"),
        ]
        with sessions() as session:
            for i, (actor, action, target) in enumerate(made):
                AuditLog(session).append(
                    AuditEntry(actor, action, target, {"i": i}, "10.0.0.9", f"r{i}",
                               AT + timedelta(minutes=i))
                )  # fmt: skip
            session.commit()

    def test_pages_newest_first_by_cursor(
        self, client: TestClient, admin: Headers
    ) -> None:
        first = listed(client, admin, actor="ana", limit=2)
        second = listed(
            client, admin, actor="ana", limit=2, cursor=first["next_cursor"]
        )

        assert [e["target"] for e in first["entries"]] == ["pump_2_x/v1", "job-1"]
        assert [e["target"] for e in second["entries"]] == ["pump_1_x/v1"]
        assert second["next_cursor"] is None
        newest = first["entries"][0]
        assert newest == {
            "id": newest["id"], "at": "2026-12-03T12:04:00Z", "actor": "ana",
            "action": "promote", "target": "pump_2_x/v1", "address": "10.0.0.9",
            "request_id": "r4", "detail": {"i": 4},
        }  # fmt: skip

    def test_filters_by_action_prefix_target_and_time(
        self, client: TestClient, admin: Headers
    ) -> None:
        def targets(**query: Any) -> list[str]:
            return [
                f"{e['actor']}:{e['target']}" for e in entries(client, admin, **query)
            ]

        assert targets(action=["model.", "job.cancelled"]) == [
            "bea:pump_2_x/v1", "ana:job-1", "ana:pump_1_x/v1",
        ]  # fmt: skip
        assert targets(action="promote", target="pump_1_x/v1") == ["bea:pump_1_x/v1"]
        assert targets(
            action="promote", since="2026-12-03T12:01:00", until=AT.timestamp() + 240
        ) == ["bea:pump_1_x/v1"]

    def test_only_an_admin_reads_it(
        self, client: TestClient, engineer: Headers
    ) -> None:
        response = client.get(AUDIT, headers=engineer)

        assert response.status_code == 403, response.text
        assert response.json()["rule"] == "role_allows"

    @pytest.mark.parametrize(
        ("query", "rule"),
        [
            ("action=model.*", "audit_action"),
            ("since=2026-12-03T13:00:00&until=2026-12-03T12:00:00", "time_range"),
            ("since=99999999999999", "timestamp_range"),
            ("cursor=abc", "cursor"),
            ("limit=1001", "request_schema"),
            ("actor=ana&actor=bea", "query_parameters"),
            ("who=ana", "query_parameters"),
        ],
    )
    def test_refuses_a_bad_filter_naming_the_rule(
        self, client: TestClient, admin: Headers, query: str, rule: str
    ) -> None:
        refused(client.get(f"{AUDIT}?{query}", headers=admin), rule)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """Every service in one process (SQLite)."""
    with TestClient(create_embedded_app(settings)) as test_client:
        yield test_client


class TestRecorded:
    def test_a_promotion_names_who_from_where_in_which_request(
        self, client: TestClient, admin: Headers, settings: Settings
    ) -> None:
        engineer = bearer(settings, Role.ML_ENGINEER, subject="ana")
        job = train(client, "pump_1_x", engineer)
        client.headers["X-Request-ID"] = "promotion-1"
        promote(client, "pump_1_x", job["model_version"], engineer)

        made = wait_for(
            client, admin, 3, actor="ana", action=["http.post", "model.promoted"]
        )
        by_action = {e["action"]: e for e in made if e["request_id"] == "promotion-1"}
        assert by_action["model.promoted"] | {"id": 0, "at": "-", "detail": {}} == {
            "id": 0, "at": "-", "actor": "ana", "action": "model.promoted",
            "target": f"pump_1_x/v{job['model_version']}", "address": "testclient",
            "request_id": "promotion-1", "detail": {},
        }  # fmt: skip
        call = by_action["http.post"]
        assert call["target"] == (
            "/api/v1/models/{series_id}/versions/{version}/promote"
        )
        assert call["detail"] == {
            "status": 200, "role": "ml_engineer",
            "path": f"/api/v1/models/pump_1_x/versions/{job['model_version']}/promote",
        }  # fmt: skip

    def test_a_tokens_first_request_is_its_only_sign_in_across_processes(
        self, client: TestClient, admin: Headers, settings: Settings
    ) -> None:
        viewer = bearer(settings, Role.VIEWER, subject="vic")
        token = viewer["Authorization"].removeprefix("Bearer ")
        client.headers["X-Request-ID"] = "first-use"
        for _ in range(3):
            assert client.get("/api/v1/models", headers=viewer).status_code == 200
        with TestClient(create_embedded_app(settings)) as another_process:
            another_process.get("/api/v1/models", headers=viewer)
            [signed_in] = wait_for(another_process, admin, action="auth.sign_in",
                                   actor="vic")  # fmt: skip

        assert signed_in["request_id"] == "first-use"
        assert signed_in["address"] == "testclient"
        assert signed_in["detail"] == {
            "role": "viewer", "issuer": "atalaia",
            "fingerprint": fingerprint(token, {}),
            "expires_at": signed_in["detail"]["expires_at"],
        }  # fmt: skip
        assert token not in str(entries(client, admin))

    def test_failed_sign_ins_are_recorded_up_to_the_budget(
        self, make_settings: SettingsFactory, settings: Settings, admin: Headers
    ) -> None:
        bounded = make_settings(settings.database_url, audit_failed_sign_ins_per_min=3)
        with TestClient(create_embedded_app(bounded)) as client:
            for i in range(10):
                bad = {"Authorization": f"Bearer forged-{i}"}
                client.get("/api/v1/models", headers=bad)
                client.post("/api/v1/predict/pump_1_x", json={}, headers=bad)
            client.get("/api/v1/models")  # no token at all
            failed = wait_for(client, admin, 3, action="auth.sign_in_failed")

        assert len(failed) == 3
        oldest = failed[-1]
        assert (oldest["actor"], oldest["target"]) == ("anonymous", "/api/v1/models")
        assert oldest["detail"] == {
            "reason": "invalid token: Not enough segments",
            "fingerprint": fingerprint("forged-0", {}),
            "path": "/api/v1/models",
            "unrecorded_before": 0,
        }

    def test_sensor_traffic_is_never_recorded(
        self, client: TestClient, admin: Headers, settings: Settings
    ) -> None:
        scientist = bearer(settings, Role.ML_ENGINEER, subject="sam")
        reading = {"timestamp": 1_733_700_000.0, "value": 0.3}
        batch = {"points": [{"series_id": "pump_1_x", **reading}]}
        points = {"timestamps": [1_733_700_000.0], "values": [0.3]}
        answers = [
            client.post("/api/v1/predict/pump_1_x", json=reading, headers=scientist),
            client.post("/api/v1/predict/batch", json=batch, headers=scientist),
            client.post("/api/v1/series/pump_1_x/points", json=points,
                        headers=scientist),
            # A management change, recorded: written after the ones before.
            client.put("/api/v1/alerts/channels/ops", headers=scientist,
                       json={"type": "webhook", "target": HOOK}),
        ]  # fmt: skip

        assert [a.status_code for a in answers] == [200, 200, 200, 200]
        [change] = wait_for(client, admin, actor="sam", action="http.put")
        assert change["target"] == "/api/v1/alerts/channels/{name}"
        done = entries(client, admin, actor="sam")
        assert [e["action"] for e in done] == [
            "http.put", "alert.channel_put", "auth.sign_in",
        ]  # fmt: skip

    def test_every_admin_call_is_recorded_whatever_its_method(
        self, client: TestClient, admin: Headers
    ) -> None:
        client.get("/api/v1/healing/rules", headers=admin)  # a viewer's route
        client.get(AUDIT, headers=admin, params={"action": "nothing"})
        client.post("/api/v1/admin/reload", headers=admin)

        made = wait_for(client, admin, 2, action=["http.get", "http.post"])

        assert [(e["action"], e["target"]) for e in made[-2:]] == [
            ("http.post", "/api/v1/admin/reload"),
            ("http.get", AUDIT),
        ]


class TestAddress:
    @pytest.mark.parametrize(
        ("peer", "headers", "address"),
        [
            ("127.0.0.1", {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"},
             "203.0.113.7"),
            ("127.0.0.1", {"X-Real-IP": "203.0.113.8"}, "203.0.113.8"),
            ("192.0.2.4", {"X-Forwarded-For": "203.0.113.7"}, "192.0.2.4"),
        ],
        ids=["forwarded-by-a-trusted-proxy", "real-ip", "untrusted-peer"],
    )  # fmt: skip
    def test_a_trusted_proxy_names_the_client(
        self, settings: Settings, admin: Headers, peer: str,
        headers: dict[str, str], address: str,
    ) -> None:  # fmt: skip
        app = create_embedded_app(settings)
        with TestClient(app, client=(peer, 40000)) as client:
            client.get(AUDIT, headers=admin | headers)
            [signed_in] = wait_for(client, admin, action="auth.sign_in")

        assert signed_in["address"] == address
