"""The ingest service: many series in one bulk write, each checked like one alone."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import ReadingStore
from atalaia.core.series import Readings, TimeRange
from atalaia.errors import InvalidSeries, InvalidSeriesId
from atalaia.services.ingest import append_many_points
from fixtures.readings import sensor_readings

Sessions = sessionmaker[Session]
T = 1_733_011_200.0


def reversed_readings(readings: Readings) -> Readings:
    return Readings(readings.timestamps[::-1].copy(), readings.values[::-1].copy())


class TestAppendManyPoints:
    def test_stores_each_series_in_timestamp_order(self, sessions: Sessions) -> None:
        week = sensor_readings(2_000)
        with sessions() as session:
            results = append_many_points(
                session=session,
                batch={"pump7": week, "pump8": reversed_readings(week)},
                span=TimeRange(),
            )
            session.commit()
        assert {sid: r.inserted for sid, r in results.items()} == {
            "pump7": 2_000,
            "pump8": 2_000,
        }
        with sessions() as session:
            back = ReadingStore(session).window("pump8")
        np.testing.assert_array_equal(back.values, week.values)

    @pytest.mark.parametrize(
        ("batch", "error"),
        [
            ({"bad id": sensor_readings(3)}, InvalidSeriesId),
            ({"pump7": Readings.of([T, T], [0.1, 0.2])}, InvalidSeries),
            ({"pump7": Readings.of([T, T * 1e3], [0.1, 0.2])}, InvalidSeries),
        ],
        ids=["series_id", "duplicate_timestamp", "timestamp_range"],
    )
    def test_refuses_the_batch_when_a_series_breaks_a_rule(
        self, sessions: Sessions, batch: dict[str, Readings], error: type[Exception]
    ) -> None:
        with sessions() as session, pytest.raises(error):
            append_many_points(
                session=session,
                batch={"ok": sensor_readings(3), **batch},
                span=TimeRange(),
            )
