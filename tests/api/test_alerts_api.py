"""Alerts API: channels (targets masked), rules and silences, the config the
rules file owns, the notifications, and Alertmanager's webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AlertConfig, Outbox, SignalLogs
from atalaia.api import training
from atalaia.core.notifications import Channel, Notification
from atalaia.services.alert_config import RuleSpec
from fixtures.api import Headers, SettingsFactory, refused

ALERTS = "/api/v1/alerts"
HOOK = "https://hooks.example.com/services/T000/B000/s3cr3t"


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The training service, on each database."""
    with TestClient(training.create_app(make_settings(database_url))) as test_client:
        yield test_client


def put(client: TestClient, headers: Headers, path: str, body: dict[str, Any]) -> Any:
    return client.put(f"{ALERTS}/{path}", json=body, headers=headers)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


class TestChannels:
    def test_targets_are_masked_on_every_read(
        self, client: TestClient, engineer: Headers, viewer: Headers
    ) -> None:
        made = ok(
            put(client, engineer, "channels/ops", {"type": "webhook", "target": HOOK})
        )
        ok(put(client, engineer, "channels/mail", {
            "type": "email", "target": "ann@plant.example, bo@ops.example",
            "rate_per_min": 5,
        }))  # fmt: skip
        ok(put(client, engineer, "channels/chat", {
            "name": "chat", "type": "apprise", "target": "tgram://123456:ABCDEF/987",
        }))  # fmt: skip

        listed = client.get(f"{ALERTS}/channels", headers=viewer)

        assert made == {
            "name": "ops", "type": "webhook", "target": "https://hooks.example.com/…",
            "rate_per_min": 60, "source": "api",
        }  # fmt: skip
        assert [(c["name"], c["target"]) for c in ok(listed)["channels"]] == [
            ("chat", "tgram://…"),
            ("mail", "…@plant.example, …@ops.example"),
            ("ops", "https://hooks.example.com/…"),
        ]
        for secret in ("s3cr3t", "ann@", "ABCDEF"):
            assert secret not in listed.text

    def test_replace_then_delete(
        self, client: TestClient, engineer: Headers, sessions: sessionmaker[Session]
    ) -> None:
        ok(put(client, engineer, "channels/ops", {"type": "webhook", "target": HOOK}))
        ok(put(client, engineer, "channels/ops", {"type": "slack", "target": HOOK}))
        with sessions() as session:
            [stored] = AlertConfig(session).channels()
        assert stored.channel == Channel("ops", "slack", HOOK)

        ok(client.delete(f"{ALERTS}/channels/ops", headers=engineer), 204)
        again = client.delete(f"{ALERTS}/channels/ops", headers=engineer)

        assert again.status_code == 404
        assert again.json()["rule"] == "alert_object_exists"

    def test_the_target_is_kept_as_given(
        self,
        client: TestClient,
        engineer: Headers,
        sessions: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """`${NAME}` is the rules file's: through the API, no environment variable
        is read into a target (where a receiver would get it)."""
        monkeypatch.setenv("HOOK_TOKEN", "leaked")
        target = "https://hooks.example.com/${HOOK_TOKEN}"
        ok(put(client, engineer, "channels/ops", {"type": "webhook", "target": target}))

        with sessions() as session:
            [stored] = AlertConfig(session).channels()
        assert stored.channel.target == target

    @pytest.mark.parametrize(
        ("name", "body", "rule"),
        [
            ("ops", {"type": "webhook", "target": "ftp://x"}, "request_schema"),
            ("ops", {"type": "email", "target": "not-an-address"}, "request_schema"),
            ("ops", {"type": "apprise", "target": "plain"}, "request_schema"),
            ("ops", {"type": "pager", "target": HOOK}, "request_schema"),
            ("ops", {"type": "webhook", "target": HOOK, "rate_per_min": 0},
             "request_schema"),
            ("ops", {"type": "webhook", "target": "https://a\x00b"},
             "no_control_characters"),
            ("ops", {"name": "other", "type": "webhook", "target": HOOK},
             "name_matches_path"),
            ("bad name", {"type": "webhook", "target": HOOK}, "request_schema"),
        ],
    )  # fmt: skip
    def test_bad_channels_are_refused_naming_the_rule(
        self,
        client: TestClient,
        engineer: Headers,
        name: str,
        body: dict[str, Any],
        rule: str,
    ) -> None:
        refused(put(client, engineer, f"channels/{name}", body), rule)

    def test_data_scientists_do_not_change_channels(
        self, client: TestClient, scientist: Headers
    ) -> None:
        answer = put(
            client, scientist, "channels/ops", {"type": "webhook", "target": HOOK}
        )

        assert answer.status_code == 403


class TestRules:
    @pytest.fixture
    def channel(self, client: TestClient, engineer: Headers) -> None:
        ok(put(client, engineer, "channels/ops", {"type": "webhook", "target": HOOK}))

    @pytest.mark.usefixtures("channel")
    def test_create_list_delete(
        self, client: TestClient, engineer: Headers, viewer: Headers
    ) -> None:
        made = ok(put(client, engineer, "rules/critical-press", {
            "channels": ["ops"], "min_severity": "critical", "sensor_group": "press",
            "events": ["model.drift"],
        }))  # fmt: skip
        listed = ok(client.get(f"{ALERTS}/rules", headers=viewer))["rules"]
        in_use = client.delete(f"{ALERTS}/channels/ops", headers=engineer)
        ok(client.delete(f"{ALERTS}/rules/critical-press", headers=engineer), 204)

        assert (made["name"], made["source"], made["min_severity"]) == (
            "critical-press", "api", "critical"
        )  # fmt: skip
        assert listed == [made]
        refused(in_use, "channel_in_use")
        assert ok(client.get(f"{ALERTS}/rules", headers=viewer))["rules"] == []

    @pytest.mark.usefixtures("channel")
    @pytest.mark.parametrize(
        ("body", "rule"),
        [
            ({"channels": ["ops", "pager"]}, "alert_channel_unknown"),
            ({"channels": ["ops"], "escalate_after_min": 5, "escalate_to": ["pager"]},
             "alert_channel_unknown"),
            ({"channels": ["ops"], "kinds": [], "events": []}, "request_schema"),
            ({"channels": ["ops"], "escalate_after_min": 5}, "request_schema"),
            ({"channels": []}, "request_schema"),
            ({"channels": ["ops"], "min_severity": "huge"}, "request_schema"),
            ({"channels": ["ops"], "series_prefix": "a\x00"}, "no_control_characters"),
            ({"channels": ["ops"], "name": "other"}, "name_matches_path"),
        ],
    )  # fmt: skip
    def test_bad_rules_are_refused_naming_the_rule(
        self, client: TestClient, engineer: Headers, body: dict[str, Any], rule: str
    ) -> None:
        refused(put(client, engineer, "rules/r1", body), rule)


class TestFileConfig:
    @pytest.fixture
    def from_file(self, sessions: sessionmaker[Session]) -> None:
        with sessions() as session:
            AlertConfig(session).replace_file_config(
                [(Channel("pager", "webhook", HOOK), 30)],
                [("file-rule", RuleSpec(name="file-rule", channels=["pager"])
                  .model_dump(mode="json"))],
            )  # fmt: skip
            session.commit()

    @pytest.mark.usefixtures("from_file")
    def test_is_listed_masked_and_refused_to_the_api(
        self, client: TestClient, engineer: Headers, viewer: Headers
    ) -> None:
        channels = ok(client.get(f"{ALERTS}/channels", headers=viewer))["channels"]
        rules = ok(client.get(f"{ALERTS}/rules", headers=viewer))["rules"]

        assert [(c["name"], c["source"], c["target"]) for c in channels] == [
            ("pager", "file", "https://hooks.example.com/…")
        ]
        assert [(r["name"], r["source"]) for r in rules] == [("file-rule", "file")]
        for answer in (
            put(client, engineer, "channels/pager", {"type": "slack", "target": HOOK}),
            client.delete(f"{ALERTS}/channels/pager", headers=engineer),
            put(client, engineer, "rules/file-rule", {"channels": ["pager"]}),
            client.delete(f"{ALERTS}/rules/file-rule", headers=engineer),
        ):
            assert "from the file" in refused(answer, "alert_config_source")

    @pytest.mark.usefixtures("from_file")
    def test_an_api_rule_may_use_a_file_channel(
        self, client: TestClient, engineer: Headers
    ) -> None:
        made = ok(put(client, engineer, "rules/mine", {"channels": ["pager"]}))

        assert made["source"] == "api"


class TestSilences:
    def test_add_list_end(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        now = time.time()
        made = ok(client.post(f"{ALERTS}/silences", headers=scientist, json={
            "duration_s": 3600, "reason": "bearing swap",
            "matchers": {"sensor_group": "press", "kinds": ["anomaly"]},
        }), 201)  # fmt: skip
        later = ok(client.post(f"{ALERTS}/silences", headers=scientist, json={
            "starts_at": now + 3600, "ends_at": now + 7200, "reason": "shutdown",
        }), 201)  # fmt: skip
        ended = ok(client.delete(f"{ALERTS}/silences/{made['id']}", headers=scientist))
        active = ok(client.get(f"{ALERTS}/silences?active=true", headers=viewer))
        every = ok(client.get(f"{ALERTS}/silences", headers=viewer))

        assert made["author"] == "tester"
        assert made["matchers"] == {"sensor_group": "press", "kinds": ["anomaly"]}
        assert made["active"]
        assert made["ends_at"] == pytest.approx(now + 3600, abs=60)
        assert not later["active"]
        assert not ended["active"]
        assert ended["ends_at"] <= time.time()
        assert [s["id"] for s in active["silences"]] == [later["id"]]
        assert [s["id"] for s in every["silences"]] == [later["id"], made["id"]]

    @pytest.mark.parametrize(
        ("body", "rule"),
        [
            ({"starts_at": "{now}", "ends_at": "{now_minus_60}"}, "silence_window"),
            ({"starts_at": "{now_minus_7200}", "duration_s": 60}, "silence_window"),
            ({"ends_at": "{now_plus_31_days}"}, "silence_length"),
            ({"duration_s": 31 * 86_400}, "request_schema"),
            ({"duration_s": 60, "ends_at": "{now_plus_60}"}, "request_schema"),
            ({}, "request_schema"),
            ({"duration_s": 60, "reason": ""}, "request_schema"),
            ({"duration_s": 60, "matchers": {"colour": "red"}}, "request_schema"),
            ({"duration_s": 60, "matchers": {"sensor_id": "a\x00"}},
             "no_control_characters"),
            ({"ends_at": 1e12}, "timestamp_range"),
        ],
    )  # fmt: skip
    def test_bad_silences_are_refused_naming_the_rule(
        self, client: TestClient, scientist: Headers, body: dict[str, Any], rule: str
    ) -> None:
        now = time.time()
        times = {
            "{now}": now, "{now_minus_60}": now - 60, "{now_minus_7200}": now - 7200,
            "{now_plus_60}": now + 60, "{now_plus_31_days}": now + 31 * 86_400,
        }  # fmt: skip
        sent = {"reason": "x"} | {
            k: times.get(v, v) if isinstance(v, str) else v for k, v in body.items()
        }

        refused(client.post(f"{ALERTS}/silences", json=sent, headers=scientist), rule)

    def test_viewers_do_not_silence(self, client: TestClient, viewer: Headers) -> None:
        answer = client.post(
            f"{ALERTS}/silences", json={"duration_s": 60, "reason": "x"}, headers=viewer
        )

        assert answer.status_code == 403

    def test_ending_an_unknown_silence_is_404(
        self, client: TestClient, scientist: Headers
    ) -> None:
        answer = client.delete(f"{ALERTS}/silences/99", headers=scientist)

        assert answer.status_code == 404


class TestNotifications:
    @pytest.fixture
    def outbox(self, sessions: sessionmaker[Session]) -> None:
        """Three notifications: two to ops (one failed with the receiver's URL
        in its error), one to mail."""
        now = time.time()
        with sessions() as session:
            box = Outbox(session)
            box.add([
                ("ops", "r1", 7, Notification("k1", "incident.opened", "major",
                                              "t1", "x1", now)),
                ("mail", "r1", 7, Notification("k2", "incident.opened", "major",
                                                "t2", "x2", now)),
                ("ops", "r2", None, Notification("k3", "model.drift", "info",
                                                 "t3", "x3", now)),
            ])  # fmt: skip
            box.failed(1, f"Server error '503' for url '{HOOK}' (to ann@plant.example)",
                       retry_at=now + 1)  # fmt: skip
            session.commit()

    @pytest.mark.usefixtures("outbox")
    def test_list_with_delivery_state_masked(
        self, client: TestClient, viewer: Headers
    ) -> None:
        answer = client.get(f"{ALERTS}/notifications?limit=2", headers=viewer)
        body = ok(answer)
        rest = ok(client.get(
            f"{ALERTS}/notifications?after={body['next_cursor']}", headers=viewer
        ))  # fmt: skip

        assert [n["key"] for n in body["notifications"] + rest["notifications"]] == [
            "k3", "k2", "k1"
        ]  # fmt: skip
        first = rest["notifications"][0]
        assert (first["state"], first["attempts"]) == ("pending", 1)
        assert first["last_error"] == (
            "Server error '503' for url 'https://hooks.example.com/…' "
            "(to …@plant.example)"
        )
        assert rest["next_cursor"] is None

    @pytest.mark.usefixtures("outbox")
    @pytest.mark.parametrize(
        ("query", "keys"),
        [
            ("channel=ops", ["k3", "k1"]),
            ("incident_id=7", ["k2", "k1"]),
            ("state=pending&channel=mail", ["k2"]),
            ("state=sent", []),
        ],
    )
    def test_filters(
        self, client: TestClient, viewer: Headers, query: str, keys: list[str]
    ) -> None:
        body = ok(client.get(f"{ALERTS}/notifications?{query}", headers=viewer))

        assert [n["key"] for n in body["notifications"]] == keys

    def test_a_bad_filter_is_refused(self, client: TestClient, viewer: Headers) -> None:
        answer = client.get(f"{ALERTS}/notifications?state=lost", headers=viewer)

        refused(answer, "request_schema")


def alert(status: str, fingerprint: str, **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighPredictionLatency", **labels},
        "annotations": {"summary": "p95 above 50 ms", "description": "for 10 min"},
        "startsAt": "2026-12-02T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    """As Alertmanager sends it (fields atalaia does not read included)."""
    return {
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "atalaia", "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "alerts": list(alerts),
    }  # fmt: skip


class TestAlertmanager:
    def test_each_alert_is_a_platform_event_once(
        self, client: TestClient, engineer: Headers, sessions: sessionmaker[Session]
    ) -> None:
        body = payload(
            alert("firing", "a1", severity="warning"),
            alert("resolved", "b2", severity="critical"),
            alert("firing", "c3"),
        )

        first = client.post(f"{ALERTS}/alertmanager", json=body, headers=engineer)
        again = client.post(f"{ALERTS}/alertmanager", json=body, headers=engineer)
        with sessions() as session:
            events, _ = SignalLogs(session).events_after(0, 100)

        assert ok(first) == ok(again) == {"accepted": 3}
        assert [(e.key, e.event, e.series_id, e.title) for e in events] == [
            ("alertmanager.a1.firing.2026-12-02T10:00:00.123456789Z",
             "platform.alert", None, "HighPredictionLatency firing"),
            ("alertmanager.b2.resolved.2026-12-02T10:00:00.123456789Z",
             "platform.alert", None, "HighPredictionLatency resolved"),
            ("alertmanager.c3.firing.2026-12-02T10:00:00.123456789Z",
             "platform.alert", None, "HighPredictionLatency firing"),
        ]  # fmt: skip
        assert [e.document["severity"] for e in events] == [
            "major",
            "critical",
            "major",
        ]
        assert events[0].text == "p95 above 50 ms\n\nfor 10 min"
        assert events[0].document["labels"] == {
            "alertname": "HighPredictionLatency", "severity": "warning"
        }  # fmt: skip

    @pytest.mark.parametrize(
        "broken",
        [
            {"version": "3"},
            {"alerts": [alert("pending", "a1")]},
            {"alerts": [{**alert("firing", "a1"), "startsAt": "yesterday"}]},
            {"alerts": [{**alert("firing", "a1"), "fingerprint": ""}]},
            {"alerts": [{**alert("firing", "a1"), "labels": {"alertname": 5}}]},
        ],
    )
    def test_a_payload_that_is_not_alertmanagers_is_refused(
        self, client: TestClient, engineer: Headers, broken: dict[str, Any]
    ) -> None:
        body = payload(alert("firing", "a1")) | broken

        refused(client.post(f"{ALERTS}/alertmanager", json=body, headers=engineer),
                "request_schema")  # fmt: skip

    def test_needs_a_service_token(
        self, client: TestClient, scientist: Headers
    ) -> None:
        answer = client.post(
            f"{ALERTS}/alertmanager", json=payload(), headers=scientist
        )

        assert answer.status_code == 403
