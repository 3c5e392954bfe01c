"""The database as inference found it: up, or left alone for a while after a failure."""

from __future__ import annotations

from atalaia.errors import DependencyUnavailable
from atalaia.services.inference.health import DatabaseHealth

from .conftest import LogRecorder

DOWN = DependencyUnavailable("database")


class TestDatabaseHealth:
    def test_is_down_until_a_first_call_succeeds(self) -> None:
        health = DatabaseHealth(retry_s=60)

        assert not health.ok
        assert health.retry_due()

    def test_leaves_a_failed_database_alone_for_retry_s(self) -> None:
        patient, eager = DatabaseHealth(retry_s=60), DatabaseHealth(retry_s=0)
        for health in (patient, eager):
            health.up()
            health.down(DOWN)

        assert (patient.ok, patient.retry_due()) == (False, False)
        assert (eager.ok, eager.retry_due()) == (False, True)

    def test_logs_each_change_once(self, logs: LogRecorder) -> None:
        health = DatabaseHealth(retry_s=60)

        health.up()
        health.down(DOWN)
        health.down(DOWN)
        health.up()
        health.up()

        assert logs.events() == ["inference.database_down", "inference.database_back"]
