"""The cold history: old periods move to Parquet segments, and every reader of
readings still sees each reading once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AuditLog, ReadingStore
from atalaia.adapters.db.repositories.hot_periods import HotPeriods
from atalaia.adapters.db.repositories.segments import SegmentStore
from atalaia.adapters.db.tables import ReadingRow
from atalaia.core.history import DAY_S, ColdPolicy
from atalaia.core.series import Readings
from atalaia.services.cold_history import archive

Sessions = sessionmaker[Session]
START = 1_733_011_200.0  # 2024-12-01T00:00:00Z, a day's start
STEP_S = 300.0
DAYS = 10
SERIES = ("pump1_x", "pump1_y", "pump2_x")
POLICY = ColdPolicy(hot_days=3)
NOW = START + DAYS * DAY_S  # the day after the last reading


def history(seed: int) -> Readings:
    ts = START + STEP_S * np.arange(int(DAYS * DAY_S / STEP_S), dtype=np.float64)
    values = np.random.default_rng(seed).normal(size=ts.size)
    return Readings(ts, values)


HISTORY = {sid: history(seed) for seed, sid in enumerate(SERIES)}


def ingest(sessions: Sessions, batch: dict[str, Readings]) -> dict[str, int]:
    with sessions() as session:
        results = ReadingStore(session).append_many(batch)
        session.commit()
    return {sid: r.inserted for sid, r in results.items()}


def hot_rows(sessions: Sessions, before: float = np.inf) -> int:
    with sessions() as session:
        count = select(func.count()).where(ReadingRow.ts < before)
        return int(session.scalar(count) or 0)


def window(sessions: Sessions, series_id: str, **bounds: float | int) -> Readings:
    with sessions() as session:
        return ReadingStore(session).window(series_id, **bounds)  # type: ignore[arg-type]


def assert_same(got: Readings, expected: Readings) -> None:
    np.testing.assert_array_equal(got.timestamps, expected.timestamps)
    np.testing.assert_array_equal(got.values, expected.values)


def cut(readings: Readings, mask: np.ndarray) -> Readings:
    return Readings(readings.timestamps[mask], readings.values[mask])


@pytest.fixture
def archived(sessions: Sessions, tmp_path: Path) -> Path:
    """Ten days of three series, the first seven of them moved out."""
    ingest(sessions, HISTORY)
    report = archive(sessions=sessions, policy=POLICY, folder=tmp_path, now=NOW)
    assert report.error is None
    assert len(report.segments) == 7  # one a day
    assert report.readings == 7 * 288 * len(SERIES)
    return tmp_path


class TestArchive:
    def test_moves_every_whole_day_before_the_hot_days(
        self, sessions: Sessions, archived: Path
    ) -> None:
        limit = POLICY.limit(NOW)
        assert limit == START + 7 * DAY_S
        assert hot_rows(sessions, before=limit) == 0
        assert hot_rows(sessions) == 3 * 288 * len(SERIES)
        files = sorted(archived.glob("*.parquet"))
        assert len(files) == 7
        day = pq.read_table(files[0])
        assert day.num_rows == 288 * len(SERIES)
        keys = day.column("series_key").to_numpy()
        assert (np.diff(keys) >= 0).all()  # sorted by series, then time
        with sessions() as session:
            assert SegmentStore(session).totals()[:2] == (7, 7 * 288 * len(SERIES))

    def test_a_second_run_finds_nothing_due(
        self, sessions: Sessions, archived: Path
    ) -> None:
        again = archive(sessions=sessions, policy=POLICY, folder=archived, now=NOW)
        assert (again.segments, again.readings, again.error) == ([], 0, None)

    @pytest.mark.usefixtures("archived")
    def test_each_run_is_audited(self, sessions: Sessions) -> None:
        with sessions() as session:
            since = datetime(2020, 1, 1, tzinfo=UTC)
            (detail,) = AuditLog(session).details("scheduler.archive", since=since)
        assert detail["readings"] == 7 * 288 * len(SERIES)
        assert len(detail["segments"]) == 7

    def test_a_cold_folder_that_cannot_be_written_stops_the_run_and_loses_nothing(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        ingest(sessions, HISTORY)
        blocked = tmp_path / "not-a-folder"
        blocked.write_text("a file where the cold folder should be")
        report = archive(sessions=sessions, policy=POLICY, folder=blocked, now=NOW)
        assert report.error is not None
        assert report.segments == []
        assert hot_rows(sessions) == DAYS * 288 * len(SERIES)
        assert_same(window(sessions, "pump1_x"), HISTORY["pump1_x"])


class TestReadersSeeBothHistories:
    @pytest.mark.usefixtures("archived")
    def test_a_whole_series(self, sessions: Sessions) -> None:
        for sid in SERIES:
            assert_same(window(sessions, sid), HISTORY[sid])

    @pytest.mark.usefixtures("archived")
    def test_a_window_across_the_boundary_with_after_and_limit(
        self, sessions: Sessions
    ) -> None:
        ts = HISTORY["pump2_x"].timestamps
        start, end, after = START + 6.5 * DAY_S, START + 7.5 * DAY_S, ts[1900]
        got = window(sessions, "pump2_x", start=start, end=end, after=after, limit=50)
        inside = (ts >= start) & (ts < end) & (ts > after)
        expected = cut(HISTORY["pump2_x"], inside)
        assert_same(got, Readings(expected.timestamps[:50], expected.values[:50]))

    def test_the_last_hours_of_a_series_silent_since_its_days_moved_out(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        early = cut(HISTORY["pump1_x"], HISTORY["pump1_x"].timestamps < START + DAY_S)
        ingest(sessions, {"pump1_x": early, "pump2_x": HISTORY["pump2_x"]})
        archive(sessions=sessions, policy=POLICY, folder=tmp_path, now=NOW)
        assert hot_rows(sessions, before=START + DAY_S) == 0
        with sessions() as session:
            store = ReadingStore(session)
            windows = store.last_windows(["pump1_x", "pump2_x"], hours=2)
            assert len(windows["pump1_x"]) == 25  # every 5 min for 2 h, both ends
            assert_same(windows["pump1_x"], store.last_hours("pump1_x", 2))
            assert len(windows["pump2_x"]) == 25
            assert store.count_last_hours("pump1_x", 2) == 25

    def test_readings_stored_again_are_ignored_and_late_ones_kept(
        self, sessions: Sessions, archived: Path
    ) -> None:
        old = cut(HISTORY["pump1_x"], HISTORY["pump1_x"].timestamps < START + DAY_S)
        assert ingest(sessions, {"pump1_x": old}) == {"pump1_x": 0}
        late = Readings.of([START + 100.0], [42.0])  # between two stored ones
        assert ingest(sessions, {"pump1_x": late}) == {"pump1_x": 1}
        got = window(sessions, "pump1_x", start=START, end=START + 400.0)
        expected = [old.values[0], 42.0, old.values[1]]
        np.testing.assert_array_equal(got.values, expected)
        again = archive(sessions=sessions, policy=POLICY, folder=archived, now=NOW)
        assert again.readings == 1  # a second segment of that day
        assert hot_rows(sessions, before=POLICY.limit(NOW)) == 0
        assert_same(window(sessions, "pump1_x", start=START, end=START + 400.0), got)


def test_a_reading_stored_while_its_day_moves_out_stays_for_the_next_run(
    sessions: Sessions,
) -> None:
    """What a run reads is what it removes: a reading stored meanwhile is
    neither removed unmoved nor lost (PostgreSQL: the run reads one snapshot;
    SQLite: the run holds the write lock, so no writer comes in between)."""
    ingest(sessions, {"pump1_x": HISTORY["pump1_x"]})
    day = (START, START + DAY_S)
    with sessions() as session:
        hot = HotPeriods(session)
        rows = list(hot.rows(*day))
        if session.get_bind().dialect.name == "postgresql":
            ingest(sessions, {"pump1_x": Readings.of([START + 100.0], [42.0])})
        assert hot.drop(*day) == sum(keys.size for keys, _, _ in rows) == 288
        session.commit()
    expected = 1 if sessions.kw["bind"].dialect.name == "postgresql" else 0
    assert hot_rows(sessions, before=START + DAY_S) == expected
