"""Fleet operations on SQLite and PostgreSQL, driven a chunk at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bench._fleet import series_ids
from sqlalchemy import func, select, update

from atalaia.adapters.cache import ModelCache, RedisLink
from atalaia.adapters.db.repositories import (
    FleetRegistry,
    ModelStore,
    NewRollout,
    RolloutStore,
    SignalLogs,
)
from atalaia.adapters.db.serving import DatabaseServingStore
from atalaia.adapters.db.tables import AuditRow, JobRow, OperationRow, VersionRow
from atalaia.core.operations import (
    Action,
    CanaryStart,
    Condition,
    Operation,
    OperationRequest,
    OperationStatus,
    Selector,
    Skip,
)
from atalaia.core.registry import Strategy
from atalaia.core.rollout import CanaryPlan, Gates
from atalaia.errors import ConcurrentChange, Conflict, NotFound
from atalaia.services import operations
from atalaia.services.inference import Predictor
from atalaia.services.operation_runner import OperationRunner
from fixtures.operations import (
    AFTER,
    BEFORE,
    Sessions,
    ledger_size,
    moves,
    promotable,
    stages,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LEASE_S = 60.0
CHUNK = 1_000


class Clock:
    """A runner's time, moved by the test."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def runner(sessions: Sessions, clock: Clock) -> OperationRunner:
    return OperationRunner(sessions, clock=clock, lease_s=LEASE_S)


def create(
    sessions: Sessions,
    action: Action = Action.PROMOTE,
    condition: Condition | None = None,
    canary: CanaryStart | None = None,
    **selector: object,
) -> Operation:
    """An operation of `action` on the series of `selector`, in chunks of 1,000."""
    request = OperationRequest(
        action,
        Selector(**selector),  # type: ignore[arg-type]
        condition,
        canary=canary,
    )
    with sessions() as session:
        return operations.create_operation(
            session=session, request=request, actor="engineer", now=T0,
            chunk_series=CHUNK,
        )  # fmt: skip


def current(sessions: Sessions, operation_id: str) -> Operation:
    with sessions() as session:
        return operations.get_operation(session=session, operation_id=operation_id)


def run_to_end(worker: OperationRunner, operation_id: str) -> int:
    """Run chunks until the operation ends; how many ran."""
    chunks = 1
    while worker.run_chunk(operation_id):
        chunks += 1
    return chunks


class TestFleetPromotion:
    def test_promotes_by_prefix_in_chunks_with_progress_and_a_cancel(
        self, sessions: Sessions
    ) -> None:
        plant1 = [f"plant1_{i:05d}" for i in range(10_000)]
        plant2 = [f"plant2_{i:05d}" for i in range(300)]
        promotable(sessions, plant1 + plant2)
        operation = create(sessions, prefix="plant1_")
        clock = Clock()
        worker = runner(sessions, clock)

        assert worker.claim() == operation.id
        for _ in range(4):
            clock.advance(2.0)
            assert worker.run_chunk(operation.id)
        middle = current(sessions, operation.id)
        with sessions() as session:
            operations.cancel_operation(
                session=session, operation_id=operation.id, actor="engineer"
            )
        clock.advance(2.0)
        assert not worker.run_chunk(operation.id)
        ended = current(sessions, operation.id)

        assert (middle.status, middle.total, middle.done) == ("running", 10_000, 4_000)
        assert middle.remaining == 6_000
        assert middle.pace(clock()) == (400.0, 15.0)  # 4,000 in 8 s, then 2 s more
        assert (ended.status, ended.done, ended.remaining) == (
            "cancelled",
            4_000,
            6_000,
        )
        assert ended.pace(clock()) == (400.0, None)
        found = stages(sessions)
        promoted, untouched = plant1[:4_000], plant1[4_000:] + plant2
        assert {found[s] for s in promoted} == {AFTER}
        assert {found[s] for s in untouched} == {BEFORE}
        ledger = moves(sessions, reason_like=operation.id)
        assert sorted(ledger) == promoted
        assert {tuple(m) for m in ledger.values()} == {
            ((1, "production→archived"), (2, "staging→production"))
        }

    def test_writes_an_audit_entry_per_chunk_and_one_event_at_the_end(
        self, sessions: Sessions
    ) -> None:
        promotable(sessions, series_ids(2_500))
        operation = create(sessions, all=True)
        worker = runner(sessions, Clock())
        worker.claim()

        chunks = run_to_end(worker, operation.id)

        with sessions() as session:
            audited = session.scalars(
                select(AuditRow.action).where(
                    AuditRow.target == f"operation/{operation.id}"
                )
            ).all()
            events, _ = SignalLogs(session).events_after(0, 10)
        assert chunks == 3
        assert sorted(audited) == ["model.promoted"] * 3 + ["operation.created"]
        [event] = events
        assert event.event == "model.promoted"
        assert event.document["done"] == 2_500
        assert event.document["status"] == "done"
        assert current(sessions, operation.id).status == "done"

    def test_rolls_a_promotion_back(self, sessions: Sessions) -> None:
        promotable(sessions, series_ids(30))
        worker = runner(sessions, Clock())
        first = create(sessions, Action.ROLLBACK, all=True)  # nothing before v1
        worker.claim()
        run_to_end(worker, first.id)
        promotion = create(sessions, prefix="sensor_00000")  # sensors 0 to 9
        worker.claim()
        run_to_end(worker, promotion.id)

        rollback = create(sessions, Action.ROLLBACK, all=True)
        worker.claim()
        run_to_end(worker, rollback.id)

        assert current(sessions, first.id).skipped_by_reason == {
            Skip.NO_EARLIER_PRODUCTION: 30
        }
        ended = current(sessions, rollback.id)
        assert (ended.done, ended.skipped) == (30, 0)
        assert set(stages(sessions).values()) == {("production", "archived")}
        assert {
            tuple(m) for m in moves(sessions, reason_like=rollback.id).values()
        } == {((2, "production→archived"), (1, "archived→production"))}


