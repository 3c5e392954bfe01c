"""Per-series prediction counts: counted by table row or by name, flushed hourly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import RollupStore
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.core.serving import Rollups
from atalaia.errors import DependencyUnavailable
from atalaia.services.model_table import ModelTable
from atalaia.services.prediction_stats import PredictionTally

Sessions = sessionmaker[Session]


def table_of(*series_ids: str) -> ModelTable:
    """A table whose rows 1, 2, ... are these series (row 0: unknown series)."""
    table = ModelTable()
    grow(table, *series_ids)
    return table


def grow(table: ModelTable, *series_ids: str) -> None:
    zeros = np.zeros(len(series_ids))
    table.set_history(list(series_ids), zeros, zeros)


TABLE = table_of("a", "b", "c")


def summary(sessions: Sessions, series_id: str) -> dict[str, float | int]:
    since = datetime.now(UTC) - timedelta(hours=1)
    with sessions() as session:
        return RollupStore(session).summary(series_id, since=since)


def test_rows_and_names_are_written_as_hourly_rollups(sessions: Sessions) -> None:
    tally = PredictionTally()
    four_of_a = np.array([1, 3, 1, 1, 1])  # a request of 4 readings of a, 1 of c
    tally.add_rows(TABLE, four_of_a, np.array([True, False, False, False, False]), 2.0)
    tally.add_one(TABLE, 1, True, 5.0)
    tally.add_named(TABLE, {"never_seen": (2, 1)}, 1.0)

    written = tally.flush(DatabaseServingStore(sessions))

    assert written == 3
    assert summary(sessions, "a") == {
        "count": 5, "anomalies": 2, "anomaly_rate": 0.4, "requests": 2,
        "latency_ms_mean": 3.5, "latency_ms_max": 5.0,
    }  # fmt: skip
    assert summary(sessions, "c")["count"] == 1
    assert summary(sessions, "b")["count"] == 0
    assert summary(sessions, "never_seen")["anomalies"] == 1


def test_flushes_add_up_and_a_new_table_starts_new_counts(sessions: Sessions) -> None:
    tally = PredictionTally()
    tally.add_one(TABLE, 2, False, 1.0)
    tally.flush(DatabaseServingStore(sessions))
    reloaded = table_of("b", "a")  # a reload built a new table: other rows
    tally.add_one(TABLE, 2, False, 1.0)
    tally.add_one(reloaded, 1, True, 1.0)

    tally.flush(DatabaseServingStore(sessions))

    assert summary(sessions, "b")["count"] == 3
    assert summary(sessions, "b")["anomalies"] == 1


def test_counts_survive_a_failed_flush(sessions: Sessions) -> None:
    tally = PredictionTally()
    tally.add_one(TABLE, 1, True, 1.0)

    class Unreachable:
        def add_rollups(self, rollups: Rollups) -> None:  # noqa: ARG002
            raise DependencyUnavailable("database")

    with pytest.raises(DependencyUnavailable):
        tally.flush(Unreachable())
    tally.flush(DatabaseServingStore(sessions))

    assert summary(sessions, "a")["count"] == 1


def test_rows_added_to_the_table_after_the_hour_opened_are_counted(
    sessions: Sessions,
) -> None:
    table = table_of("a")
    tally = PredictionTally()
    tally.add_one(table, 1, False, 1.0)
    grow(table, *(f"s{i}" for i in range(5000)))  # the table grew in place

    row = table.index["s3999"]

    tally.add_rows(table, np.array([row, row]), np.array([False, False]), 1.0)
    tally.flush(DatabaseServingStore(sessions))

    assert summary(sessions, "s3999")["count"] == 2


def test_a_grown_table_keeps_the_hour_a_new_table_closes_it() -> None:
    table = table_of("a")
    tally = PredictionTally()
    tally.add_one(table, 1, False, 1.0)
    grow(table, "b")
    tally.add_one(table, 2, False, 1.0)
    tally.add_one(table_of("a", "b"), 1, False, 1.0)

    hours = tally.drain()

    assert [list(r.series_ids) for r in hours] == [["a", "b"], ["a"]]
