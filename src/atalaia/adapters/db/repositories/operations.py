"""Fleet operations (`core.operations`): the operations with their progress and
lease, the chunks of series each has yet to handle, and the registry as an
operation selects, reads and writes it: many series per statement, none per
series."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories.assets import AssetStore
from atalaia.adapters.db.repositories.rollouts import NewRollout, RolloutStore
from atalaia.adapters.db.tables import (
    JobRow,
    OperationChunkRow,
    OperationRow,
    RegistryEventRow,
    UtcDateTime,
    VersionRow,
)
from atalaia.core.operations import (
    Action,
    CanaryStart,
    ChunkPlan,
    Move,
    Operation,
    OperationStatus,
    Selector,
    Start,
    VersionFact,
    kept_errors,
)
from atalaia.core.registry import Stage, Strategy
from atalaia.core.series import sensor_of
from atalaia.errors import ConcurrentChange, Conflict, NotFound

# Series a statement names at most (SQLite takes 32,766 parameters).
IN_LIST = 10_000
_LIVE = (Stage.PRODUCTION.value, Stage.STAGING.value)
_UNFINISHED = (OperationStatus.QUEUED.value, OperationStatus.RUNNING.value)
_NO_OPTIONS = {"synchronize_session": False}


def _operation(row: OperationRow) -> Operation:
    return Operation(
        id=row.id,
        action=Action(row.action),
        status=OperationStatus(row.status),
        selector=dict(row.selector),
        condition=dict(row.condition),
        archive_existing=row.archive_existing,
        reason=row.reason,
        actor=row.actor,
        total=row.total,
        done=row.done,
        failed=row.failed,
        skipped=row.skipped,
        skipped_by_reason=dict(row.skipped_by_reason),
        errors=list(row.errors),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=row.cancel_requested,
        canary=dict(row.canary),
        wave_of=row.wave_of,
    )


def _row(operation: Operation) -> OperationRow:
    o = operation
    return OperationRow(
        id=o.id, action=o.action.value, status=o.status.value, selector=o.selector,
        condition=o.condition, archive_existing=o.archive_existing, reason=o.reason,
        actor=o.actor, total=o.total, done=o.done, failed=o.failed,
        skipped=o.skipped, skipped_by_reason=o.skipped_by_reason, errors=o.errors,
        cancel_requested=o.cancel_requested, created_at=o.created_at,
        started_at=o.started_at, finished_at=o.finished_at, canary=o.canary,
        wave_of=o.wave_of,
    )  # fmt: skip


def _moment(at: datetime) -> Any:
    """`at` as a bound value of the UTC timestamp columns' type."""
    return literal(at, UtcDateTime())


