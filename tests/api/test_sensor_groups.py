"""Tokens limited to sensor groups, on the routes people use most: predictions
single and batch, plots, lists, fleet-wide actions and uploads; the setting,
/auth/whoami and `atalaia token create --group`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli import app
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, serve, wait_for

IN, OUT = "porto-1_radial", "lisbon-7_radial"
GROUPS = {"porto": ["porto-*"], "lisbon": ["lisbon-*"]}
READING = {"timestamp": 1_733_700_000, "value": 0.3}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("groups")
    return Settings(
        home=home / "home",
        database_url=f"sqlite:///{home / 'atalaia.db'}",
        log_json=False,
        access_groups=GROUPS,
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_embedded_app(settings)) as test_client:
        admin = token(settings)
        serve(test_client, IN, admin)
        serve(test_client, OUT, admin)
        yield test_client


def token(settings: Settings, *groups: str, role: Role = Role.ML_ENGINEER) -> Headers:
    issued = authenticator_for(settings).issue(
        subject="ana",
        role=role,
        ttl_s=600,
        groups=frozenset(groups) if groups else None,
    )
    return {"Authorization": f"Bearer {issued}"}


@pytest.fixture(scope="module")
def porto(settings: Settings) -> Headers:
    return token(settings, "porto")


@pytest.fixture(scope="module")
def hook(client: TestClient, settings: Settings) -> str:
    """An alert channel for rules to name."""
    body = {"type": "webhook", "target": "https://hooks.example.com/x"}
    made = client.put(
        "/api/v1/alerts/channels/hook", json=body, headers=token(settings)
    )
    assert made.status_code == 200, made.text
    return "hook"


def refusal(response: Any) -> str:
    assert response.status_code == 403, response.text
    assert response.json()["rule"] == "series_access", response.text
    detail: str = response.json()["detail"]
    return detail


class TestPredictions:
    def test_a_series_of_the_groups_is_predicted(
        self, client: TestClient, porto: Headers
    ) -> None:
        answer = client.post(f"/api/v1/predict/{IN}", json=READING, headers=porto)

        assert answer.status_code == 200, answer.text
        assert answer.json()["model_info"]["version"] == 1

    def test_a_series_outside_answers_like_one_that_does_not_exist(
        self, client: TestClient, porto: Headers
    ) -> None:
        served = client.post(f"/api/v1/predict/{OUT}", json=READING, headers=porto)
        absent = client.post(
            "/api/v1/predict/lisbon-0_radial", json=READING, headers=porto
        )

        assert served.status_code == absent.status_code == 404
        assert served.json()["rule"] == absent.json()["rule"] == "series_exists"
        assert served.json()["detail"].replace(OUT, "X") == absent.json()[
            "detail"
        ].replace("lisbon-0_radial", "X")

    def test_a_batch_naming_a_series_outside_is_refused_whole(
        self, client: TestClient, porto: Headers
    ) -> None:
        points = [{"series_id": s, **READING} for s in (IN, OUT, IN)]

        response = client.post(
            "/api/v1/predict/batch", json={"points": points}, headers=porto
        )

        assert f"'{OUT}'" in refusal(response)
        assert IN not in response.json()["detail"]

    def test_a_batch_of_the_groups_is_scored(
        self, client: TestClient, porto: Headers
    ) -> None:
        columns = {"series_id": [IN, IN], "timestamp": [1.7e9, 1.7e9 + 60]}

        response = client.post(
            "/api/v1/predict/batch",
            json={**columns, "value": [0.3, 0.3]},
            headers=porto,
        )

        assert response.status_code == 200, response.text
        assert response.json()["series_id"] == [IN, IN]

    def test_a_token_without_groups_reads_every_series(
        self, client: TestClient, settings: Settings
    ) -> None:
        answer = client.post(
            f"/api/v1/predict/{OUT}", json=READING, headers=token(settings)
        )

        assert answer.status_code == 200, answer.text


class TestViews:
    def test_a_plot_of_a_series_outside_is_not_found(
        self, client: TestClient, porto: Headers
    ) -> None:
        inside = client.get(
            "/api/v1/plot", params={"series_id": IN, "format": "json"}, headers=porto
        )
        outside = client.get(
            "/api/v1/plot", params={"series_id": OUT, "format": "json"}, headers=porto
        )

        assert inside.status_code == 200, inside.text
        assert outside.status_code == 404, outside.text

    def test_lists_hold_the_groups_series_only(
        self, client: TestClient, settings: Settings, porto: Headers
    ) -> None:
        lisbon = token(settings, "lisbon")

        def ids(headers: Headers) -> tuple[list[str], list[str]]:
            jobs = client.get("/api/v1/training/jobs", headers=headers).json()
            series = client.get("/api/v1/series", headers=headers).json()
            return (
                sorted({job["series_id"] for job in jobs["jobs"]}),
                [s["series_id"] for s in series["series"]],
            )

        porto_jobs, porto_series = ids(porto)
        lisbon_jobs, lisbon_series = ids(lisbon)
        assert (porto_jobs, lisbon_jobs) == ([IN], [OUT])
        assert set(porto_series) <= {IN}
        assert set(lisbon_series) <= {OUT}
        assert ids(token(settings, "porto", "lisbon"))[0] == [OUT, IN]

    def test_a_group_not_configured_covers_nothing_and_is_named(
        self, client: TestClient, settings: Settings
    ) -> None:
        ghost = token(settings, "porto", "ghost")

        whoami = client.get("/api/v1/auth/whoami", headers=ghost).json()
        only_ghost = client.get("/api/v1/models", headers=token(settings, "ghost"))

        assert (whoami["groups"], whoami["unknown_groups"]) == (
            ["ghost", "porto"],
            ["ghost"],
        )
        assert only_ghost.json()["models"] == []

    def test_whoami_says_nothing_of_groups_for_an_unlimited_token(
        self, client: TestClient, settings: Settings
    ) -> None:
        whoami = client.get("/api/v1/auth/whoami", headers=token(settings)).json()

        assert (whoami["groups"], whoami["unknown_groups"]) == (None, [])


class TestFleetActions:
    def test_a_selection_trains_the_groups_series_only(
        self, client: TestClient, porto: Headers
    ) -> None:
        """Both series trained a moment ago: each is rejected by name (the
        training interval), which shows which series the selection took."""
        response = client.post(
            "/api/v1/training/batch",
            json={"prefix": "", "window_hours": 24},
            headers=porto,
        )

        assert response.status_code == 429, response.text
        assert [r["series_id"] for r in response.json()["rejected"]] == [IN]

    def test_a_fleet_wide_operation_is_refused(
        self, client: TestClient, porto: Headers
    ) -> None:
        body = {"action": "promote", "selector": {"all": True}, "dry_run": True}

        response = client.post("/api/v1/operations", json=body, headers=porto)

        assert "whole fleet" in refusal(response)


class TestUploads:
    def test_readings_of_series_outside_are_refused_as_such(
        self, client: TestClient, settings: Settings
    ) -> None:
        scientist = token(settings, "porto", role=Role.DATA_SCIENTIST)
        rows = [f"{IN},1733800000,0.3", f"{OUT},1733800000,0.3"]
        csv = "series_id,timestamp,value\n" + "\n".join(rows) + "\n"

        accepted = client.post(
            "/api/v1/uploads",
            content=csv.encode(),
            headers=scientist | {"Content-Type": "text/csv"},
        )
        assert accepted.status_code == 202, accepted.text
        path = f"/api/v1/uploads/{accepted.json()['upload_id']}"

        def ended() -> dict[str, Any] | None:
            found: dict[str, Any] = client.get(path, headers=scientist).json()
            return found if found["status"] in ("done", "failed") else None

        upload = wait_for(ended, attempts=400)
        assert upload["readings_stored"] == 1, upload
        assert upload["invalid_by_reason"] == {"series_access": 1}
        series = client.get(f"{path}/series", headers=scientist).json()["series"]
        assert [s["series_id"] for s in series] == [IN]


class TestAlerts:
    """Silences and alert rules: those a prefix of the token's groups confines."""

    @pytest.mark.parametrize(
        "matchers",
        [{"series_prefix": "porto-1"}, {"sensor_id": "porto-1", "kinds": ["anomaly"]},
         {"sensor_group": "porto-east"}],
    )  # fmt: skip
    def test_a_silence_within_the_groups_is_made_listed_and_ended(
        self, client: TestClient, porto: Headers, matchers: dict[str, Any]
    ) -> None:
        body = {"duration_s": 600, "reason": "maintenance", "matchers": matchers}

        made = client.post("/api/v1/alerts/silences", json=body, headers=porto)
        assert made.status_code == 201, made.text
        listed = client.get("/api/v1/alerts/silences", headers=porto).json()
        ended = client.delete(
            f"/api/v1/alerts/silences/{made.json()['id']}", headers=porto
        )

        assert made.json()["id"] in [s["id"] for s in listed["silences"]]
        assert ended.status_code == 200, ended.text

    @pytest.mark.parametrize(
        "matchers",
        [{}, {"kinds": ["anomaly"]}, {"series_prefix": "porto"},
         {"series_prefix": "lisbon-7"}, {"rule": "hook-all"}],
    )  # fmt: skip
    def test_a_silence_that_could_match_outside_is_refused(
        self, client: TestClient, porto: Headers, matchers: dict[str, Any]
    ) -> None:
        body = {"duration_s": 600, "reason": "maintenance", "matchers": matchers}

        response = client.post("/api/v1/alerts/silences", json=body, headers=porto)

        assert "outside the token's sensor groups" in refusal(response)

    def test_a_rule_within_the_groups_is_put_listed_and_deleted(
        self, client: TestClient, porto: Headers, hook: str
    ) -> None:
        body = {"channels": [hook], "series_prefix": "porto-"}

        put = client.put("/api/v1/alerts/rules/porto-all", json=body, headers=porto)
        assert put.status_code == 200, put.text
        listed = client.get("/api/v1/alerts/rules", headers=porto).json()["rules"]
        deleted = client.delete("/api/v1/alerts/rules/porto-all", headers=porto)

        assert "porto-all" in [r["name"] for r in listed]
        assert deleted.status_code == 204, deleted.text

    @pytest.mark.parametrize(
        "scoping",
        [{}, {"series_prefix": "por"}, {"sensor_group": "porto-east"}],
    )
    def test_a_rule_that_could_route_outside_is_refused(
        self, client: TestClient, porto: Headers, hook: str, scoping: dict[str, str]
    ) -> None:
        body = {"channels": [hook], **scoping}

        response = client.put("/api/v1/alerts/rules/wide", json=body, headers=porto)

        assert "outside the token's sensor groups" in refusal(response)

    def test_a_rule_outside_is_not_replaced_by_one_within(
        self, client: TestClient, settings: Settings, porto: Headers, hook: str
    ) -> None:
        wide = {"channels": [hook], "min_severity": "critical"}
        made = client.put("/api/v1/alerts/rules/everything", json=wide,
                          headers=token(settings))  # fmt: skip
        assert made.status_code == 200, made.text
        narrow = {"channels": [hook], "series_prefix": "porto-"}

        response = client.put(
            "/api/v1/alerts/rules/everything", json=narrow, headers=porto
        )

        assert "it replaces" in refusal(response)


