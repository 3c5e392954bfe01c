"""Each service answers what its OpenAPI document says: schemathesis fuzzes them.

Every service app is served by uvicorn on a thread (the hot prediction paths
are bare ASGI: only a real server sees them as a client does), its document is
loaded from /openapi.json, and every operation gets a bounded number of valid
and invalid requests from an admin, checked with every schemathesis check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
)

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.api.common.auth import Role
from atalaia.cli.demo import app_server
from atalaia.settings import Settings
from fixtures.api import SERVICES, Headers, bearer

# Per operation and mode; bounded so that the five services take about a minute.
EXAMPLES = 25

# Checks left out for an operation, each with its reason.
EXCLUDED: dict[str, tuple[list[CheckFunction], str]] = {
    "POST /api/v1/training/{series_id}": (
        [positive_data_acceptance],
        "acceptance depends on the series' stored readings (window_hours) and on "
        "rules of inline data the fuzzer cannot meet in 10,000 points",
    ),
    "POST /api/v1/training/batch": (
        [positive_data_acceptance],
        "a batch of series none of which has 10,000 stored readings is refused",
    ),
    "POST /api/v1/series/points": (
        [positive_data_acceptance],
        "a series' timestamp twice in one request is refused (no_duplicates), "
        "which a schema of three separate arrays cannot say",
    ),
    "POST /api/v1/uploads": (
        [positive_data_acceptance],
        "the body must be a CSV, Parquet or Excel file whose columns hold "
        "readings, which a binary schema cannot say",
    ),
    "POST /api/v1/models/{series_id}/versions/{version}/promote": (
        [positive_data_acceptance],
        "only a staging version is promoted, and a canary or shadow runs beside "
        "a production version: states a schema cannot say",
    ),
    "GET /api/v1/models/{series_id}/metrics": (
        [positive_data_acceptance],
        "window is at most 90 days, which its pattern cannot say",
    ),
    "PUT /api/v1/alerts/channels/{name}": (
        [positive_data_acceptance],
        "a name in the body must be the path's (name_matches_path)",
    ),
    "PUT /api/v1/alerts/rules/{name}": (
        [positive_data_acceptance],
        "the channels a rule names must exist (alert_channel_unknown), and a "
        "name in the body must be the path's",
    ),
    "POST /api/v1/alerts/silences": (
        [positive_data_acceptance],
        "one of ends_at and duration_s, ending after its start and now, at most "
        "30 days after its start",
    ),
    "POST /api/v1/assets/import": (
        [positive_data_acceptance],
        "a file's nodes follow the hierarchy's rules (kinds, parents, places), "
        "which a schema of a text body cannot say",
    ),
    "PUT /api/v1/assets/{asset_id}": (
        [positive_data_acceptance],
        "a node's parent must exist and be of an earlier kind: the stored tree's "
        "state, which a schema cannot say",
    ),
    "GET /api/v1/sensors": (
        [positive_data_acceptance],
        "bbox's west ≤ east within ±180 and south ≤ north within ±90, which its "
        "pattern cannot say",
    ),
    # A probe's 503 is its documented answer when a check fails (the health
    # service alone finds the other services down).
    "GET /ready": ([not_a_server_error], "probe"),
    "GET /api/v1/readiness": ([not_a_server_error], "probe"),
    "GET /api/v1/health": ([not_a_server_error], "probe"),
}


def meet_unsaid_rules(case: Case[Any]) -> None:
    """Make a valid-by-schema request meet the rules its descriptions state and
    JSON Schema cannot: aligned arrays, each timestamp once, a plot's, a
    chart's, a data-quality report's, a report's or an audit list's window
    inside the timestamp range and its end after its start (here: the default
    window, the 7 days up to the newest reading or now), a physical range given
    whole and low below high (here: none), a labelled version that exists
    (here: none)."""
    body: dict[str, Any] = case.body if isinstance(case.body, dict) else {}
    for group in (("timestamps", "values"), ("series_id", "timestamp", "value")):
        if all(isinstance(body.get(key), list) for key in group):
            if "timestamps" in group:
                body["timestamps"] = list(dict.fromkeys(body["timestamps"]))
            size = min(len(body[key]) for key in group)
            for key in group:
                body[key] = body[key][:size]
    if case.operation.path == "/api/v1/feedback/{series_id}":
        body.pop("version", None)
    path = case.operation.path
    windowed = path.startswith(("/api/v1/plot", "/api/v1/reports/")) or path in (
        "/api/v1/audit",
        "/api/v1/series/{series_id}/chart",
        "/api/v1/series/{series_id}/quality",
        "/api/v1/sensors/{sensor_id}/quality",
    )
    if case.query and windowed:
        for name in ("start", "end", "since", "until", "min_value", "max_value"):
            case.query.pop(name, None)


def indistinguishable(case: Case[Any]) -> bool:
    """An invalid request a server cannot tell from a valid one: a one-item
    array or an object in a query string is sent as plain text, and a parameter
    that is null or an empty array is not sent at all."""
    return any(
        value is None
        or isinstance(value, dict)
        or (isinstance(value, list) and len(value) <= 1)
        for value in (case.query or {}).values()
    )


@pytest.fixture(params=sorted(SERVICES))
def document(request: pytest.FixtureRequest, settings: Settings) -> dict[str, Any]:
    """A service's OpenAPI document (no lifespan: the document needs none)."""
    return SERVICES[request.param](settings).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_error_answer_is_documented_as_an_error_view(
    document: dict[str, Any],
) -> None:
    assert document["components"]["schemas"]["ErrorView"]["properties"]["detail"] == {
        "type": "string",
        "title": "Detail",
        "description": "What happened, for a person",
    }
    for label, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or "content" not in response:  # probes' 503
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorView"}, label