def in_a_rollout(sessions: Sessions, series_id: str) -> None:
    """A shadow of the series' v2 running beside v1."""
    with sessions() as session:
        RolloutStore(session).add(
            NewRollout(
                series_id,
                Strategy.SHADOW.value,
                2,
                1,
                0.0,
                CanaryPlan(),
                Gates(),
                "",
                T0,
                "engineer",
                "",
            )  # fmt: skip
        )
        session.commit()


class TestFleetCanaries:
    CANARY = CanaryStart(CanaryPlan(initial=10.0, interval_s=3600.0))

    def test_starts_a_canary_of_each_candidate_in_chunks(
        self, sessions: Sessions
    ) -> None:
        ids = series_ids(2_400)
        promotable(sessions, ids)
        operation = create(sessions, Action.CANARY, canary=self.CANARY, all=True)
        worker = runner(sessions, Clock())
        worker.claim()

        chunks = run_to_end(worker, operation.id)

        ended = current(sessions, operation.id)
        with sessions() as session:
            running = RolloutStore(session).all_running()
        assert (chunks, ended.status, ended.done) == (3, OperationStatus.DONE, 2_400)
        assert ended.canary == self.CANARY.describe()
        assert sorted(r.series_id for r in running) == sorted(ids)
        assert {
            (r.strategy, r.candidate, r.production, r.percentage, r.plan)
            for r in running
        } == {("canary", 2, 1, 10.0, self.CANARY.plan)}
        assert {r.next_step_at for r in running} == {T0 + timedelta(hours=1)}
        assert set(stages(sessions).values()) == {BEFORE}  # nothing moved yet
        noted = moves(sessions, reason_like="canary started at 10 %")
        assert noted == {s: [(2, "staging→staging")] for s in ids}

    def test_skips_a_series_in_a_rollout_and_one_without_production(
        self, sessions: Sessions
    ) -> None:
        ids = series_ids(30)
        promotable(sessions, ids)
        in_a_rollout(sessions, ids[0])
        with sessions() as session:
            session.execute(
                update(VersionRow)
                .where(VersionRow.series_id == ids[1], VersionRow.version == 1)
                .values(stage="archived")
            )
            session.commit()
        operation = create(sessions, Action.CANARY, all=True)
        worker = runner(sessions, Clock())
        worker.claim()
        run_to_end(worker, operation.id)

        ended = current(sessions, operation.id)
        assert (ended.done, ended.skipped) == (28, 2)
        assert ended.skipped_by_reason == {
            Skip.ROLLOUT_RUNNING: 1,
            Skip.NO_PRODUCTION: 1,
        }

    def test_a_rollout_started_after_the_plan_has_the_chunk_planned_again(
        self, sessions: Sessions
    ) -> None:
        ids = series_ids(12)
        promotable(sessions, ids)
        with sessions() as session:
            plan = operations.plan_chunk(
                FleetRegistry(session), ids, action=Action.CANARY, condition=None,
                archive_existing=True, canary=self.CANARY,
            )  # fmt: skip
        in_a_rollout(sessions, ids[5])

        with sessions() as session, pytest.raises(ConcurrentChange):
            FleetRegistry(session).apply(plan, actor="e", reason="r", at=T0)

        with sessions() as session:
            assert RolloutStore(session).running_among(ids) == {ids[5]}

    def test_inference_routes_the_started_canaries_after_a_poll(
        self, sessions: Sessions, tmp_path: Path
    ) -> None:
        ids = series_ids(300)
        promotable(sessions, ids)
        predictor = Predictor(
            DatabaseServingStore(sessions), snapshot_path=tmp_path / "snapshot.npz"
        )
        predictor.warm_load()
        operation = create(sessions, Action.CANARY, prefix="sensor_00000")
        worker = runner(sessions, Clock())
        worker.claim()
        run_to_end(worker, operation.id)

        predictor.poll_changes()

        started = {s for s in ids if s.startswith("sensor_00000")}
        assert predictor.candidates.routes.splits.keys() == started
        assert {predictor.table.model_of(s).version for s in ids} == {1}  # type: ignore[union-attr]


