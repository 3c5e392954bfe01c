"""The fleet's grid on SQLite and PostgreSQL: drift from real drift checks,
staleness with predictions, the anomaly log's recent rows, the grid kept."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories.fleet_grid import FleetGridReads
from atalaia.adapters.db.tables import ScoredAnomalyRow
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.core.fleet_states import LEGEND
from atalaia.core.ports import BatchSubmitter
from atalaia.errors import DependencyUnavailable
from atalaia.services import registry, training
from atalaia.services.fleet_grid import FleetGrids, GridMemo, read_grid
from atalaia.services.healing import Healer
from atalaia.services.scheduler import InProcessSubmitter, check_drift
from atalaia.settings import Settings
from fixtures.fleet import add_day, serve_series
from fixtures.readings import DAY_S
from fixtures.scheduling import DownSubmitter, RecordingQueue
from fixtures.sensor_states import (
    add_predictions,
    put_in_production,
    record_drift_run,
    store_readings,
)

Sessions = sessionmaker[Session]
HOUR_S = 3600.0


def states(sessions: Sessions, at: float | None = None) -> dict[str, str]:
    """Each sensor's state at `at` (default: now), gap 600 s, stale after 1 h."""
    with sessions() as session:
        grid = read_grid(
            session, at=at or time.time(), anomaly_window_s=600.0,
            stale_after_s=HOUR_S, memo=GridMemo(),
        )  # fmt: skip
    return {s: LEGEND[code] for s, code in zip(grid.sensors, grid.states, strict=True)}


@pytest.fixture
def drifting(sessions: Sessions, artifacts: LocalArtifactStore) -> None:
    """sensor_001_radial in production drifted on its last day (ending now);
    sensor_002_radial did not."""
    trained_until = time.time() - DAY_S
    for seed, (series_id, drifted) in enumerate(
        [("sensor_001_radial", True), ("sensor_002_radial", False)]
    ):
        serve_series(sessions, artifacts, series_id, end=trained_until, seed=seed)
        add_day(sessions, series_id, after=trained_until, seed=seed, drift=drifted)


def check(sessions: Sessions, submitter: BatchSubmitter) -> None:
    """A drift check whose drifted series the healing engine retrains."""
    check_drift(
        sessions=sessions, healer=Healer(sessions, Settings(), submitter),
        window_hours=24, retrain_window_hours=168,
    )  # fmt: skip


@pytest.mark.usefixtures("drifting")
class TestDrift:
    def test_a_sensor_whose_series_a_check_found_drifted_shows_drift(
        self, sessions: Sessions, queue: RecordingQueue
    ) -> None:
        assert states(sessions) == {"sensor_001": "ok", "sensor_002": "ok"}

        check(sessions, InProcessSubmitter(sessions, queue, min_interval_s=0))

        assert states(sessions) == {"sensor_001": "drift", "sensor_002": "ok"}

    def test_counts_a_check_whose_retraining_could_not_be_queued(
        self, sessions: Sessions
    ) -> None:
        check(sessions, DownSubmitter())

        assert states(sessions)["sensor_001"] == "drift"

    def test_a_version_promoted_after_the_check_is_not_drifted(
        self,
        sessions: Sessions,
        queue: RecordingQueue,
        artifacts: LocalArtifactStore,
    ) -> None:
        check(sessions, InProcessSubmitter(sessions, queue, min_interval_s=0))
        [job_id] = queue.dispatched
        assert training.run_training_job(job_id, sessions=sessions, artifacts=artifacts)

        with sessions() as session:
            registry.promote_version(
                session=session, series_id="sensor_001_radial", version=2,
                archive_existing=True, actor="test",
            )  # fmt: skip
            session.commit()

        assert states(sessions)["sensor_001"] == "ok"

    def test_a_later_check_finding_nothing_clears_it(
        self, sessions: Sessions, queue: RecordingQueue
    ) -> None:
        check(sessions, InProcessSubmitter(sessions, queue, min_interval_s=0))

        record_drift_run(sessions, [])

        assert states(sessions)["sensor_001"] == "ok"


class TestStale:
    def test_old_readings_make_a_sensor_stale_unless_it_was_predicted(
        self, sessions: Sessions
    ) -> None:
        now = time.time()
        series = ["quiet_1_radial", "predicted_1_radial", "predicted_2_radial"]
        store_readings(sessions, series, now - 2 * HOUR_S)
        store_readings(sessions, ["fresh_1_radial"], now - HOUR_S + 60)
        put_in_production(sessions, *series, "fresh_1_radial", "unread_1_radial")
        add_predictions(sessions, "predicted_1_radial", now)
        add_predictions(sessions, "predicted_2_radial", now - 3 * HOUR_S)

        assert states(sessions, now) == {
            "fresh_1": "ok",
            "predicted_1": "ok",
            "predicted_2": "stale",  # its predictions stopped too
            "quiet_1": "stale",
            "unread_1": "ok",  # trained, never read: nothing to be stale
        }


