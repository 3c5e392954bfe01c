"""ReadingStore on SQLite and PostgreSQL: idempotent ingest, statistics, queries."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import IngestResult, ReadingStore, _columns
from atalaia.adapters.db.tables import SeriesRow
from atalaia.core.series import Readings
from fixtures.readings import EPOCH, STEP_S, sensor_readings

SERIES = "sensor_001_radial"
Sessions = sessionmaker[Session]


def ingest(
    sessions: Sessions, readings: Readings, series_id: str = SERIES
) -> IngestResult:
    with sessions() as session:
        result = ReadingStore(session).append(series_id, readings)
        session.commit()
    return result


def stored(sessions: Sessions, series_id: str = SERIES) -> Readings:
    with sessions() as session:
        return ReadingStore(session).window(series_id)


def part(readings: Readings, start: int, stop: int) -> Readings:
    return Readings(readings.timestamps[start:stop], readings.values[start:stop])


class TestAppend:
    def test_stores_every_new_reading(self, sessions: Sessions) -> None:
        week = sensor_readings()
        assert ingest(sessions, week) == IngestResult(received=10_080, inserted=10_080)
        back = stored(sessions)
        np.testing.assert_array_equal(back.timestamps, week.timestamps)
        np.testing.assert_array_equal(back.values, week.values)

    def test_inserts_nothing_when_the_same_points_come_again(
        self, sessions: Sessions
    ) -> None:
        week = sensor_readings()
        ingest(sessions, week)
        again = ingest(sessions, week)
        assert (again.inserted, again.ignored) == (0, 10_080)
        assert len(stored(sessions)) == 10_080

    def test_inserts_only_the_new_points_of_an_overlapping_batch(
        self, sessions: Sessions
    ) -> None:
        week = sensor_readings()
        ingest(sessions, part(week, 0, 6_000))
        result = ingest(sessions, part(week, 4_000, 10_080))
        assert result == IngestResult(received=6_080, inserted=4_080)
        np.testing.assert_array_equal(stored(sessions).values, week.values)

    def test_keeps_the_first_value_of_a_timestamp(self, sessions: Sessions) -> None:
        ingest(sessions, Readings.of([EPOCH, EPOCH + 60], [1.0, 2.0]))
        result = ingest(sessions, Readings.of([EPOCH + 60, EPOCH + 120], [9.0, 3.0]))
        assert result.inserted == 1
        assert stored(sessions).values.tolist() == [1.0, 2.0, 3.0]

    def test_ignores_known_points_within_one_transaction(
        self, sessions: Sessions
    ) -> None:
        week = sensor_readings()
        with sessions() as session:
            store = ReadingStore(session)
            assert store.append(SERIES, part(week, 0, 100)).inserted == 100
            assert store.append(SERIES, part(week, 50, 150)).inserted == 50
            session.commit()
        assert len(stored(sessions)) == 150

    def test_round_trips_floats_exactly(self, sessions: Sessions) -> None:
        readings = Readings.of(
            [EPOCH + 0.001, EPOCH + 1 / 3, EPOCH + 2.5e-7 + 1],
            [np.pi, -1e-300, 123456789.123456789],
        )
        ingest(sessions, readings)
        back = stored(sessions)
        np.testing.assert_array_equal(back.timestamps, readings.timestamps)
        np.testing.assert_array_equal(back.values, readings.values)
        assert ingest(sessions, readings).inserted == 0

    def test_accepts_an_empty_batch_without_registering_the_series(
        self, sessions: Sessions
    ) -> None:
        assert ingest(sessions, Readings.of([], [])) == IngestResult(0, 0)
        with sessions() as session:
            store = ReadingStore(session)
            assert store.get_series(SERIES) is None
            assert store.list_series() == []
            assert len(store.window(SERIES)) == 0

    def test_numbers_each_series_once_however_often_it_is_written(
        self, sessions: Sessions
    ) -> None:
        # A key drawn for a series already there would be lost (a sequence's
        # values are spent even by an insert that conflicts).
        for day in range(3):
            ingest(sessions, part(sensor_readings(300), 100 * day, 100 * day + 100))
        ingest(sessions, sensor_readings(10), "pump7")

        with sessions() as session:
            rows = session.execute(select(SeriesRow.series_id, SeriesRow.key))
            keys = dict(rows.all())

        assert keys == {SERIES: 1, "pump7": 2}

    def test_keeps_series_apart(self, sessions: Sessions) -> None:
        readings = sensor_readings(100)
        ingest(sessions, readings, "sensor_001_radial")
        assert ingest(sessions, readings, "sensor_001_axial").inserted == 100
        assert len(stored(sessions, "sensor_001_axial")) == 100


FLEET_OF_THREE = ["sensor_007_axial", "sensor_007_radial", "pump7"]


def ingest_many(sessions: Sessions, batch: dict[str, Readings]) -> dict[str, int]:
    with sessions() as session:
        results = ReadingStore(session).append_many(batch)
        session.commit()
    return {sid: r.inserted for sid, r in results.items()}


class TestAppendMany:
    def test_stores_many_series_in_one_call(self, sessions: Sessions) -> None:
        batch = {sid: sensor_readings(seed=i) for i, sid in enumerate(FLEET_OF_THREE)}
        assert ingest_many(sessions, batch) == dict.fromkeys(FLEET_OF_THREE, 10_080)
        for sid, readings in batch.items():
            back = stored(sessions, sid)
            np.testing.assert_array_equal(back.timestamps, readings.timestamps)
            np.testing.assert_array_equal(back.values, readings.values)

    def test_stores_only_what_each_series_lacks(self, sessions: Sessions) -> None:
        week = sensor_readings(seed=3)
        ingest(sessions, part(week, 0, 6_000), "pump7")
        inserted = ingest_many(
            sessions, {"pump7": part(week, 4_000, 10_080), "pump8": week}
        )
        assert inserted == {"pump7": 4_080, "pump8": 10_080}
        assert ingest_many(sessions, {"pump7": week, "pump8": week}) == {
            "pump7": 0,
            "pump8": 0,
        }
        with sessions() as session:
            store = ReadingStore(session)
            for sid in ("pump7", "pump8"):
                summary = store.get_series(sid)
                assert summary is not None
                assert summary.n_points == 10_080
                assert summary.mean == pytest.approx(float(week.values.mean()))
                assert summary.std == pytest.approx(float(week.values.std()))

    def test_keeps_the_first_of_a_timestamp_given_twice(
        self, sessions: Sessions
    ) -> None:
        twice = Readings.of([EPOCH, EPOCH + 60, EPOCH], [1.0, 2.0, 9.0])
        assert ingest_many(sessions, {SERIES: twice}) == {SERIES: 2}
        assert stored(sessions).values.tolist() == [1.0, 2.0]
        with sessions() as session:
            summary = ReadingStore(session).get_series(SERIES)
        assert summary is not None
        assert (summary.n_points, summary.mean) == (2, 1.5)

    def test_registers_no_series_without_readings(self, sessions: Sessions) -> None:
        empty = Readings.of([], [])
        assert ingest_many(sessions, {"none": empty, SERIES: sensor_readings(5)}) == {
            "none": 0,
            SERIES: 5,
        }
        with sessions() as session:
            assert ReadingStore(session).get_series("none") is None


class TestLastWindows:
    def test_equal_last_hours_of_each_series(self, sessions: Sessions) -> None:
        week = sensor_readings(seed=4)
        ingest(sessions, week, "pump7")
        # Stored newest part first: the window is still ordered by timestamp.
        ingest(sessions, part(week, 5_000, 10_080), "pump8")
        ingest(sessions, part(week, 0, 5_000), "pump8")
        ingest(sessions, part(week, 0, 3_000), "short")
        ids = ["pump7", "pump8", "short", "nobody"]
        with sessions() as session:
            store = ReadingStore(session)
            windows = store.last_windows(ids, 24)
            alone = {sid: store.last_hours(sid, 24) for sid in ids}
        assert list(windows) == ids
        for sid in ids:
            np.testing.assert_array_equal(
                windows[sid].timestamps, alone[sid].timestamps
            )
            np.testing.assert_array_equal(windows[sid].values, alone[sid].values)
        assert len(windows["pump8"]) == 24 * 60 + 1
        assert len(windows["nobody"]) == 0


class TestSummaries:
    def test_summarize_the_series_with_data(self, sessions: Sessions) -> None:
        ingest(sessions, sensor_readings(7), "pump7")
        with sessions() as session:
            summaries = ReadingStore(session).summaries(["pump7", "nobody"])
        assert list(summaries) == ["pump7"]
        assert summaries["pump7"].n_points == 7


class TestSeriesStatistics:
    def test_names_sensor_and_axis(self, sessions: Sessions) -> None:
        ingest(sessions, sensor_readings(10))
        with sessions() as session:
            summary = ReadingStore(session).get_series(SERIES)
        assert summary is not None
        assert (summary.sensor_id, summary.axis) == ("sensor_001", "radial")

    def test_equal_numpy_over_every_stored_value(self, sessions: Sessions) -> None:
        week = sensor_readings(seed=11, spikes=[5, 500, 9_000])
        rng = np.random.default_rng(11)
        # Overlapping batches in random order: known points must not count twice.
        for start in rng.permutation(np.arange(0, 10_080, 700)):
            ingest(sessions, part(week, int(start), int(start) + 1_000))
        values = stored(sessions).values
        assert values.size == 10_080
        with sessions() as session:
            summary = ReadingStore(session).get_series(SERIES)
        assert summary is not None
        assert summary.n_points == values.size
        assert summary.mean == pytest.approx(float(np.mean(values)), rel=1e-12)
        assert summary.std == pytest.approx(float(np.std(values)), rel=1e-9)
        assert (summary.first_ts, summary.last_ts) == (
            float(week.timestamps[0]),
            float(week.timestamps[-1]),
        )

    @pytest.mark.parametrize("huge", [1.79e308, -8e307])
    def test_stay_finite_over_a_first_batch_of_huge_values(
        self, sessions: Sessions, huge: float
    ) -> None:
        # The merge's cross term is inf × 0 for a new series: it was NaN, which
        # the NOT NULL column refused (a misleading conflict).
        ingest(sessions, Readings.of([EPOCH], [huge]))

        with sessions() as session:
            summary = ReadingStore(session).get_series(SERIES)
        assert summary is not None
        assert (summary.n_points, summary.mean, summary.std) == (1, huge, 0.0)

    def test_are_listed_for_every_series(self, sessions: Sessions) -> None:
        a, b = sensor_readings(500, seed=1), sensor_readings(800, seed=2)
        ingest(sessions, a, "s_a")
        ingest(sessions, b, "s_b")
        with sessions() as session:
            ids, means, stds = ReadingStore(session).all_statistics()
        by_id = dict(
            zip(ids, zip(means.tolist(), stds.tolist(), strict=True), strict=True)
        )
        assert by_id["s_a"] == pytest.approx((np.mean(a.values), np.std(a.values)))
        assert by_id["s_b"] == pytest.approx((np.mean(b.values), np.std(b.values)))

    def test_columns_match_each_series_summary(
        self, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_columns, "CHUNK_ROWS", 7)  # rows come in many chunks
        rng = np.random.default_rng(3)
        for i in range(40):
            n = int(rng.integers(1, 300))
            readings = Readings(
                EPOCH + STEP_S * np.arange(n, dtype=np.float64),
                rng.normal(rng.normal(0, 100), rng.exponential(5), n),
            )
            ingest(sessions, readings, f"s{i}")
        with sessions() as session:
            store = ReadingStore(session)
            ids, means, stds = store.all_statistics()
            summaries = {s.series_id: s for s in store.list_series(limit=100)}

        assert sorted(ids) == sorted(summaries)
        for series_id, mean, std in zip(
            ids, means.tolist(), stds.tolist(), strict=True
        ):
            assert (mean, std) == (summaries[series_id].mean, summaries[series_id].std)

    def test_are_empty_without_series(self, sessions: Sessions) -> None:
        with sessions() as session:
            ids, means, stds = ReadingStore(session).all_statistics()
            assert ReadingStore(session).get_series(SERIES) is None
        assert (ids, means.size, stds.size) == ([], 0, 0)


class TestWindow:
    def test_includes_start_and_excludes_end(self, sessions: Sessions) -> None:
        ingest(sessions, sensor_readings(100))
        start, end = EPOCH + 10 * STEP_S, EPOCH + 20 * STEP_S
        with sessions() as session:
            window = ReadingStore(session).window(SERIES, start=start, end=end)
        assert window.timestamps[0] == start
        assert window.timestamps[-1] == end - STEP_S
        assert len(window) == 10

    def test_returns_the_oldest_first_up_to_the_limit(self, sessions: Sessions) -> None:
        readings = sensor_readings(100)
        ingest(sessions, part(readings, 50, 100))
        ingest(sessions, part(readings, 0, 50))
        with sessions() as session:
            window = ReadingStore(session).window(SERIES, limit=7)
        np.testing.assert_array_equal(window.timestamps, readings.timestamps[:7])

    def test_reads_on_after_a_cursor_within_the_bounds(
        self, sessions: Sessions
    ) -> None:
        readings = sensor_readings(100)
        ingest(sessions, readings)
        cursor = float(readings.timestamps[40])
        with sessions() as session:
            window = ReadingStore(session).window(
                SERIES, start=EPOCH + 10 * STEP_S, end=EPOCH + 60 * STEP_S,
                after=cursor, limit=12,
            )  # fmt: skip
        np.testing.assert_array_equal(window.timestamps, readings.timestamps[41:53])
        np.testing.assert_array_equal(window.values, readings.values[41:53])

    def test_is_empty_for_an_unknown_series(self, sessions: Sessions) -> None:
        with sessions() as session:
            window = ReadingStore(session).window("nobody", start=0.0, end=EPOCH * 2)
        assert len(window) == 0
        assert window.timestamps.dtype == np.float64


class TestLastHours:
    def test_returns_the_hours_before_the_newest_reading(
        self, sessions: Sessions
    ) -> None:
        week = sensor_readings()
        ingest(sessions, week)
        with sessions() as session:
            store = ReadingStore(session)
            last = store.last_hours(SERIES, 2.0)
            count = store.count_last_hours(SERIES, 2.0)
        # both ends included: 2 h of minute readings plus the newest
        assert len(last) == count == 121
        assert last.timestamps[-1] == week.timestamps[-1]
        assert last.timestamps[0] == week.timestamps[-1] - 2 * 3600

    def test_covers_everything_when_the_window_is_longer(
        self, sessions: Sessions
    ) -> None:
        ingest(sessions, sensor_readings(300))
        with sessions() as session:
            store = ReadingStore(session)
            assert len(store.last_hours(SERIES, 168)) == 300
            assert store.count_last_hours(SERIES, 168) == 300

    def test_is_empty_for_an_unknown_series(self, sessions: Sessions) -> None:
        with sessions() as session:
            store = ReadingStore(session)
            assert len(store.last_hours("nobody", 24)) == 0
            assert store.count_last_hours("nobody", 24) == 0


AXIS_SERIES = [f"sensor_{n:03d}_{axis}" for n in (1, 2) for axis in ("axial", "radial")]
# `_` is a LIKE wildcard: a prefix `sensor_` must not match `sensorX`.
FLEET = sorted([*AXIS_SERIES, "sensorX001_radial"])


@pytest.fixture
def fleet(sessions: Sessions) -> None:
    for series_id in reversed(FLEET):
        ingest(sessions, sensor_readings(5), series_id)


@pytest.mark.usefixtures("fleet")
class TestListSeries:
    def test_pages_through_every_series_in_id_order(self, sessions: Sessions) -> None:
        seen: list[str] = []
        pages = 0
        after: str | None = None
        with sessions() as session:
            while page := ReadingStore(session).list_series(after=after, limit=2):
                seen += [s.series_id for s in page]
                after = page[-1].series_id
                pages += 1
        assert seen == FLEET
        assert pages == 3

    def test_filters_by_a_literal_prefix(self, sessions: Sessions) -> None:
        with sessions() as session:
            store = ReadingStore(session)
            listed = [s.series_id for s in store.list_series(prefix="sensor_")]
            ids = store.series_ids(prefix="sensor_002")
        assert listed == AXIS_SERIES
        assert ids == ["sensor_002_axial", "sensor_002_radial"]

    def test_combines_prefix_and_cursor(self, sessions: Sessions) -> None:
        with sessions() as session:
            page = ReadingStore(session).list_series(
                prefix="sensor_", after="sensor_001_radial", limit=10
            )
        assert [s.series_id for s in page] == AXIS_SERIES[2:]

    def test_summarizes_each_series(self, sessions: Sessions) -> None:
        with sessions() as session:
            (summary,) = ReadingStore(session).list_series(prefix="sensorX")
        assert summary.n_points == 5
        assert summary.first_ts == EPOCH
        assert summary.last_ts == EPOCH + 4 * STEP_S


class TestNewestAfter:
    def test_each_series_newest_readings_after_its_time(
        self, sessions: Sessions
    ) -> None:
        week = sensor_readings(100)
        ingest(sessions, week, "pump7")
        ingest(sessions, part(week, 0, 10), "pump8")
        t = week.timestamps

        with sessions() as session:
            found = ReadingStore(session).newest_after(
                ["pump7", "pump8", "pump9"],
                np.array([t[90], t[9], -np.inf]),
                np.array([3, 5, 5]),
            )

            never_seen = ReadingStore(session).newest_after(
                ["pump7"], np.array([-np.inf]), np.array([2])
            )

        assert set(found) == {"pump7"}  # pump8 has none after; pump9 none at all
        np.testing.assert_array_equal(never_seen["pump7"].timestamps, t[98:])
        np.testing.assert_array_equal(found["pump7"].timestamps, t[97:])
        np.testing.assert_array_equal(found["pump7"].values, week.values[97:])
