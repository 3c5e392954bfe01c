"""A service's view of its dependencies in its metrics: the pool of PostgreSQL
connections, and whether PostgreSQL and Redis answer it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from atalaia.api import plot
from atalaia.api.common.dependency_metrics import DependencyMetrics
from atalaia.api.common.resources import Resources, open_resources
from atalaia.cli.demo import free_port
from atalaia.settings import Settings
from fixtures.api import SettingsFactory

Samples = dict[tuple[str, str], float]


def samples(collector: DependencyMetrics) -> Samples:
    """(name, dependency label or "") → value."""
    return {
        (s.name, s.labels.get("dependency", "")): s.value
        for family in collector.collect()
        for s in family.samples
    }


@contextmanager
def opened(settings: Settings) -> Iterator[Resources]:
    resources = open_resources(settings, migrate=False)
    try:
        yield resources
    finally:
        resources.close()


def test_says_both_answer_and_how_fast(
    postgres_database: str,
    make_settings: SettingsFactory,
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        postgres_database, redis_url=redis_url, redis_prefix=redis_prefix,
        db_pool_size=3, db_pool_max_overflow=2,
    )  # fmt: skip
    with opened(settings) as resources, resources.engine.connect():
        collector = DependencyMetrics(resources)
        samples(collector)  # its ping opens a second connection, then keeps it
        figures = samples(collector)

    assert figures[("dependency_up", "database")] == 1
    assert figures[("dependency_up", "redis")] == 1
    assert 0 < figures[("dependency_round_trip_seconds", "database")] < 3
    assert 0 < figures[("dependency_round_trip_seconds", "redis")] < 3
    # The test's own connection in use; the first ping's idle in the pool.
    assert figures[("database_pool_connections_in_use", "")] == 1
    assert figures[("database_pool_connections_idle", "")] == 1
    assert figures[("database_pool_connections_max", "")] == 5


def test_says_which_does_not_answer(
    postgres_database: str, make_settings: SettingsFactory
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    down = make_settings(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none", redis_url=nowhere
    )
    up = make_settings(postgres_database, redis_url=nowhere)
    with opened(down) as resources:
        neither = samples(DependencyMetrics(resources))
    with opened(up) as resources:
        database_only = samples(DependencyMetrics(resources))

    assert (
        neither[("dependency_up", "database")],
        neither[("dependency_up", "redis")],
    ) == (0, 0)
    assert not {k for k in neither if k[0] == "dependency_round_trip_seconds"}
    assert database_only[("dependency_up", "database")] == 1
    assert database_only[("dependency_up", "redis")] == 0
    assert ("dependency_round_trip_seconds", "redis") not in database_only


def test_every_service_reports_them_and_its_process(settings: Settings) -> None:
    with TestClient(plot.create_app(settings)) as client:
        text = client.get("/metrics").text
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}

    assert {
        "dependency_up", "database_pool_connections_in_use",
        "process_cpu_seconds_total", "process_resident_memory_bytes",
    } <= names  # fmt: skip
    assert "redis" not in text  # not configured: not reported
