"""ModelStore on SQLite and PostgreSQL: versions, stages, ledger and change feed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import JobStore, ModelStore, _columns
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.core.detectors import ModelParams
from atalaia.core.detectors.phases import PhaseBand
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.registry import (
    ModelVersion,
    Stage,
    StageChange,
    plan_direct_promotion,
    plan_rollback,
)
from atalaia.core.serving import ServedModel
from atalaia.errors import ConcurrentChange, VersionNotFound
from fixtures import factories
from fixtures.factories import SERIES

Sessions = sessionmaker[Session]
STREAM = bytes(range(256)) + b"\x00" * 64  # a streaming model's packed state


def model_version(
    number: int, *, series_id: str = SERIES, stage: Stage = Stage.STAGING
) -> ModelVersion:
    """Versions alternate between algorithms and centres, so that a mix-up shows."""
    return factories.model_version(
        number,
        stage,
        series_id=series_id,
        algorithm="robust" if number % 2 else "zscore",
        params=ModelParams(center=0.3 + number, scale=0.07, threshold=3.5),
    )


def seasonal_band(rng: np.random.Generator, phases: int = 24) -> PhaseBand:
    """A band of `phases` drawn at random over a day."""
    return PhaseBand(
        86_400.0,
        0.0,
        rng.standard_normal(phases).astype(np.float32),
        rng.uniform(0.1, 1.0, phases).astype(np.float32),
    )


def register(sessions: Sessions, *models: ModelVersion, actor: str = "trainer") -> None:
    """Store each model with the training job it names (the foreign key needs it)."""
    with sessions() as session:
        for model in models:
            JobStore(session).add(
                TrainingJob(
                    job_id=model.lineage.job_id,
                    series_id=model.series_id,
                    status=JobStatus.SUCCEEDED,
                    algorithm=model.algorithm,
                    hyperparameters=model.lineage.hyperparameters,
                    payload_key=None,
                    window_hours=168.0,
                    created_at=model.created_at,
                    submitted_by=actor,
                )
            )
            session.flush()
            ModelStore(session).add(model, actor=actor)
        session.commit()


def promote(sessions: Sessions, version: int, *, archive_existing: bool = True) -> None:
    with sessions() as session:
        models = ModelStore(session)
        changes = plan_direct_promotion(
            models.get(SERIES, version),
            models.production(SERIES),
            archive_existing=archive_existing,
        )
        models.apply(changes, actor="ml-engineer", reason="promote")
        session.commit()


def roll_back(sessions: Sessions) -> list[StageChange]:
    with sessions() as session:
        models = ModelStore(session)
        changes = plan_rollback(
            models.production(SERIES), models.past_production(SERIES)
        )
        models.apply(changes, actor="ml-engineer", reason="rollback")
        session.commit()
    return changes


def stages(sessions: Sessions) -> dict[int, Stage]:
    with sessions() as session:
        return {v.version: v.stage for v in ModelStore(session).versions(SERIES)}


class TestAddAndGet:
    def test_returns_the_version_as_stored(self, sessions: Sessions) -> None:
        model = model_version(1)
        register(sessions, model)
        with sessions() as session:
            back = ModelStore(session).get(SERIES, 1)
        assert back == model
        assert back.created_at.tzinfo is not None

    def test_keeps_a_seasonal_band_exactly(self, sessions: Sessions) -> None:
        band = seasonal_band(np.random.default_rng(3), phases=168)
        register(sessions, replace(model_version(1), band=band))
        with sessions() as session:
            back = ModelStore(session).get(SERIES, 1).band
        assert back is not None
        assert back.period == band.period
        assert back.departure.tolist() == band.departure.tolist()
        assert back.width.tolist() == band.width.tolist()

    def test_keeps_the_stuck_guard(self, sessions: Sessions) -> None:
        register(sessions, replace(model_version(1), stuck_after=6), model_version(2))
        with sessions() as session:
            guarded, unguarded = (ModelStore(session).get(SERIES, n) for n in (1, 2))
        assert (guarded.stuck_after, unguarded.stuck_after) == (6, 0)

    def test_keeps_a_streaming_models_packed_state(self, sessions: Sessions) -> None:
        register(sessions, replace(model_version(1), stream=STREAM), model_version(2))
        with sessions() as session:
            streaming, other = (ModelStore(session).get(SERIES, n) for n in (1, 2))
        assert (streaming.stream, other.stream) == (STREAM, None)

    def test_finds_versions_by_their_jobs(self, sessions: Sessions) -> None:
        register(sessions, model_version(1), model_version(2))
        with sessions() as session:
            found = ModelStore(session).by_jobs([f"job-{SERIES}-2", "no-such-job"])
        assert {job: v.version for job, v in found.items()} == {f"job-{SERIES}-2": 2}

    def test_raises_for_an_unknown_version(self, sessions: Sessions) -> None:
        register(sessions, model_version(1))
        with sessions() as session, pytest.raises(VersionNotFound, match="version 2"):
            ModelStore(session).get(SERIES, 2)

    def test_lists_versions_newest_first(self, sessions: Sessions) -> None:
        register(sessions, model_version(1), model_version(2), model_version(3))
        register(sessions, model_version(1, series_id="other"))
        with sessions() as session:
            numbers = [v.version for v in ModelStore(session).versions(SERIES)]
        assert numbers == [3, 2, 1]

    def test_knows_the_latest_version_of_each_series(self, sessions: Sessions) -> None:
        register(sessions, model_version(1), model_version(2))
        register(sessions, model_version(1, series_id="other"))
        with sessions() as session:
            latest = ModelStore(session).latest_versions([SERIES, "other", "new"])
        assert latest == {SERIES: 2, "other": 1}

    def test_refuses_a_version_number_twice(self, sessions: Sessions) -> None:
        # Concurrent jobs of a series rely on this to number versions safely.
        first = model_version(1)
        register(sessions, first)
        again = replace(first, lineage=replace(first.lineage, job_id="another-job"))
        with pytest.raises(ConcurrentChange):
            register(sessions, again)

    def test_refuses_a_second_version_of_one_job(self, sessions: Sessions) -> None:
        first = model_version(1)
        register(sessions, first)
        with sessions() as session:
            ModelStore(session).add(replace(first, version=2), actor="trainer")
            with pytest.raises(ConcurrentChange):
                session.commit()

    def test_logs_the_arrival_in_the_ledger(self, sessions: Sessions) -> None:
        register(sessions, model_version(1), actor="alice")
        with sessions() as session:
            (entry,) = ModelStore(session).ledger(SERIES)
        assert (entry.version, entry.from_stage, entry.to_stage) == (
            1,
            None,
            Stage.STAGING,
        )
        assert entry.actor == "alice"
        assert entry.reason == f"trained by job job-{SERIES}-1"
        assert entry.at.tzinfo is not None


class TestStages:
    def test_has_no_production_version_at_first(self, sessions: Sessions) -> None:
        register(sessions, model_version(1))
        with sessions() as session:
            assert ModelStore(session).production(SERIES) is None

    def test_moves_versions_and_logs_each_move(self, sessions: Sessions) -> None:
        register(sessions, model_version(1), model_version(2))
        promote(sessions, 1)
        promote(sessions, 2)
        assert stages(sessions) == {1: Stage.ARCHIVED, 2: Stage.PRODUCTION}
        with sessions() as session:
            ledger = ModelStore(session).ledger(SERIES)
        moves = [(e.version, e.from_stage, e.to_stage) for e in ledger]
        assert moves == [
            (1, None, Stage.STAGING),
            (2, None, Stage.STAGING),
            (1, Stage.STAGING, Stage.PRODUCTION),
            (1, Stage.PRODUCTION, Stage.ARCHIVED),
            (2, Stage.STAGING, Stage.PRODUCTION),
        ]
        assert [e.seq for e in ledger] == sorted(e.seq for e in ledger)
        assert ledger[-1].actor == "ml-engineer"
        assert ledger[-1].reason == "promote"

    def test_keeps_the_old_production_in_staging_when_not_archiving(
        self, sessions: Sessions
    ) -> None:
        register(sessions, model_version(1), model_version(2))
        promote(sessions, 1)
        promote(sessions, 2, archive_existing=False)
        assert stages(sessions) == {1: Stage.STAGING, 2: Stage.PRODUCTION}

    def test_lists_past_production_versions_most_recent_first(
        self, sessions: Sessions
    ) -> None:
        register(sessions, model_version(1), model_version(2), model_version(3))
        promote(sessions, 1)
        promote(sessions, 3)
        promote(sessions, 2)
        with sessions() as session:
            past = [v.version for v in ModelStore(session).past_production(SERIES)]
        assert past == [2, 3, 1]

    def test_rolls_back_to_the_previous_production_version(
        self, sessions: Sessions
    ) -> None:
        register(sessions, model_version(1), model_version(2), model_version(3))
        promote(sessions, 1)
        promote(sessions, 2)
        promote(sessions, 3)
        changes = roll_back(sessions)
        assert [(c.version, c.to_stage) for c in changes] == [
            (3, Stage.ARCHIVED),
            (2, Stage.PRODUCTION),
        ]
        assert stages(sessions) == {
            1: Stage.ARCHIVED,
            2: Stage.PRODUCTION,
            3: Stage.ARCHIVED,
        }
        with sessions() as session:
            production = ModelStore(session).production(SERIES)
        assert production is not None
        assert production.version == 2

    def test_ignores_other_series_in_the_history(self, sessions: Sessions) -> None:
        register(sessions, model_version(1), model_version(1, series_id="other"))
        promote(sessions, 1)
        with sessions() as session:
            models = ModelStore(session)
            models.apply(
                [StageChange("other", 1, Stage.STAGING, Stage.PRODUCTION)],
                actor="x",
                reason="",
            )
            session.commit()
            past = [(v.series_id, v.version) for v in models.past_production(SERIES)]
        assert past == [(SERIES, 1)]


class TestServedModels:
    @pytest.fixture
    def fleet(self, sessions: Sessions) -> None:
        register(
            sessions,
            model_version(1),
            model_version(2),
            model_version(1, series_id="pump7"),
            model_version(1, series_id="fan9"),
        )
        promote(sessions, 2)
        with sessions() as session:
            ModelStore(session).apply(
                [StageChange("pump7", 1, Stage.STAGING, Stage.PRODUCTION)],
                actor="x",
                reason="",
            )
            session.commit()

    @pytest.mark.usefixtures("fleet")
    def test_lists_only_production_versions(self, sessions: Sessions) -> None:
        with sessions() as session:
            served = sorted(
                ModelStore(session).served_models(), key=lambda m: m.series_id
            )
        assert served == [
            ServedModel("pump7", 1, "robust", 1.3, 0.07, 3.5),
            ServedModel(SERIES, 2, "zscore", 2.3, 0.07, 3.5),
        ]

    def test_columns_hold_the_same_models_as_the_objects(
        self, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_columns, "CHUNK_ROWS", 7)  # rows come in many chunks
        rng = np.random.default_rng(7)
        models = [
            replace(
                model_version(number, series_id=f"s{i}"),
                params=ModelParams(
                    *(rng.standard_normal(3) * 10.0 ** rng.integers(-9, 9, 3)).tolist()
                ),
                band=seasonal_band(rng) if i % 2 else None,
                artifact=f"models/s{i}/{number}.npz" if i % 3 == 0 else None,
                stuck_after=i % 5 * 3,
                stream=bytes([i]) * (100 + i) if i % 4 == 1 else None,
            )
            for i in range(60)
            for number in range(1, int(rng.integers(1, 4)) + 1)
        ]
        promoted = [m for m in models if m.version == 1 and rng.random() < 0.7]
        register(sessions, *models)
        with sessions() as session:
            store = ModelStore(session)
            store.apply(
                [
                    StageChange(m.series_id, m.version, Stage.STAGING, Stage.PRODUCTION)
                    for m in promoted
                ],
                actor="x",
                reason="",
            )
            session.commit()
            objects = store.served_models()
            columns = store.served_columns()

        as_rows = list(
            zip(
                columns.series_ids, columns.version.tolist(), columns.algorithm,
                columns.center.tolist(), columns.scale.tolist(),
                columns.threshold.tolist(), columns.band, columns.artifact,
                columns.stuck_after.tolist(), columns.stream,
                strict=True,
            )
        )  # fmt: skip
        expected = {
            ServedModel(
                m.series_id, m.version, m.algorithm, m.params.center, m.params.scale,
                m.params.threshold, m.band.to_bytes() if m.band else None,
                m.artifact, m.stuck_after, m.stream,
            )
            for m in promoted
        }  # fmt: skip
        assert 20 < len(as_rows) == len(objects) == len(expected) < 60
        assert {ServedModel(*row) for row in as_rows} == set(objects) == expected

    def test_serving_reads_carry_the_guard_and_the_stream(
        self, sessions: Sessions
    ) -> None:
        register(
            sessions,
            replace(model_version(1), stuck_after=8, stream=STREAM),
            model_version(1, series_id="pump7"),
        )
        with sessions() as session:
            ModelStore(session).apply(
                [
                    StageChange(s, 1, Stage.STAGING, Stage.PRODUCTION)
                    for s in (SERIES, "pump7")
                ],
                actor="x",
                reason="",
            )
            session.commit()
        store = DatabaseServingStore(sessions)

        fleet = store.load_fleet().models
        found = store.load_series([SERIES, "pump7"]).models

        limits = zip(fleet.series_ids, fleet.stuck_after.tolist(), strict=True)
        assert dict(limits) == {SERIES: 8, "pump7": 0}
        assert {m.series_id: m.stuck_after for m in found} == {SERIES: 8, "pump7": 0}
        streams = dict(zip(fleet.series_ids, fleet.stream, strict=True))
        assert streams == {SERIES: STREAM, "pump7": None}
        assert {m.series_id: m.stream for m in found} == streams

    def test_columns_of_an_empty_registry(self, sessions: Sessions) -> None:
        with sessions() as session:
            columns = ModelStore(session).served_columns()
        assert (columns.series_ids, columns.algorithm) == ([], [])
        assert columns.version.dtype == np.int64
        assert columns.stuck_after.dtype == np.int32
        assert columns.stream == []
        assert columns.center.size == columns.scale.size == 0

    @pytest.mark.usefixtures("fleet")
    def test_filters_by_series(self, sessions: Sessions) -> None:
        with sessions() as session:
            models = ModelStore(session)
            assert [m.series_id for m in models.served_models(["pump7", "fan9"])] == [
                "pump7"
            ]
            assert models.served_models([]) == []

    @pytest.mark.usefixtures("fleet")
    def test_summarizes_each_series(self, sessions: Sessions) -> None:
        with sessions() as session:
            models = ModelStore(session)
            summaries = models.summaries()
            page = models.summaries(after="fan9", limit=1)
        assert summaries == [
            {
                "series_id": "fan9",
                "versions": 1,
                "latest_version": 1,
                "production_version": None,
            },
            {
                "series_id": "pump7",
                "versions": 1,
                "latest_version": 1,
                "production_version": 1,
            },
            {
                "series_id": SERIES,
                "versions": 2,
                "latest_version": 2,
                "production_version": 2,
            },
        ]
        assert [s["series_id"] for s in page] == ["pump7"]


class TestChangeFeed:
    def test_starts_at_zero(self, sessions: Sessions) -> None:
        with sessions() as session:
            models = ModelStore(session)
            assert models.latest_seq() == 0
            assert models.changed_since(0) == (0, set())

    def test_reports_series_changed_after_a_sequence_number(
        self, sessions: Sessions
    ) -> None:
        register(sessions, model_version(1))
        with sessions() as session:
            seen = ModelStore(session).latest_seq()
        register(sessions, model_version(1, series_id="pump7"))
        promote(sessions, 1)
        with sessions() as session:
            models = ModelStore(session)
            newest, changed = models.changed_since(seen)
            assert newest == models.latest_seq()
            assert models.changed_since(newest) == (newest, set())
        assert changed == {"pump7", SERIES}
        assert newest == seen + 2
