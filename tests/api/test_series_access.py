"""Every route keeps a token limited to sensor groups to its series.

The platform holds a series outside the token's groups (`lisbon-7_radial`,
sensor `lisbon-7`) with a model, a rollout, readings, anomalies, an incident,
an upload, feedback, an asset node, an alert rule and a silence. Every route
of the embedded app's OpenAPI document is in `SERIES_FREE` or in `CASES`,
which says how it answers the limited token about that series: as something
that does not exist (404), refused whole (403 `series_access`), or a list
without it. A route added later without a decision fails
`test_every_route_has_a_decision`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from atalaia.adapters.db.engine import engine_for, make_session_factory
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import Headers, serve, train, wait_for
from fixtures.incidents import anomaly, record

OUT = "lisbon-7_radial"  # outside the token's groups
OUT_SENSOR = "lisbon-7"
IN = "porto-1_radial"
MARK = "lisbon"  # in every id of the outside series' things
GROUPS = {"porto": ["porto-*"], "lisbon": ["lisbon-*"]}
ASSETS = f"""\
id,kind,name,parent,latitude,longitude,x,y
plant-a,site,Plant A,,41.15,-8.61,,
m1,machine,Press,plant-a,,,3,4
porto-1,sensor,Bearing,m1,,,5,6
{OUT_SENSOR},sensor,Motor,m1,,,7,8
lisbon-site,site,Lisbon,,38.72,-9.14,,
lisbon-m,machine,Lisbon press,lisbon-site,,,1,2
lisbon-8,sensor,Lisbon motor,lisbon-m,,,3,4
"""
T0 = 1_733_700_000

Expect = Literal["hidden", "refused", "filtered"]


@dataclass(frozen=True)
class Case:
    """How a route answers the limited token about the outside series: 404
    (`hidden`), 403 `series_access` (`refused`), or 200 without it
    (`filtered`; an unlimited token's answer has it)."""

    expect: Expect
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)
    # `filtered` answers that show no ids: a figure smaller in the limited
    # token's answer than in an unlimited one's.
    counted: Callable[[Any], int] | None = None
    control: bool = True  # an unlimited token's GET answers 200


# Routes that name no series and show none.
SERIES_FREE = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/api/v1/liveness"),
    ("GET", "/api/v1/readiness"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/auth/config"),
    ("GET", "/api/v1/auth/whoami"),
    ("GET", "/api/v1/alerts/channels"),
    ("GET", "/api/v1/healing/rules"),
}