def slices(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """`items` in slices of `size` (the last one shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class OperationStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, operation: Operation, series_ids: Sequence[str], *, chunk_series: int
    ) -> None:
        """Store a new operation with the series it has to handle, in chunks
        of `chunk_series` (a row each: a fleet's is a few dozen rows);
        Conflict (`one_wave_per_batch`) when the batch it is the wave of has
        one already."""
        self.session.add(_row(operation))
        try:
            self.session.flush()
        except ConcurrentChange as exc:  # a constraint (`adapters.db.translation`)
            if operation.wave_of is None:
                raise
            raise Conflict(
                f"batch {operation.wave_of} has its weekly wave already",
                rule="one_wave_per_batch",
            ) from exc
        chunks = [
            {"operation_id": operation.id, "number": number, "series": "\n".join(ids)}
            for number, ids in enumerate(slices(series_ids, chunk_series))
        ]
        if chunks:
            self.session.execute(insert(OperationChunkRow), chunks)

    def waves_of(self, batch_ids: Sequence[str]) -> set[str]:
        """Those of `batch_ids` whose weekly wave was launched."""
        stmt = select(OperationRow.wave_of).where(OperationRow.wave_of.in_(batch_ids))
        return {batch for batch in self.session.scalars(stmt) if batch is not None}

    def get(self, operation_id: str) -> Operation:
        row = self.session.get(OperationRow, operation_id, populate_existing=True)
        if row is None:
            raise NotFound(
                f"operation {operation_id!r} does not exist", rule="operation_exists"
            )
        return _operation(row)

    def page(self, *, before: str | None, limit: int) -> list[Operation]:
        """Newest first (ids sort by creation); `before`: the last id of the
        previous page."""
        stmt = select(OperationRow).order_by(OperationRow.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(OperationRow.id < before)
        return [_operation(row) for row in self.session.scalars(stmt)]

    def request_cancel(self, operation_id: str, *, at: datetime) -> bool:
        """Ask an unfinished operation to stop: a queued one is cancelled at
        once, a running one by its runner between two chunks. False when it
        had ended (or does not exist)."""
        queued = OperationRow.status == OperationStatus.QUEUED.value
        stmt = (
            update(OperationRow)
            .where(
                OperationRow.id == operation_id, OperationRow.status.in_(_UNFINISHED)
            )
            .values(
                cancel_requested=True,
                status=case(
                    (queued, OperationStatus.CANCELLED.value), else_=OperationRow.status
                ),
                finished_at=case((queued, _moment(at)), else_=OperationRow.finished_at),
            )
        )
        if _updated(self.session, stmt) == 0:
            return False
        if self.get(operation_id).status is OperationStatus.CANCELLED:
            self._forget_chunks(operation_id)
        return True

    def claimable(self, *, now: datetime) -> list[str]:
        """Unfinished operations no runner holds (or whose runner's lease ran
        out), oldest first."""
        stmt = (
            select(OperationRow.id)
            .where(
                OperationRow.status.in_(_UNFINISHED),
                OperationRow.runner.is_(None) | (OperationRow.lease_until < now),
            )
            .order_by(OperationRow.id)
        )
        return list(self.session.scalars(stmt))

    def claim(
        self, operation_id: str, *, runner: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Take an operation for `runner` until `lease_until`, unless another
        runner holds it (a concurrent claim waits on the row, then finds it
        held)."""
        stmt = (
            update(OperationRow)
            .where(
                OperationRow.id == operation_id,
                OperationRow.status.in_(_UNFINISHED),
                OperationRow.runner.is_(None) | (OperationRow.lease_until < now),
            )
            .values(
                runner=runner,
                lease_until=lease_until,
                status=OperationStatus.RUNNING.value,
                started_at=func.coalesce(OperationRow.started_at, _moment(now)),
            )
        )
        return _updated(self.session, stmt) == 1

    def hold(
        self, operation_id: str, *, runner: str, lease_until: datetime
    ) -> Operation | None:
        """Extend `runner`'s lease, holding the operation's row until the
        transaction ends; None when the runner no longer holds it."""
        stmt = (
            update(OperationRow)
            .where(
                OperationRow.id == operation_id,
                OperationRow.runner == runner,
                OperationRow.status == OperationStatus.RUNNING.value,
            )
            .values(lease_until=lease_until)
        )
        return self.get(operation_id) if _updated(self.session, stmt) == 1 else None

    def release(self, operation_id: str, *, runner: str) -> None:
        """Let another runner take the operation over at once."""
        _updated(
            self.session,
            update(OperationRow)
            .where(OperationRow.id == operation_id, OperationRow.runner == runner)
            .values(runner=None, lease_until=None),
        )

    def next_chunk(self, operation_id: str) -> tuple[int, list[str]] | None:
        """The operation's next chunk to handle: its number and series."""
        stmt = (
            select(OperationChunkRow.number, OperationChunkRow.series)
            .where(OperationChunkRow.operation_id == operation_id)
            .order_by(OperationChunkRow.number)
            .limit(1)
        )
        found = self.session.execute(stmt).one_or_none()
        return (found.number, found.series.split("\n")) if found else None

    def record_chunk(
        self, operation: Operation, *, number: int, plan: ChunkPlan
    ) -> Operation:
        """Count chunk `number`'s outcome (`plan`) and forget the chunk; the
        operation as it is now."""
        self.session.execute(
            delete(OperationChunkRow).where(
                OperationChunkRow.operation_id == operation.id,
                OperationChunkRow.number == number,
            ),
            execution_options=_NO_OPTIONS,
        )
        reasons = Counter(operation.skipped_by_reason) + plan.skipped
        _updated(
            self.session,
            update(OperationRow)
            .where(OperationRow.id == operation.id)
            .values(
                done=operation.done + len(plan.moved),
                failed=operation.failed + len(plan.failed),
                skipped=operation.skipped + plan.skipped.total(),
                skipped_by_reason=dict(reasons),
                errors=kept_errors(operation.errors, plan.failed),
            ),
        )
        return self.get(operation.id)

    def finish(
        self,
        operation: Operation,
        *,
        status: OperationStatus,
        at: datetime,
        error: str | None = None,
    ) -> Operation:
        """End the operation in `status`; `error`: why it failed."""
        values: dict[str, Any] = {
            "status": status.value, "finished_at": at, "runner": None,
            "lease_until": None,
        }  # fmt: skip
        if error is not None:
            values["errors"] = kept_errors(operation.errors, [(None, error)])
        _updated(
            self.session,
            update(OperationRow).where(OperationRow.id == operation.id).values(values),
        )
        self._forget_chunks(operation.id)
        return self.get(operation.id)

    def _forget_chunks(self, operation_id: str) -> None:
        self.session.execute(
            delete(OperationChunkRow).where(
                OperationChunkRow.operation_id == operation_id
            ),
            execution_options=_NO_OPTIONS,
        )


class FleetRegistry:
    """The registry as a fleet operation selects, reads and changes it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def selected(self, selector: Selector) -> list[str]:
        """The series of `selector` that have a model version (any series an
        explicit list names), in id order."""
        if selector.series_ids is not None:
            return sorted(set(selector.series_ids))
        if selector.batch_id is not None:
            stmt = select(JobRow.series_id).where(JobRow.batch_id == selector.batch_id)
            return list(
                self.session.scalars(stmt.distinct().order_by(JobRow.series_id))
            )
        modelled = (
            select(VersionRow.series_id).distinct().order_by(VersionRow.series_id)
        )
        if selector.all:
            return list(self.session.scalars(modelled))
        if selector.prefix is not None:
            starts = VersionRow.series_id.startswith(selector.prefix, autoescape=True)
            return list(self.session.scalars(modelled.where(starts)))
        if selector.asset is not None:
            under = AssetStore(self.session).series_under(selector.asset)
            return list(
                self.session.scalars(modelled.where(VersionRow.series_id.in_(under)))
            )
        sensor = str(selector.sensor)
        axes = VersionRow.series_id.startswith(f"{sensor}_", autoescape=True)
        found = self.session.scalars(modelled.where(axes))
        return [s for s in found if sensor_of(s)[0] == sensor]

    def without_versions(self, series_ids: Sequence[str]) -> list[str]:
        """Those of `series_ids` that have no model version at all."""
        known: set[str] = set()
        for ids in slices(series_ids, IN_LIST):
            stmt = select(VersionRow.series_id).where(
                self._among(VersionRow.series_id, ids)
            )
            known.update(self.session.scalars(stmt.distinct()))
        return [s for s in series_ids if s not in known]

    def live_versions(
        self, series_ids: Sequence[str], *, metrics: bool
    ) -> list[VersionFact]:
        """The Production and Staging versions of `series_ids`; with `metrics`,
        their training metrics (else none: a condition alone reads them)."""
        figures = VersionRow.metrics if metrics else literal(None)
        stmt = select(
            VersionRow.series_id, VersionRow.id, VersionRow.version, VersionRow.stage,
            figures, VersionRow.sensor.is_not(None),
        ).where(
            self._among(VersionRow.series_id, series_ids), VersionRow.stage.in_(_LIVE)
        )  # fmt: skip
        return [
            VersionFact(sid, row, version, Stage(stage), found or {}, sensor)
            for sid, row, version, stage, found, sensor in self.session.execute(stmt)
        ]

    def past_production(self, series_ids: Sequence[str]) -> list[VersionFact]:
        """The versions of `series_ids` once in Production, most recently
        promoted first (as `ModelStore.past_production` for one series)."""
        e = RegistryEventRow
        promoted = (
            select(e.series_id, e.version, func.max(e.seq).label("seq"))
            .where(
                self._among(e.series_id, series_ids),
                e.to_stage == Stage.PRODUCTION.value,
            )
            .group_by(e.series_id, e.version)
            .subquery()
        )
        stmt = (
            select(VersionRow.series_id, VersionRow.id, VersionRow.version,
                   VersionRow.stage)
            .join(promoted, (promoted.c.series_id == VersionRow.series_id)
                  & (promoted.c.version == VersionRow.version))
            .order_by(promoted.c.seq.desc())
        )  # fmt: skip
        return [
            VersionFact(sid, row, version, Stage(stage), {})
            for sid, row, version, stage in self.session.execute(stmt)
        ]

    def apply(self, plan: ChunkPlan, *, actor: str, reason: str, at: datetime) -> None:
        """Make a chunk's stage changes and append each to the ledger: a statement
        of each kind per (from, to) move; the departures from Production first.

        No version is locked before: each update moves only versions still in
        the stage planned from, and ConcurrentChange (the caller rolls back and
        plans again) when another transaction moved any meanwhile. A series'
        own stage changes (`services.registry`) lock its versions first: they
        wait for this transaction, then plan from what it left.
        """
        if plan.starts:
            assert plan.canary is not None
            self._start_canaries(plan.starts, plan.canary, actor, reason, at)
        for moves in (plan.retire, plan.arrive):
            for (src, dst), rows in _by_move(moves):
                chosen = self._among(VersionRow.id, rows)
                stmt = (
                    update(VersionRow)
                    .where(chosen, VersionRow.stage == src.value)
                    .values(stage=dst.value)
                )
                moved = _updated(self.session, stmt)
                if moved != len(rows):
                    raise ConcurrentChange(
                        f"{len(rows) - moved} of {len(rows)} versions left {src} "
                        "meanwhile; plan the chunk again"
                    )
                self.session.execute(_ledger_lines(chosen, src, dst, actor, reason, at))

    def _start_canaries(
        self,
        starts: Sequence[Start],
        canary: CanaryStart,
        actor: str,
        reason: str,
        at: datetime,
    ) -> None:
        """Start the planned canaries, each with its ledger entry (which has
        inference read the series again), once their series' versions are
        held (as one series' rollout holds them: `ModelStore.lock_series`) and
        found as planned, without a rollout; else ConcurrentChange."""
        series = [s.candidate.series_id for s in starts]
        expected = {(s.candidate.row, Stage.STAGING.value) for s in starts} | {
            (s.production.row, Stage.PRODUCTION.value) for s in starts
        }
        found = self._held_stages(series)
        busy = RolloutStore(self.session).running_among(series)
        if busy or not expected <= found:
            raise ConcurrentChange(
                f"{len(busy)} of the chunk's series started a rollout, or some of "
                "its versions changed stage, meanwhile; plan the chunk again"
            )
        started = RolloutStore(self.session).add_many(
            [
                NewRollout(
                    s.candidate.series_id,
                    Strategy.CANARY.value,
                    s.candidate.version,
                    s.production.version,
                    canary.plan.initial,
                    canary.plan,
                    canary.gates,
                    "",
                    at + timedelta(seconds=canary.plan.interval_s),
                    actor,
                    reason,
                )  # fmt: skip
                for s in starts
            ],
            at=at,
        )
        what = f"canary started at {canary.plan.initial:g} %"
        notes = [
            {
                "series_id": r.series_id,
                "version": r.candidate,
                "from_stage": Stage.STAGING.value,
                "to_stage": Stage.STAGING.value,
                "actor": actor,
                "reason": f"rollout {r.id}: {what}"[:512],
                "at": at,
                "evidence": {"rollout_id": r.id, "percentage": r.percentage},
            }  # fmt: skip
            for r in started
        ]
        self.session.execute(insert(RegistryEventRow), notes)

    def _held_stages(self, series_ids: Sequence[str]) -> set[tuple[int, str]]:
        """(row, stage) of every version of `series_ids`, each held until the
        transaction ends (PostgreSQL: in (series, version) order, the order
        every locker of many series takes; SQLite has one writer anyway)."""
        stmt = (
            select(VersionRow.id, VersionRow.stage)
            .where(self._among(VersionRow.series_id, series_ids))
            .order_by(VersionRow.series_id, VersionRow.version)
        )
        if self.postgres:
            stmt = stmt.with_for_update()
        return {(row, stage) for row, stage in self.session.execute(stmt)}

    def _among(self, column: Any, values: Sequence[Any]) -> Any:
        """`column IN values`: one array on PostgreSQL (faster to send and plan
        than thousands of parameters)."""
        if not self.postgres:
            return column.in_(values)
        kind = String() if column.type.python_type is str else Integer()
        return column == any_(_array(values, kind))


def _array(values: Sequence[Any], kind: Any) -> Any:
    """`values` as one PostgreSQL array parameter."""
    return bindparam(None, list(values), type_=ARRAY(kind))


def _updated(session: Session, stmt: Any) -> int:
    """The rows an update or delete changed."""
    result = session.execute(stmt, execution_options=_NO_OPTIONS)
    return int(result.rowcount)  # type: ignore[attr-defined]


def _by_move(moves: Sequence[Move]) -> Iterator[tuple[tuple[Stage, Stage], list[int]]]:
    groups: defaultdict[tuple[Stage, Stage], list[int]] = defaultdict(list)
    for row, change in moves:
        assert change.from_stage is not None
        groups[change.from_stage, change.to_stage].append(row)
    return iter(groups.items())


def _ledger_lines(
    chosen: Any, src: Stage, dst: Stage, actor: str, reason: str, at: datetime
) -> Any:
    """An insert of one ledger entry per version `chosen`, moved `src` → `dst`."""
    lines = select(
        VersionRow.series_id,
        VersionRow.version,
        literal(src.value, String),
        literal(dst.value, String),
        literal(actor, String),
        literal(reason[:512], String),
        _moment(at),
    ).where(chosen)
    columns = [
        "series_id",
        "version",
        "from_stage",
        "to_stage",
        "actor",
        "reason",
        "at",
    ]
    return insert(RegistryEventRow).from_select(columns, lines)
