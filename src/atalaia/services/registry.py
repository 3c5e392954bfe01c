"""Registry use cases: promote, roll back, describe the deployment of a series."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.cache import ModelCache, RedisLink, publish_notice
from atalaia.adapters.db.conflicts import conflicts_translated, lost_race
from atalaia.adapters.db.repositories import AuditLog, ModelStore, RolloutStore
from atalaia.core.registry import (
    RegistryNotice,
    StageChange,
    plan_direct_promotion,
    plan_rollback,
)
from atalaia.errors import (
    ConcurrentChange,
    DependencyUnavailable,
    NothingToRollBack,
    RolloutConflict,
)
from atalaia.services import platform_events

log = structlog.get_logger()

T = TypeVar("T")

# Tries of a stage change that conflicts with concurrent transactions.
ATTEMPTS = 3


def promote_version(
    *,
    session: Session,
    series_id: str,
    version: int,
    archive_existing: bool,
    actor: str,
    reason: str = "",
) -> list[StageChange]:
    """Promote a Staging version directly and commit; returns the stage changes
    made. RolloutConflict while a rollout of the series runs."""

    def attempt() -> list[StageChange]:
        models = ModelStore(session)
        models.lock_series(series_id)
        running = RolloutStore(session).running(series_id)
        if running is not None:
            raise RolloutConflict(
                f"{series_id} has a {running.strategy} of v{running.candidate} "
                f"running (rollout {running.id}): end it before promoting directly",
                rule="one_rollout_per_series",
            )
        changes = plan_direct_promotion(
            models.get(series_id, version),
            models.production(series_id),
            archive_existing=archive_existing,
        )
        apply_changes(
            session, changes, actor=actor, action="model.promoted", reason=reason
        )
        return changes

    return committed(session, attempt, what=f"promotion of {series_id} v{version}")


def rollback(
    *,
    session: Session,
    series_id: str,
    actor: str,
    reason: str = "",
    version: int | None = None,
    evidence: dict[str, float] | None = None,
) -> list[StageChange]:
    """Put the previous Production version back and commit (only from
    `version`, when given: NothingToRollBack if another serves by then)."""

    def attempt() -> list[StageChange]:
        models = ModelStore(session)
        models.lock_series(series_id)
        current = models.production(series_id)
        if version is not None and (current is None or current.version != version):
            raise NothingToRollBack(
                f"{series_id} v{version} no longer serves: nothing to roll back"
            )
        changes = plan_rollback(current, models.past_production(series_id))
        apply_changes(
            session, changes, actor=actor, action="model.rolled_back",
            reason=reason, evidence=evidence,
        )  # fmt: skip
        return changes

    return committed(session, attempt, what=f"rollback of {series_id}")


def committed(session: Session, attempt: Callable[[], T], *, what: str) -> T:
    """Run `attempt` and commit, again after it lost a race with a concurrent
    transaction, up to ATTEMPTS times; the last lost race raises ConcurrentChange.

    Stage changes lock the series first, so conflicts are rare: a retry covers
    those the locks do not order (another writer of the same rows).
    """
    for _ in range(ATTEMPTS - 1):
        try:
            return _commit(session, attempt, what)
        except ConcurrentChange as exc:
            if not lost_race(exc):
                raise
            session.rollback()
            log.warning("registry.conflict_retried", what=what)
    return _commit(session, attempt, what)


def _commit(session: Session, attempt: Callable[[], T], what: str) -> T:
    with conflicts_translated(what):
        outcome = attempt()
        session.commit()
    return outcome


def apply_changes(
    session: Session,
    changes: list[StageChange],
    *,
    actor: str,
    action: str,
    reason: str,
    evidence: dict[str, float] | None = None,
) -> None:
    """Move the versions, in the ledger (with the figures the move was decided
    on, if any), the lifecycle events and the audit log; not committed."""
    ModelStore(session).apply(
        changes, actor=actor, reason=reason or action, evidence=evidence
    )
    platform_events.stage_changed(session, action, changes, actor, reason)
    target = changes[-1]
    AuditLog(session).record(
        actor=actor,
        action=action,
        target=f"{target.series_id}/v{target.version}",
        reason=reason,
        changes=[
            {"version": c.version, "from": c.from_stage, "to": c.to_stage}
            for c in changes
        ],
        evidence=evidence,
    )


def announce_change(
    *,
    session: Session,
    redis: RedisLink | None,
    ttl_s: int,
    changes: list[StageChange],
    event: str,
) -> None:
    """After the commit of `changes`: write the series' served model to the shared
    cache, then tell every inference replica (a notice on Redis pub/sub).

    Best effort: without Redis the replicas see the change through the
    database's change feed instead.
    """
    if redis is None:
        return
    last = changes[-1]
    cache = ModelCache(redis, ttl_s=ttl_s)
    try:
        served = ModelStore(session).served_models([last.series_id])
    except DependencyUnavailable as exc:  # replicas will read the database themselves
        log.warning("registry.cache_not_written", error=exc.origin)
        cache.forget([last.series_id])
    else:
        cache.put_many(served, overwrite=True)
        if not served:
            cache.forget([last.series_id])
    notice = RegistryNotice(last.series_id, last.version, last.to_stage.value, event)
    publish_notice(redis, notice)