class TestConfiguration:
    def test_a_bad_setting_is_refused_naming_it(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="ATALAIA_ACCESS_GROUPS"):
            Settings(home=tmp_path, access_groups={"porto": ["porto/*"]})

    def test_the_setting_reads_json(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATALAIA_ACCESS_GROUPS", '{"press7": ["press7-*"]}')

        assert Settings(home=tmp_path).access_groups == {"press7": ["press7-*"]}

    def test_token_create_takes_groups(self, tmp_path: Path) -> None:
        env = {
            "ATALAIA_HOME": str(tmp_path / "home"),
            "ATALAIA_ACCESS_GROUPS": '{"porto": ["porto-*"]}',
        }
        args = ["token", "create", "--role", "viewer", "--subject", "ana"]

        made = CliRunner().invoke(
            app, [*args, "--group", "porto", "--group", "ghost"], env=env
        )

        assert made.exit_code == 0, made.output
        assert "ghost are not in ATALAIA_ACCESS_GROUPS" in made.stderr
        principal = authenticator_for(Settings(home=tmp_path / "home")).authenticate(
            made.stdout.strip()
        )
        assert principal.groups == frozenset({"porto", "ghost"})

    def test_token_create_refuses_a_bad_group_name(self, tmp_path: Path) -> None:
        env = {"ATALAIA_HOME": str(tmp_path / "home")}
        args = ["token", "create", "--role", "viewer", "--subject", "ana"]

        made = CliRunner().invoke(app, [*args, "--group", "no spaces"], env=env)

        assert made.exit_code == 2
        assert "no spaces" in made.output
