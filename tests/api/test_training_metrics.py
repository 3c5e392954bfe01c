"""The training service's registry figures, read from SQLite and PostgreSQL:
versions per stage, feedback verdicts, and the ledger's stage moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import (
    AnomalyLog,
    FeedbackStore,
    ModelStore,
)
from atalaia.api.training.metrics import RegistryFigures, StageMoves, legal_moves
from atalaia.cli.demo import free_port
from atalaia.core.registry import plan_direct_promotion
from atalaia.core.serving import ScoredAnomaly
from fixtures.factories import SERIES, model_version
from fixtures.registry import store_version

Sessions = sessionmaker[Session]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(collector: Collector) -> Samples:
    """Every sample of one collection: (name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def register(sessions: Sessions, *numbers: int) -> None:
    """Versions `numbers` of SERIES in Staging, each with its job."""
    with sessions() as session:
        for number in numbers:
            store_version(session, model_version(number), actor="trainer")
        session.commit()


def promote(sessions: Sessions, version: int) -> None:
    with sessions() as session:
        models = ModelStore(session)
        changes = plan_direct_promotion(
            models.get(SERIES, version), models.production(SERIES),
            archive_existing=True,
        )  # fmt: skip
        models.apply(changes, actor="engineer", reason="promote")
        session.commit()


def flag(sessions: Sessions, *timestamps: float) -> None:
    """Log SERIES' readings at `timestamps` as anomalies the models flagged."""
    with sessions() as session:
        AnomalyLog(session).append(
            [
                ScoredAnomaly(
                    SERIES,
                    ts,
                    9.0,
                    5.0,
                    0.3,
                    0.1,
                    0.5,
                    "up",
                    "above_band",
                    1,
                    "zscore",
                    stale=False,
                )  # fmt: skip
                for ts in timestamps
            ]
        )
        session.commit()


def label(sessions: Sessions, ts: float, *, is_anomaly: bool) -> None:
    with sessions() as session:
        FeedbackStore(session).add(
            series_id=SERIES, ts=ts, is_anomaly=is_anomaly, version=None, note="",
            actor="scientist",
        )  # fmt: skip
        session.commit()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestRegistryFigures:
    def test_counts_versions_per_stage(self, sessions: Sessions) -> None:
        register(sessions, 1, 2, 3)
        promote(sessions, 1)
        promote(sessions, 2)  # version 1 archived

        figures = samples(RegistryFigures(sessions))

        assert {
            stage: figures[("model_versions", (("stage", stage),))]
            for stage in ("staging", "production", "archived")
        } == {"staging": 1, "production": 1, "archived": 1}

    def test_sorts_the_labels_by_what_the_models_said(self, sessions: Sessions) -> None:
        flag(sessions, 100.0, 200.0, 300.0)
        label(sessions, 100.0, is_anomaly=True)  # confirmed
        label(sessions, 200.0, is_anomaly=False)  # a false alarm
        label(sessions, 300.0, is_anomaly=False)  # another
        label(sessions, 400.0, is_anomaly=True)  # missed: never flagged
        label(sessions, 500.0, is_anomaly=False)  # normal, and not flagged

        figures = samples(RegistryFigures(sessions))

        verdicts = {
            labels[0][1]: value
            for (name, labels), value in figures.items()
            if name == "model_feedback_labels"
        }
        assert verdicts == {"confirmed": 1, "false_alarm": 2, "missed": 1, "normal": 1}

    def test_counts_only_the_labels_of_the_window(self, sessions: Sessions) -> None:
        label(sessions, 100.0, is_anomaly=True)
        with sessions() as session:
            store = FeedbackStore(session)
            given = store.verdicts(since=datetime.now(UTC) - timedelta(hours=1))
            later = store.verdicts(since=datetime.now(UTC) + timedelta(hours=1))

        assert (given, later) == ({(True, False): 1}, {})

    def test_counts_again_only_once_the_figures_are_old(
        self, sessions: Sessions
    ) -> None:
        clock = Clock()
        figures = RegistryFigures(sessions, ttl_s=300.0, clock=clock)
        staging = ("model_versions", (("stage", "staging"),))
        before = samples(figures)[staging]
        register(sessions, 1)

        clock.now = 299.0
        kept = samples(figures)[staging]
        clock.now = 300.0
        counted = samples(figures)[staging]

        assert (before, kept, counted) == (0, 0, 1)

    def test_says_nothing_while_the_database_is_down(self) -> None:
        engine = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
        try:
            figures = samples(RegistryFigures(make_session_factory(engine)))
        finally:
            engine.dispose()

        assert figures == {}


class MovingClock:
    """utcnow, or a fixed instant once set."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


NOTHING = dict.fromkeys(legal_moves(), 0)  # every legal move, none counted


def moves(collector: StageMoves) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["from_stage"], dict(labels)["to_stage"]): value
        for (name, labels), value in samples(collector).items()
        if name == "model_stage_moves_total"
    }


class TestStageMoves:
    def test_counts_the_moves_written_since_it_was_made(
        self, sessions: Sessions
    ) -> None:
        register(sessions, 1)  # before: not counted
        counter = StageMoves(sessions)
        register(sessions, 2)  # before the first scrape: counted
        first = moves(counter)
        register(sessions, 3)
        promote(sessions, 2)

        counted = moves(counter)
        again = moves(counter)

        assert first == NOTHING | {("none", "staging"): 1}
        assert (
            counted
            == again
            == NOTHING
            | {
                ("none", "staging"): 2,
                ("staging", "production"): 1,
            }
        )

    def test_counts_a_move_committed_after_a_later_scrape_once(
        self, sessions: Sessions
    ) -> None:
        clock = MovingClock()
        counter = StageMoves(sessions, overlap=timedelta(minutes=2), now=clock)
        moves(counter)
        # The next scrape runs a minute on; a version registered meanwhile was
        # timed before that scrape but committed after it.
        clock.at = datetime.now(UTC) + timedelta(minutes=1)
        before = moves(counter)
        register(sessions, 1)
        clock.at += timedelta(minutes=1)
        after = moves(counter)
        clock.at += timedelta(minutes=1)
        later = moves(counter)

        assert before == NOTHING
        assert after == later == NOTHING | {("none", "staging"): 1}

    def test_keeps_its_counts_while_the_database_is_down(self) -> None:
        engine = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
        try:
            counted = moves(StageMoves(make_session_factory(engine)))
        finally:
            engine.dispose()

        assert counted == NOTHING

    def test_has_a_series_for_every_legal_move_from_the_start(self) -> None:
        assert set(NOTHING) == {
            ("none", "staging"), ("staging", "production"), ("staging", "archived"),
            ("production", "archived"), ("production", "staging"),
            ("archived", "production"),
        }  # fmt: skip