READING = {"timestamp": T0, "value": 0.3}
SENSOR_READING = {"timestamp": T0, "values": {"radial": 0.3}}
HIDDEN = Case("hidden")
REFUSED = Case("refused")
FILTERED = Case("filtered")
CASES: dict[tuple[str, str], Case] = {
    # training
    ("POST", "/api/v1/training/{series_id}"): Case("hidden", {"window_hours": 24}),
    ("POST", "/api/v1/training/batch"): Case(
        "refused", {"series_ids": [IN, OUT], "window_hours": 24}
    ),
    ("GET", "/api/v1/training/jobs"): FILTERED,
    ("GET", "/api/v1/training/jobs/{job_id}"): HIDDEN,
    ("DELETE", "/api/v1/training/jobs/{job_id}"): HIDDEN,
    ("POST", "/api/v1/training/jobs/{job_id}/retry"): HIDDEN,
    ("GET", "/api/v1/training/batches"): REFUSED,
    ("GET", "/api/v1/training/batches/{batch_id}"): REFUSED,
    # registry, promotions, rollouts, fleet operations
    ("GET", "/api/v1/models"): FILTERED,
    ("GET", "/api/v1/models/overview"): REFUSED,
    ("GET", "/api/v1/audit"): REFUSED,
    ("GET", "/api/v1/models/{series_id}/versions"): HIDDEN,
    ("GET", "/api/v1/models/{series_id}/versions/{version}"): HIDDEN,
    ("GET", "/api/v1/models/{series_id}/versions/{version}/training-data"): HIDDEN,
    ("POST", "/api/v1/models/{series_id}/versions/{version}/promote"): Case(
        "hidden", {"strategy": "direct"}
    ),
    ("POST", "/api/v1/models/{series_id}/rollback"): HIDDEN,
    ("GET", "/api/v1/models/{series_id}/metrics"): HIDDEN,
    ("GET", "/api/v1/models/{series_id}/deployment-config"): HIDDEN,
    ("GET", "/api/v1/rollouts"): FILTERED,
    ("GET", "/api/v1/rollouts/{rollout_id}"): HIDDEN,
    ("POST", "/api/v1/rollouts/{rollout_id}/cancel"): HIDDEN,
    ("POST", "/api/v1/operations"): Case(
        "refused", {"action": "promote", "selector": {"all": True}}
    ),
    ("GET", "/api/v1/operations"): REFUSED,
    ("GET", "/api/v1/operations/{operation_id}"): REFUSED,
    ("POST", "/api/v1/operations/{operation_id}/cancel"): REFUSED,
    # assets and maps
    ("GET", "/api/v1/assets"): Case(
        "filtered", counted=lambda body: sum(a["children"] for a in body["assets"])
    ),
    ("POST", "/api/v1/assets/import"): REFUSED,
    ("GET", "/api/v1/assets/{asset_id}"): HIDDEN,
    ("PUT", "/api/v1/assets/{asset_id}"): Case("refused", {"kind": "sensor"}),
    ("DELETE", "/api/v1/assets/{asset_id}"): REFUSED,
    ("GET", "/api/v1/sensors"): Case("filtered", query={"bbox": "-10,38,-8,42"}),
    ("GET", "/api/v1/sites"): Case(
        "filtered", counted=lambda body: sum(s["sensors"] for s in body["sites"])
    ),
    ("GET", "/api/v1/sites/{site_id}/plan"): FILTERED,
    ("PUT", "/api/v1/sites/{site_id}/floorplan"): REFUSED,
    # plant-a has no plan (lisbon-site's: test_the_asset_tree_holds_the_groups…)
    ("GET", "/api/v1/sites/{site_id}/floorplan"): Case("hidden", control=False),
    # series data, quality, feedback
    ("GET", "/api/v1/series"): FILTERED,
    ("GET", "/api/v1/series/{series_id}/points"): HIDDEN,
    ("POST", "/api/v1/series/{series_id}/points"): Case(
        "hidden", {"timestamps": [T0], "values": [0.3]}
    ),
    ("POST", "/api/v1/series/points"): Case(
        "refused", {"series_id": [IN, OUT], "timestamp": [T0, T0], "value": [1, 1]}
    ),
    ("GET", "/api/v1/series/{series_id}/chart"): HIDDEN,
    ("GET", "/api/v1/series/{series_id}/quality"): HIDDEN,
    ("GET", "/api/v1/sensors/{sensor_id}/quality"): HIDDEN,
    ("POST", "/api/v1/feedback/{series_id}"): Case(
        "hidden", {"timestamp": T0, "is_anomaly": True}
    ),
    ("GET", "/api/v1/feedback/{series_id}"): HIDDEN,
    # anomalies, incidents, fleet views, alerts and healing history
    ("GET", "/api/v1/anomalies"): FILTERED,
    ("GET", "/api/v1/incidents"): FILTERED,
    ("GET", "/api/v1/incidents/{incident_id}"): HIDDEN,
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): HIDDEN,
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): HIDDEN,
    ("POST", "/api/v1/incidents/{incident_id}/comment"): Case("hidden", {"text": "x"}),
    ("GET", "/api/v1/fleet/status"): REFUSED,
    ("GET", "/api/v1/fleet/sensors"): FILTERED,
    ("GET", "/api/v1/alerts/notifications"): REFUSED,
    ("GET", "/api/v1/alerts/rules"): FILTERED,
    ("PUT", "/api/v1/alerts/rules/{name}"): Case("refused", {"channels": ["hook"]}),
    ("DELETE", "/api/v1/alerts/rules/{name}"): HIDDEN,
    ("GET", "/api/v1/alerts/silences"): FILTERED,
    ("POST", "/api/v1/alerts/silences"): Case(
        "refused", {"duration_s": 60, "reason": "works", "matchers": {}}
    ),
    ("DELETE", "/api/v1/alerts/silences/{silence_id}"): HIDDEN,
    ("GET", "/api/v1/healing/actions"): REFUSED,
    # fleet-wide settings: where alerts go, what comes in, how the fleet heals
    ("PUT", "/api/v1/alerts/channels/{name}"): Case(
        "refused", {"type": "webhook", "target": "https://example.com/hook"}
    ),
    ("DELETE", "/api/v1/alerts/channels/{name}"): REFUSED,
    ("POST", "/api/v1/alerts/alertmanager"): Case("refused", {"alerts": []}),
    ("PATCH", "/api/v1/healing/rules/{rule}"): Case("refused", {"enabled": False}),
    # reports
    ("GET", "/api/v1/reports/fleet"): REFUSED,
    ("GET", "/api/v1/reports/sensors/{sensor_id}"): HIDDEN,
    ("GET", "/api/v1/reports/files"): REFUSED,
    ("GET", "/api/v1/reports/files/{file_id}"): REFUSED,
    # uploads (the limited token's own upload: tests/api/test_sensor_groups.py)
    ("POST", "/api/v1/uploads"): Case("filtered", "series_id,timestamp,value\n"),
    ("GET", "/api/v1/uploads"): Case(
        "filtered",
        counted=lambda body: sum(u["readings_stored"] for u in body["uploads"]),
    ),
    ("GET", "/api/v1/uploads/{upload_id}"): HIDDEN,
    ("GET", "/api/v1/uploads/{upload_id}/quality"): HIDDEN,
    ("GET", "/api/v1/uploads/{upload_id}/series"): HIDDEN,
    # inference and plots
    ("POST", "/api/v1/admin/reload/{series_id}"): HIDDEN,
    ("POST", "/api/v1/admin/reload"): REFUSED,
    ("POST", "/api/v1/predict/{series_id}"): Case("hidden", READING),
    ("POST", "/api/v1/predict/batch"): Case(
        "refused", {"points": [{"series_id": OUT, **READING}]}
    ),
    ("POST", "/api/v1/predict/sensors/{sensor_id}"): Case(
        "hidden", SENSOR_READING, control=False
    ),
    ("POST", "/api/v1/predict/sensors/batch"): Case(
        "refused",
        {"readings": [{"sensor_id": OUT_SENSOR, **SENSOR_READING}]},
    ),
    ("GET", "/api/v1/plot"): Case("hidden", query={"series_id": OUT}),
    # No sensor model of lisbon-7 (the unlimited token is answered 404 too).
    ("GET", "/api/v1/plot/sensors/{sensor_id}"): Case("hidden", control=False),
}


