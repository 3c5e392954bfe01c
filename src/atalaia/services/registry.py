"""Registry use cases: promote, roll back, describe the deployment of a series."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.cache import ModelCache, RedisLink, publish_notice
from atalaia.adapters.db.conflicts import conflicts_translated, lost_race
from atalaia.adapters.db.repositories import AuditLog, ModelStore
from atalaia.core.registry import (
    RegistryNotice,
    Stage,
    StageChange,
    Strategy,
    plan_direct_promotion,
    plan_rollback,
)
from atalaia.errors import ConcurrentChange, DependencyUnavailable, NotImplementedYet
from atalaia.services import platform_events

log = structlog.get_logger()

# Tries of a stage change that conflicts with concurrent transactions.
ATTEMPTS = 3

T = TypeVar("T")


def promote_version(
    *,
    session: Session,
    series_id: str,
    version: int,
    strategy: Strategy,
    archive_existing: bool,
    actor: str,
    reason: str = "",
) -> list[StageChange]:
    """Promote a Staging version and commit; returns the stage changes made."""
    if strategy is not Strategy.DIRECT:
        raise NotImplementedYet(
            f"the {strategy} strategy is not served yet; use strategy 'direct'"
        )

    def attempt() -> list[StageChange]:
        models = ModelStore(session)
        models.lock_series(series_id)
        changes = plan_direct_promotion(
            models.get(series_id, version),
            models.production(series_id),
            archive_existing=archive_existing,
        )
        _apply(session, changes, actor=actor, action="model.promoted", reason=reason)
        return changes

    return committed(session, attempt, what=f"promotion of {series_id} v{version}")


def rollback(
    *, session: Session, series_id: str, actor: str, reason: str = ""
) -> list[StageChange]:
    """Put the previous Production version back and commit."""

    def attempt() -> list[StageChange]:
        models = ModelStore(session)
        models.lock_series(series_id)
        changes = plan_rollback(
            models.production(series_id), models.past_production(series_id)
        )
        _apply(session, changes, actor=actor, action="model.rolled_back", reason=reason)
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


def _apply(
    session: Session,
    changes: list[StageChange],
    *,
    actor: str,
    action: str,
    reason: str,
) -> None:
    ModelStore(session).apply(changes, actor=actor, reason=reason or action)
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


def deployment_config(*, session: Session, series_id: str) -> dict[str, Any]:
    """What serves the series now, and how it got there."""
    models = ModelStore(session)
    production = models.production(series_id)
    staging = [
        v.version for v in models.versions(series_id) if v.stage is Stage.STAGING
    ]
    return {
        "series_id": series_id,
        "strategy": Strategy.DIRECT.value,
        "production_version": production.version if production else None,
        "production_algorithm": production.algorithm if production else None,
        "staging_versions": staging,
        "canary": None,
        "shadow": None,
        "history": [
            {
                "version": e.version,
                "from_stage": e.from_stage,
                "to_stage": e.to_stage,
                "actor": e.actor,
                "reason": e.reason,
                "at": e.at.isoformat(),
            }
            for e in models.ledger(series_id)[-20:]
        ],
    }