def test_routes_that_authenticate_document_401_403_and_429(
    document: dict[str, Any],
) -> None:
    for label, operation in operations(document):
        if operation.get("security"):
            assert {"401", "403", "429"} <= set(operation["responses"]), label


def test_series_ids_in_paths_carry_their_pattern(document: dict[str, Any]) -> None:
    for label, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "series_id" and parameter["in"] == "path":
                pattern = parameter["schema"]["pattern"]
                assert pattern == "^[A-Za-z0-9_.:-]{1,128}$", label


def test_a_series_id_breaking_the_rule_names_it(
    client: TestClient, admin: Headers
) -> None:
    answer = client.get("/api/v1/feedback/not%20an%20id", headers=admin)

    assert answer.status_code == 422
    assert answer.json()["rule"] == "series_id_format"


@pytest.mark.parametrize("query", ["limt=10", "limit=10&limit=20", "cursor=a&cursor=b"])
def test_unknown_or_repeated_query_parameters_are_refused(
    client: TestClient, admin: Headers, query: str
) -> None:
    answer = client.get(f"/api/v1/models?{query}", headers=admin)

    assert answer.status_code == 422
    assert answer.json()["rule"] == "query_parameters"


def test_a_body_that_is_not_json_is_refused_like_a_bad_one(
    client: TestClient, admin: Headers
) -> None:
    answer = client.post("/api/v1/feedback/s", content=b"{", headers=admin)

    assert answer.status_code == 422
    assert answer.json()["rule"] == "request_schema"


@pytest.fixture(params=sorted(SERVICES))
def served(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    upgrade_database(settings.database_url)  # services that do not migrate
    with app_server(SERVICES[request.param](settings)) as base_url:
        yield base_url


def fuzz(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    base_url: str,
    headers: Headers,
) -> str | None:
    """Send `operation` EXAMPLES requests of `mode`; the failures found, if any."""
    excluded, _reason = EXCLUDED.get(operation.label, ([], ""))

    @hypothesis.settings(
        max_examples=EXAMPLES,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        database=None,
        derandomize=True,  # the same requests on every run: CI never flickers
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Case[Any]) -> None:
        if mode is GenerationMode.POSITIVE:
            meet_unsaid_rules(case)
        else:
            hypothesis.assume(not indistinguishable(case))
        case.call_and_validate(
            base_url=base_url, headers=headers, excluded_checks=excluded
        )

    try:
        check()
    except FailureGroup as group:
        return f"{operation.label} ({mode}): {group}"
    except hypothesis.errors.Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to break
    return None


def test_every_answer_matches_the_document(served: str, settings: Settings) -> None:
    api = schemathesis.openapi.from_url(f"{served}/openapi.json")
    headers = bearer(settings, Role.ADMIN)
    operations = []
    for found in api.get_all_operations():
        assert isinstance(found, Ok), found  # the document is valid OpenAPI
        operations.append(found.ok())
    failures = [
        failure
        for operation in operations
        for mode in GenerationMode
        if (failure := fuzz(operation, mode, served, headers))
    ]
    assert not failures, "\n\n".join(failures)