@dataclass
class World:
    client: TestClient
    admin: Headers
    limited: Headers
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("access")
    settings = Settings(
        home=home / "home",
        database_url=f"sqlite:///{home / 'atalaia.db'}",
        log_json=False,
        access_groups=GROUPS,
        training_min_interval_s=0,
    )
    with TestClient(create_embedded_app(settings)) as client:
        yield _built(client, settings)


def _token(settings: Settings, groups: frozenset[str] | None) -> Headers:
    token = authenticator_for(settings).issue(
        subject="tester", role=Role.ADMIN, ttl_s=3600, groups=groups
    )
    return {"Authorization": f"Bearer {token}"}


def _built(client: TestClient, settings: Settings) -> World:
    """The outside series with one of each thing a route can show."""
    admin = _token(settings, None)
    serve(client, OUT, admin)
    serve(client, IN, admin)
    job = train(client, OUT, admin, seed=1)
    canary = client.post(
        f"/api/v1/models/{OUT}/versions/{job['model_version']}/promote",
        json={"strategy": "canary"},
        headers=admin,
    )
    assert canary.status_code == 202, canary.text
    spike = {"timestamps": [T0, T0 + 60], "values": [50.0, 0.3]}
    stored = client.post(f"/api/v1/series/{OUT}/points", json=spike, headers=admin)
    assert stored.json()["anomalies"], stored.text
    label = {"timestamp": T0, "is_anomaly": True}
    labelled = client.post(f"/api/v1/feedback/{OUT}", json=label, headers=admin)
    assert labelled.status_code == 201, labelled.text
    imported = client.post(
        "/api/v1/assets/import",
        content=ASSETS.encode(),
        headers=admin | {"Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    plan = client.put(
        "/api/v1/sites/lisbon-site/floorplan",
        content=_png(),
        headers=admin | {"Content-Type": "image/png"},
    )
    assert plan.status_code == 200, plan.text
    return World(
        client,
        admin,
        _token(settings, frozenset({"porto"})),
        {
            "series_id": OUT,
            "sensor_id": OUT_SENSOR,
            "version": "1",
            "job_id": job["job_id"],
            "rollout_id": str(canary.json()["rollout"]["id"]),
            "incident_id": str(_incident(settings)),
            "upload_id": _upload(client, admin),
            "asset_id": OUT_SENSOR,
            "site_id": "plant-a",
            "batch_id": "b1",
            "operation_id": "o1",
            "file_id": "f1",
            "name": _alert_rule(client, admin),
            "silence_id": _silence(client, admin),
            "rule": "retrain_on_drift",
        },
    )


def _incident(settings: Settings) -> int:
    engine = engine_for(settings)
    try:
        made = record(make_session_factory(engine), [anomaly(OUT, T0, 8.0)])
    finally:
        engine.dispose()
    incident_id = made[OUT_SENSOR][0].id
    assert incident_id is not None
    return incident_id


def _png() -> bytes:
    found = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(found, format="PNG")
    return found.getvalue()


def _alert_rule(client: TestClient, admin: Headers) -> str:
    hook = {"type": "webhook", "target": "https://hooks.example.com/x"}
    made = client.put("/api/v1/alerts/channels/hook", json=hook, headers=admin)
    assert made.status_code == 200, made.text
    rule = {"channels": ["hook"], "series_prefix": "lisbon-"}
    made = client.put("/api/v1/alerts/rules/lisbon-all", json=rule, headers=admin)
    assert made.status_code == 200, made.text
    return "lisbon-all"


def _silence(client: TestClient, admin: Headers) -> str:
    body = {"duration_s": 600, "reason": "works", "matchers": {"sensor_id": OUT_SENSOR}}
    made = client.post("/api/v1/alerts/silences", json=body, headers=admin)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _upload(client: TestClient, admin: Headers) -> str:
    body = f"series_id,timestamp,value\n{OUT},{T0 + 120},0.3\n".encode()
    response = client.post(
        "/api/v1/uploads", content=body, headers=admin | {"Content-Type": "text/csv"}
    )
    assert response.status_code == 202, response.text
    upload_id: str = response.json()["upload_id"]

    def done() -> bool | None:
        found = client.get(f"/api/v1/uploads/{upload_id}", headers=admin).json()
        return True if found["status"] == "done" else None

    wait_for(done, attempts=400)
    return upload_id


def _routes(client: TestClient) -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_route_has_a_decision(world: World) -> None:
    routes = _routes(world.client)

    undecided = routes - SERIES_FREE - set(CASES)
    gone = (SERIES_FREE | set(CASES)) - routes

    assert not undecided, f"say how these routes keep to a token's groups: {undecided}"
    assert not gone, f"no such routes any more: {gone}"
    assert not SERIES_FREE & set(CASES)


@pytest.mark.parametrize(
    ("route", "case"), CASES.items(), ids=[" ".join(route) for route in CASES]
)
def test_no_route_shows_a_series_outside_the_groups(
    world: World, route: tuple[str, str], case: Case
) -> None:
    method, template = route
    path = template.format(**world.ids)
    request: dict[str, Any] = {"params": case.query}
    sent: Headers = {}
    if isinstance(case.body, str):
        request["content"] = case.body.encode()
        sent = {"Content-Type": "text/csv"}
    elif case.body is not None:
        request["json"] = case.body

    def call(headers: Headers) -> Any:
        return world.client.request(method, path, **request, headers=headers | sent)

    answer = call(world.limited)

    if case.expect == "hidden":
        assert answer.status_code == 404, answer.text
        assert MARK not in answer.headers.get("content-disposition", "")
    elif case.expect == "refused":
        assert answer.status_code == 403, answer.text
        assert answer.json()["rule"] == "series_access", answer.text
    else:
        assert answer.status_code in (200, 202), answer.text
        assert MARK not in answer.text
    if method == "GET" and case.expect != "refused" and case.control:
        control = call(world.admin)  # it is there to see
        assert control.status_code == 200, control.text
        if case.counted is not None:
            assert case.counted(answer.json()) < case.counted(control.json())
        elif case.expect == "filtered":
            assert MARK in control.text, f"nothing of {OUT} to hide here"


def test_the_groups_own_series_are_served(world: World) -> None:
    client, limited = world.client, world.limited

    answer = client.post(f"/api/v1/predict/{IN}", json=READING, headers=limited)
    models = client.get("/api/v1/models", headers=limited).json()["models"]

    assert answer.status_code == 200, answer.text
    assert [m["series_id"] for m in models] == [IN]


def test_the_asset_tree_holds_the_groups_sensors_and_the_nodes_above_them(
    world: World,
) -> None:
    client, limited = world.client, world.limited

    machine = client.get("/api/v1/assets/m1", headers=limited).json()
    hidden = [
        client.get(path, headers=limited).status_code
        for path in ("/api/v1/assets/lisbon-site", "/api/v1/assets/lisbon-m",
                     "/api/v1/assets?under=lisbon-site",
                     "/api/v1/sites/lisbon-site/plan",
                     "/api/v1/sites/lisbon-site/floorplan")
    ]  # fmt: skip
    plan = client.get("/api/v1/sites/lisbon-site/floorplan", headers=world.admin)
    sites = client.get("/api/v1/sites", headers=limited).json()["sites"]

    assert machine["children"] == 1, machine  # porto-1, not lisbon-7
    assert [a["children"] for a in machine["ancestors"]] == [1]
    assert hidden == [404] * 5
    assert plan.status_code == 200, plan.text
    assert [s["site"]["id"] for s in sites] == ["plant-a"]


def test_a_node_it_does_not_see_is_no_filter_it_may_name(world: World) -> None:
    """`?asset=` of a hidden node answers as an unknown one: 404, not an empty
    page that tells the node exists."""
    client, limited = world.client, world.limited
    asked: dict[str, tuple[str, str, dict[str, Any]]] = {
        "fleet": ("GET", "/api/v1/fleet/sensors", {"params": {"asset": "lisbon-m"}}),
        "incidents": ("GET", "/api/v1/incidents", {"params": {"asset": "lisbon-m"}}),
        "batch": ("POST", "/api/v1/training/batch",
                  {"json": {"asset": "lisbon-m", "window_hours": 24}}),
    }  # fmt: skip

    answers = {
        name: client.request(method, path, headers=limited, **request)
        for name, (method, path, request) in asked.items()
    }
    seen = client.get("/api/v1/incidents", headers=world.admin, params={"asset": "m1"})

    assert {n: a.status_code for n, a in answers.items()} == dict.fromkeys(asked, 404)
    assert {a.json()["rule"] for a in answers.values()} == {"asset_exists"}
    assert seen.status_code == 200, seen.text