class TestSelectors:
    @pytest.fixture
    def fleet(self, sessions: Sessions) -> Sessions:
        ids = series_ids(30) + ["sensor_000001_x_radial", "sensor_0000011_radial"]
        promotable(sessions, ids)
        with sessions() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.series_id.in_(ids[:5]), JobRow.job_id.endswith("-2"))
                .values(batch_id="batch-1")
            )
            session.commit()
        return sessions

    @pytest.mark.parametrize(
        ("selector", "expected"),
        [
            ({"series_ids": ("sensor_000002_axial", "sensor_000001_radial")}, 2),
            ({"sensor": "sensor_000001"}, 3),
            ({"prefix": "sensor_000001"}, 5),
            ({"batch_id": "batch-1"}, 5),
            ({"all": True}, 32),
        ],
    )
    def test_selects_its_series(
        self, fleet: Sessions, selector: dict[str, Any], expected: int
    ) -> None:
        operation = create(fleet, **selector)
        worker = runner(fleet, Clock())
        worker.claim()
        run_to_end(worker, operation.id)

        ended = current(fleet, operation.id)
        assert (ended.total, ended.done) == (expected, expected)
        promoted = {s for s, found in stages(fleet).items() if found == AFTER}
        assert len(promoted) == expected

    def test_the_sensor_selects_its_axes_only(self, fleet: Sessions) -> None:
        with fleet() as session:
            chosen = operations.dry_run(
                session=session,
                request=OperationRequest(
                    Action.PROMOTE, Selector(sensor="sensor_000001")
                ),
            )
            named = FleetRegistry(session).selected(Selector(sensor="sensor_000001"))
        assert chosen.selected == 3
        assert named == [
            "sensor_000001_axial", "sensor_000001_radial", "sensor_000001_tangential"
        ]  # fmt: skip

    def test_an_id_without_any_version_fails_and_the_others_go_on(
        self, fleet: Sessions
    ) -> None:
        operation = create(fleet, series_ids=("sensor_000000_radial", "nobody_radial"))
        worker = runner(fleet, Clock())
        worker.claim()
        run_to_end(worker, operation.id)

        ended = current(fleet, operation.id)
        assert (ended.total, ended.done, ended.failed) == (2, 1, 1)
        assert ended.errors == [
            {"series_id": "nobody_radial", "error": "no model version"}
        ]

    def test_refuses_an_unknown_batch_and_an_empty_selection(
        self, fleet: Sessions
    ) -> None:
        with pytest.raises(NotFound, match="batch-9") as unknown:
            create(fleet, batch_id="batch-9")
        with pytest.raises(NotFound) as empty:
            create(fleet, prefix="pump")
        assert unknown.value.rule == "batch_exists"
        assert empty.value.rule == "selector_matches"


class TestCondition:
    def test_skips_candidates_that_fail_it_with_the_reason(
        self, sessions: Sessions
    ) -> None:
        rates = [(0.01, 0.01), (0.01, 0.011), (0.01, 0.02), (0.01, 0.05)]
        ids = series_ids(4 * 25)
        promotable(sessions, ids, rates * 25)
        condition = Condition(
            max_holdout_false_alarm_rate=0.03, anomaly_rate_within=0.2
        )
        operation = create(sessions, condition=condition, all=True)
        worker = runner(sessions, Clock())
        worker.claim()
        run_to_end(worker, operation.id)

        ended = current(sessions, operation.id)
        assert (ended.done, ended.skipped) == (50, 50)
        assert ended.skipped_by_reason == {
            Skip.ANOMALY_RATE: 25,
            Skip.FALSE_ALARM_RATE: 25,
        }
        assert ended.condition == {
            "max_holdout_false_alarm_rate": 0.03,
            "anomaly_rate_within": 0.2,
        }


class TestDryRun:
    def test_counts_what_it_would_do_and_changes_nothing(
        self, sessions: Sessions
    ) -> None:
        ids = series_ids(60)
        promotable(sessions, ids, [(0.001, 0.001)] * 40 + [(0.001, 0.5)] * 20)
        before, ledger = stages(sessions), ledger_size(sessions)
        condition = Condition(max_holdout_false_alarm_rate=0.1)
        request = OperationRequest(Action.PROMOTE, Selector(all=True), condition)

        with sessions() as session:
            found = operations.dry_run(session=session, request=request)
            kept = session.scalar(select(func.count()).select_from(OperationRow))

        assert (found.selected, found.eligible, found.failed) == (60, 40, 0)
        assert found.skipped == {Skip.FALSE_ALARM_RATE: 20}
        assert (stages(sessions), ledger_size(sessions), kept) == (before, ledger, 0)