def log_rows(sessions: Sessions, rows: list[tuple[int, str, float, float]]) -> None:
    """Anomaly-log rows (id, series, reading time, logged at), as given."""
    with sessions() as session:
        session.execute(
            insert(ScoredAnomalyRow),
            [
                {"id": i, "series_id": s, "ts": ts, "value": 1.0, "score": 3.0,
                 "expected": None, "lower": None, "upper": None, "direction": "above",
                 "reason": "outside_band", "version": 1, "algorithm": "zscore",
                 "stale": False, "scored_at": datetime.fromtimestamp(at, UTC)}
                for i, s, ts, at in rows
            ],
        )  # fmt: skip
        session.commit()


class TestAnomalyLog:
    T0 = 1_800_000_000.0

    @pytest.fixture
    def log(self, sessions: Sessions) -> list[tuple[int, str, float, float]]:
        """1,000 anomalies logged a second apart, each read 5 s before, but
        every tenth stamped 50 s early (its writer waited that long for its
        turn: within LOG_SLACK_S); a hole pruned in the ids."""
        rows = [
            (i, f"s{i}_radial", self.T0 + i - 5, self.T0 + i - 50 * (i % 10 == 0))
            for i in range(1, 1_001)
        ]
        log_rows(sessions, rows)
        with sessions() as session:
            gone = ScoredAnomalyRow.id.between(400, 700)
            session.execute(delete(ScoredAnomalyRow).where(gone))
            session.commit()
        return [r for r in rows if not 400 <= r[0] <= 700]

    @pytest.mark.parametrize(
        "since", [-100, 0, 34, 195, 300, 500, 800, 906, 985, 995, 1_100]
    )
    def test_finds_the_series_with_an_anomaly_since(
        self,
        sessions: Sessions,
        log: list[tuple[int, str, float, float]],
        since: float,
    ) -> None:
        with sessions() as session:
            found = FleetGridReads(session).anomalous_series(since=self.T0 + since)

        assert found == {s for _, s, ts, _ in log if ts >= self.T0 + since}

    def test_finds_nothing_in_an_empty_log(self, sessions: Sessions) -> None:
        with sessions() as session:
            assert FleetGridReads(session).anomalous_series(since=self.T0) == set()


class TestFleetGrids:
    def test_keeps_the_grid_then_reads_it_again(self, sessions: Sessions) -> None:
        clock = [time.time()]
        grids = FleetGrids(
            sessions, ttl_s=10.0, max_age_s=60.0, anomaly_window_s=600.0,
            stale_after_s=HOUR_S, clock=lambda: clock[0],
        )  # fmt: skip
        store_readings(sessions, ["fan_1_radial"], clock[0])

        first, stale = grids.current()
        store_readings(sessions, ["fan_2_radial"], clock[0])
        clock[0] += 5
        kept, still_fresh = grids.current()
        clock[0] += 10
        _, now_stale = grids.current()
        grids.refresh()
        fresh, _ = grids.current()

        assert kept is first
        assert (stale, still_fresh, now_stale) == (False, False, True)
        assert (first.sensors, fresh.sensors) == (["fan_1"], ["fan_1", "fan_2"])
        assert fresh.at == clock[0]

    def test_prepares_what_reads_keep_but_answers_a_fresh_grid(
        self, sessions: Sessions
    ) -> None:
        store_readings(sessions, ["fan_1_radial"], time.time())
        grids = FleetGrids(
            sessions, ttl_s=10.0, max_age_s=60.0, anomaly_window_s=600.0,
            stale_after_s=HOUR_S,
        )  # fmt: skip

        grids.prepare()
        store_readings(sessions, ["fan_2_radial"], time.time())
        first, _ = grids.current()

        assert first.sensors == ["fan_1", "fan_2"]  # read at the answer

    def test_a_database_down_at_start_is_left_to_the_first_answer(self) -> None:
        def down() -> AbstractContextManager[Session]:
            raise DependencyUnavailable("database", "connection refused")

        grids = FleetGrids(
            down, ttl_s=10.0, max_age_s=60.0, anomaly_window_s=600.0,
            stale_after_s=HOUR_S,
        )  # fmt: skip

        grids.prepare()  # says so in the log, raises nothing

        with pytest.raises(DependencyUnavailable):
            grids.current()

    def test_reads_a_grid_too_old_before_answering(self, sessions: Sessions) -> None:
        clock = [time.time()]
        grids = FleetGrids(
            sessions, ttl_s=10.0, max_age_s=60.0, anomaly_window_s=600.0,
            stale_after_s=HOUR_S, clock=lambda: clock[0],
        )  # fmt: skip
        first, _ = grids.current()
        store_readings(sessions, ["fan_1_radial"], clock[0])

        clock[0] += 61
        again, stale = grids.current()

        assert (first.sensors, again.sensors, stale) == ([], ["fan_1"], False)
