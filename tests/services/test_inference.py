"""The serving core: fallback chain, snapshot, change feed, concurrent reloads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.cache import ModelCache, RedisLink
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.inference import answers
from atalaia.core.registry import RegistryNotice
from atalaia.core.series import Readings
from atalaia.core.serving import ServedModel
from atalaia.services import registry, training
from atalaia.services.inference import Predictor, data_plane
from atalaia.services.model_table import ModelTable, Source, Tier
from fixtures.readings import sensor_series

Sessions = sessionmaker[Session]
SERIES = "sensor_007_radial"


def trained_and_promoted(sessions: Sessions, tmp_path: Path, seed: int = 0) -> None:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    timestamps, values = sensor_series(seed=seed)
    with sessions() as session:
        job = training.submit_training(
            session=session,
            artifacts=artifacts,
            request=training.TrainingRequest(
                SERIES, "zscore", {}, readings=Readings(timestamps, values)
            ),
            actor="test",
            min_interval_s=0,
        )
        session.commit()
    model = training.run_training_job(
        job.job_id, sessions=sessions, artifacts=artifacts
    )
    assert model is not None
    with sessions() as session:
        registry.promote_version(
            session=session, series_id=SERIES, version=model.version,
            archive_existing=True, actor="test",
        )  # fmt: skip
        session.commit()


def predictor(sessions: Sessions, tmp_path: Path) -> Predictor:
    return Predictor(
        DatabaseServingStore(sessions), snapshot_path=tmp_path / "snapshot.npz"
    )


def one(p: Predictor, value: float, series_id: str = SERIES) -> dict[str, Any]:
    """Score one reading as the batch route does (through the data plane: a miss
    is looked up), and shape its answer."""
    timestamps, values = np.array([1.7e9]), np.array([value])
    scored = data_plane.score_batch(p, [series_id], timestamps, values)
    shaped = answers.rows_answer(
        [series_id], timestamps, values, scored.scores, scored.fetched
    )
    answer: dict[str, Any] = msgspec.json.decode(
        msgspec.json.encode(shaped["results"][0])
    )
    return answer


class TestModelTable:
    def test_scores_each_tier_of_the_fallback_chain(self) -> None:
        table = ModelTable()
        table.set_models([ServedModel("m", 3, "zscore", 0.0, 1.0, 3.0)], Source.MEMORY)
        table.set_history(["h"], np.array([10.0]), np.array([2.0]))

        rows = table.rows_of(["m", "h", "?"])
        scores = table.score(rows, np.full(3, 1.7e9), np.array([4.0, 17.0, 5.0]))

        assert scores.tier.tolist() == [Tier.MODEL, Tier.HISTORY, Tier.DEFAULT]
        assert scores.anomaly.tolist() == [True, True, False]
        assert scores.version.tolist() == [3, 0, 0]

    def test_snapshot_round_trip_marks_models_as_from_snapshot(
        self, tmp_path: Path
    ) -> None:
        table = ModelTable()
        table.set_models([ServedModel("a", 2, "robust", 1.0, 0.5, 3.5)], Source.MEMORY)
        table.set_history(["a", "b"], np.array([1.0, 2.0]), np.array([0.4, 0.0]))
        table.save(tmp_path / "t.npz")

        loaded = ModelTable.load(tmp_path / "t.npz")

        assert loaded.model_of("a") == ServedModel("a", 2, "robust", 1.0, 0.5, 3.5)
        assert loaded.model_of("b") is None
        assert loaded.cols.source[loaded.index["a"]] == Source.SNAPSHOT

    def test_grows_past_its_first_capacity(self) -> None:
        table = ModelTable()
        rows = [
            ServedModel(f"s{i}", 1, "zscore", float(i), 1.0, 3.0) for i in range(5000)
        ]

        table.set_models(rows, Source.MEMORY)

        assert len(table) == 5000
        assert table.model_of("s4999") == rows[-1]


class TestPredictor:
    def test_warm_load_serves_production_models(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        trained_and_promoted(sessions, tmp_path)
        p = predictor(sessions, tmp_path)

        p.warm_load()

        answer = one(p, 0.3)
        assert answer["model_info"] == {
            "version": 1, "stage": "production", "type": "zscore",
            "loaded_from": "memory",
            "role": "production",
        }  # fmt: skip

    def test_the_feed_thread_writes_the_snapshot_after_a_load(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        trained_and_promoted(sessions, tmp_path)
        p = predictor(sessions, tmp_path)
        p.warm_load()
        assert not p.snapshot_path.exists()  # serving starts without waiting for it

        p.start_following()
        try:
            deadline = time.monotonic() + 10
            while not p.snapshot_path.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            p.stop()

        assert p.snapshot_path.exists(), "no snapshot written within 10 s"
        snapshot = ModelTable.load(p.snapshot_path)
        assert snapshot.model_of(SERIES) == p.table.model_of(SERIES) is not None

    def test_follows_promotions_through_the_change_feed(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        p = predictor(sessions, tmp_path)
        p.warm_load()
        trained_and_promoted(sessions, tmp_path)

        changed = p.poll_changes()

        assert changed == 1
        assert one(p, 0.3)["model_info"] == {
            "version": 1, "stage": "production", "type": "zscore",
            "loaded_from": "memory",
            "role": "production",
        }  # fmt: skip

    def test_series_with_history_only_is_answered_with_low_confidence(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        timestamps, values = sensor_series(2000)
        with sessions() as session:
            ReadingStore(session).append(SERIES, Readings(timestamps, values))
            session.commit()
        p = predictor(sessions, tmp_path)
        p.warm_load()

        answer = one(p, 1e6)

        assert answer["anomaly"] is True
        assert answer["confidence"] == "low"

    def test_reload_never_clears_a_series_that_keeps_its_model(
        self, sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A cleared row would be visible to concurrent readers (they take no lock)
        # and answer from the fallback chain until the model is set again.
        trained_and_promoted(sessions, tmp_path)
        p = predictor(sessions, tmp_path)
        p.warm_load()
        cleared: list[str] = []
        monkeypatch.setattr(p.table, "clear_model", cleared.append)

        p.reload_series([SERIES, "no_model_here"])

        assert cleared == ["no_model_here"]
        assert one(p, 0.3)["model_info"]["version"] == 1


@pytest.fixture
def cache(redis_url: str, redis_prefix: str) -> Iterator[ModelCache]:
    link = RedisLink(redis_url, prefix=redis_prefix, timeout_s=0.25, retry_s=2.0)
    yield ModelCache(link, ttl_s=600)
    link.close()


def cached_predictor(sessions: Sessions, path: Path, cache: ModelCache) -> Predictor:
    return Predictor(
        DatabaseServingStore(sessions), snapshot_path=path / "snapshot.npz", cache=cache
    )


class TestPredictorWithRedis:
    def test_a_miss_is_served_from_redis_once_a_replica_read_the_database(
        self, sessions: Sessions, tmp_path: Path, cache: ModelCache
    ) -> None:
        first = cached_predictor(sessions, tmp_path / "a", cache)
        first.warm_load()  # before the promotion: nothing served yet
        trained_and_promoted(sessions, tmp_path)
        second = cached_predictor(sessions, tmp_path / "b", cache)  # never loaded

        fetched = first.look_up([SERIES])
        answer = one(second, 0.3)

        assert fetched == {SERIES: Source.DATABASE}
        assert not second.database_ok  # so this came from Redis alone
        assert answer["model_info"] == {
            "version": 1, "stage": "production", "type": "zscore",
            "loaded_from": "redis",
            "role": "production",
        }  # fmt: skip
        assert one(second, 0.3)["model_info"]["loaded_from"] == "memory"

    def test_a_notice_is_served_from_redis_when_it_holds_that_version(
        self, sessions: Sessions, tmp_path: Path, cache: ModelCache
    ) -> None:
        trained_and_promoted(sessions, tmp_path)
        p = cached_predictor(sessions, tmp_path, cache)
        p.warm_load()
        cached = ServedModel(SERIES, 9, "zscore", 5.0, 1.0, 3.0)  # not in the DB
        cache.put_many([cached], overwrite=True)

        p.apply_notice(RegistryNotice(SERIES, 9, "production", "promoted"))

        assert p.table.model_of(SERIES) == cached

    def test_a_notice_redis_cannot_answer_is_read_from_the_database(
        self, sessions: Sessions, tmp_path: Path, cache: ModelCache
    ) -> None:
        trained_and_promoted(sessions, tmp_path)
        p = cached_predictor(sessions, tmp_path, cache)
        p.warm_load()
        stale = ServedModel(SERIES, 9, "zscore", 5.0, 1.0, 3.0)
        p.table.set_models([stale], Source.MEMORY)
        cache.put_many([stale], overwrite=True)

        p.apply_notice(RegistryNotice(SERIES, 1, "production", "rolled_back"))

        served = p.table.model_of(SERIES)
        assert served is not None
        assert served.version == 1
        assert cache.get_many([SERIES]) == {SERIES: served}  # Redis set right too

    def test_the_change_feed_writes_what_changed_to_redis(
        self, sessions: Sessions, tmp_path: Path, cache: ModelCache
    ) -> None:
        p = cached_predictor(sessions, tmp_path, cache)
        p.warm_load()
        trained_and_promoted(sessions, tmp_path)

        p.poll_changes()

        assert cache.get_many([SERIES]) == {SERIES: p.table.model_of(SERIES)}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about the serving logic, not the backend."""
    from atalaia.adapters.db.migrate import upgrade_database

    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade_database(url)
    return url