class TestCancel:
    def test_a_queued_operation_is_cancelled_at_once(self, sessions: Sessions) -> None:
        promotable(sessions, series_ids(10))
        operation = create(sessions, all=True)

        with sessions() as session:
            cancelled = operations.cancel_operation(
                session=session, operation_id=operation.id, actor="engineer"
            )

        assert cancelled.status == OperationStatus.CANCELLED
        assert runner(sessions, Clock()).claim() is None
        assert set(stages(sessions).values()) == {BEFORE}

    def test_an_ended_operation_cannot_be_cancelled(self, sessions: Sessions) -> None:
        promotable(sessions, series_ids(10))
        operation = create(sessions, all=True)
        worker = runner(sessions, Clock())
        worker.claim()
        run_to_end(worker, operation.id)

        with sessions() as session, pytest.raises(Conflict) as refused:
            operations.cancel_operation(
                session=session, operation_id=operation.id, actor="engineer"
            )
        assert refused.value.rule == "operation_cancellable"


class TestRunnerTakeover:
    def test_another_runner_finishes_the_operation_of_one_that_died(
        self, sessions: Sessions
    ) -> None:
        ids = series_ids(5_000)
        promotable(sessions, ids)
        operation = create(sessions, all=True)
        clock = Clock()
        first, second = runner(sessions, clock), runner(sessions, clock)
        assert first.claim() == operation.id
        assert first.run_chunk(operation.id)
        assert first.run_chunk(operation.id)

        # The first runner dies here: the second finds the operation held
        # until the lease runs out, then takes it over.
        assert second.claim() is None
        clock.advance(LEASE_S + 1)
        assert second.claim() == operation.id
        run_to_end(second, operation.id)
        assert not first.run_chunk(operation.id)  # it came back: too late

        ended = current(sessions, operation.id)
        assert (ended.status, ended.done, ended.remaining) == ("done", 5_000, 0)
        ledger = moves(sessions, reason_like=operation.id)
        assert len(ledger) == 5_000
        assert {len(m) for m in ledger.values()} == {2}  # no series moved twice
        assert set(stages(sessions).values()) == {AFTER}

    def test_a_runner_stopped_lets_another_take_over_at_once(
        self, sessions: Sessions
    ) -> None:
        promotable(sessions, series_ids(3_000))
        operation = create(sessions, all=True)
        clock = Clock()
        first, second = runner(sessions, clock), runner(sessions, clock)
        first.claim()
        first.run_chunk(operation.id)

        first.stop()

        assert second.claim() == operation.id
        run_to_end(second, operation.id)
        assert current(sessions, operation.id).done == 3_000


class TestSharedCache:
    def test_the_moved_series_leave_the_shared_model_cache(
        self, sessions: Sessions, redis_url: str, redis_prefix: str
    ) -> None:
        ids = series_ids(1_500)
        promotable(sessions, ids)
        link = RedisLink(redis_url, prefix=redis_prefix, timeout_s=1.0, retry_s=2.0)
        cache = ModelCache(link, ttl_s=600)
        with sessions() as session:
            cache.put_many(ModelStore(session).served_models(ids), overwrite=True)
        operation = create(sessions, prefix="sensor_0000")  # sensors 0 to 99
        worker = OperationRunner(sessions, cache=cache, clock=Clock())
        worker.claim()
        try:
            run_to_end(worker, operation.id)
            kept = cache.get_many(ids)
        finally:
            link.close()

        assert set(kept) == set(ids[300:])
        assert {m.version for m in kept.values()} == {1}


class TestInferenceFollows:
    @pytest.mark.parametrize("fleet", [300, 3_000])  # a series' reload; a full load
    def test_serves_the_promoted_versions_after_a_poll(
        self, sessions: Sessions, tmp_path: Path, fleet: int
    ) -> None:
        ids = series_ids(fleet)
        promotable(sessions, ids)
        predictor = Predictor(
            DatabaseServingStore(sessions), snapshot_path=tmp_path / "snapshot.npz"
        )
        predictor.warm_load()
        loads: list[str] = []
        predictor.on_load = lambda source, _seconds: loads.append(source)
        operation = create(sessions, all=True)
        worker = runner(sessions, Clock())
        worker.claim()
        run_to_end(worker, operation.id)

        changed = predictor.poll_changes()

        served = {predictor.table.model_of(s).version for s in ids}  # type: ignore[union-attr]
        assert changed == fleet
        assert served == {2}
        assert loads == (["database"] if fleet > 1_000 else [])
