"""The weekly wave on SQLite and PostgreSQL: a retraining batch's versions go
out by the policy once the batch has ended, one wave per batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bench._fleet import series_ids
from sqlalchemy import select, update

from atalaia.adapters.db.repositories import AuditLog, RolloutStore
from atalaia.adapters.db.tables import AuditRow, JobRow
from atalaia.core.operations import (
    Action,
    Operation,
    OperationRequest,
    OperationStatus,
    Selector,
    Skip,
    WavePolicy,
)
from atalaia.errors import Conflict
from atalaia.services import operations
from atalaia.services.operation_runner import OperationRunner
from atalaia.services.waves import launch_waves
from fixtures.operations import AFTER, BEFORE, Sessions, promotable, stages

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
FLEET = series_ids(60)
GOOD, WORSE = (0.002, 0.001), (0.002, 0.004)  # holdout rates of (v1, v2)


@pytest.fixture
def retrained(sessions: Sessions) -> Sessions:
    """v1 in Production and v2 in Staging of each series, v2 from a weekly
    retraining run of two batches: b1 (the first 30 series) has ended, b2 has
    a job still running. Every third series' v2 did worse on its holdout."""
    promotable(sessions, FLEET, [WORSE if i % 3 == 0 else GOOD for i in range(60)])
    with sessions() as session:
        for batch, chosen in (("b1", FLEET[:30]), ("b2", FLEET[30:])):
            session.execute(
                update(JobRow)
                .where(JobRow.series_id.in_(chosen), JobRow.job_id.endswith("-2"))
                .values(batch_id=batch)
            )
        session.execute(
            update(JobRow)
            .where(JobRow.series_id == FLEET[59], JobRow.job_id.endswith("-2"))
            .values(status="running")
        )
        AuditLog(session).record(
            actor="scheduler", action="scheduler.retrain", target="fleet",
            batches=["b1", "b2"],
        )  # fmt: skip
        session.commit()
    return sessions


def launch(sessions: Sessions, policy: WavePolicy) -> dict[str, str]:
    report = launch_waves(
        sessions=sessions, policy=policy, max_false_alarm_rate=0.005, now=NOW
    )
    assert report.error is None
    return report.launched


def run(sessions: Sessions, operation_id: str) -> Operation:
    worker = OperationRunner(sessions, clock=lambda: NOW)
    assert worker.claim() == operation_id
    while worker.run_chunk(operation_id):
        pass
    with sessions() as session:
        return operations.get_operation(session=session, operation_id=operation_id)


class TestCanaryIfHealthy:
    def test_a_batch_that_ended_gets_canaries_once(self, retrained: Sessions) -> None:
        launched = launch(retrained, WavePolicy.CANARY_IF_HEALTHY)
        again = launch(retrained, WavePolicy.CANARY_IF_HEALTHY)

        assert list(launched) == ["b1"]
        assert again == {}
        ended = run(retrained, launched["b1"])
        assert (ended.action, ended.status) == (Action.CANARY, OperationStatus.DONE)
        assert (ended.done, ended.wave_of) == (30, "b1")
        assert ended.condition == {"max_holdout_false_alarm_rate": 0.005}
        with retrained() as session:
            running = RolloutStore(session).all_running()
        assert sorted(r.series_id for r in running) == sorted(FLEET[:30])

    def test_a_batch_still_training_waits_for_its_end(
        self, retrained: Sessions
    ) -> None:
        first = launch(retrained, WavePolicy.CANARY_IF_HEALTHY)
        with retrained() as session:
            session.execute(update(JobRow).values(status="succeeded"))
            session.commit()

        second = launch(retrained, WavePolicy.CANARY_IF_HEALTHY)

        assert list(first) == ["b1"]
        assert list(second) == ["b2"]
        with retrained() as session:
            entries = session.scalars(
                select(AuditRow.detail).where(AuditRow.action == "scheduler.wave")
            ).all()
        assert [e["waiting"] for e in entries] == [["b2"], []]
        assert entries[1]["launched"] == second


class TestDirectIfBetter:
    def test_promotes_the_versions_no_worse_than_production(
        self, retrained: Sessions
    ) -> None:
        launched = launch(retrained, WavePolicy.DIRECT_IF_BETTER)

        ended = run(retrained, launched["b1"])

        assert (ended.action, ended.done, ended.skipped) == (Action.PROMOTE, 20, 10)
        assert ended.skipped_by_reason == {Skip.NOT_BETTER: 10}
        found = stages(retrained)
        promoted = {s for s in FLEET[:30] if found[s] == AFTER}
        assert promoted == {s for i, s in enumerate(FLEET[:30]) if i % 3}
        assert all(found[s] == BEFORE for s in FLEET[30:])


def test_never_launches_nothing(retrained: Sessions) -> None:
    assert launch(retrained, WavePolicy.NEVER) == {}


def test_a_batch_has_one_wave_whoever_launches_it(retrained: Sessions) -> None:
    request = OperationRequest(Action.PROMOTE, Selector(batch_id="b1"))

    def create() -> None:
        with retrained() as session:
            operations.create_operation(
                session=session, request=request, actor="scheduler", wave_of="b1"
            )

    create()
    with pytest.raises(Conflict) as refusal:
        create()
    assert refusal.value.rule == "one_wave_per_batch"
