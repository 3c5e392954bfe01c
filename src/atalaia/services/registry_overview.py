"""The registry at a glance: what is in production, what waits, what changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ModelStore
from atalaia.adapters.db.repositories.models import LedgerEntry, StagingCandidate
from atalaia.core.registry import Stage

WAITING = 20  # staging versions shown
CHANGES = 50  # ledger entries shown


class ChangeKind(StrEnum):
    """What a ledger entry records, from the move it made."""

    REGISTRATION = "registration"  # a trained version arrives in Staging
    PROMOTION = "promotion"  # Staging → Production
    ROLLBACK = "rollback"  # Archived → Production
    RETIREMENT = "retirement"  # out of Production (or Staging), by either
    ROLLOUT = "rollout"  # a canary's, shadow's or A/B test's decision: no move


MOVES: dict[ChangeKind, tuple[Stage, Stage]] = {
    ChangeKind.PROMOTION: (Stage.STAGING, Stage.PRODUCTION),
    ChangeKind.ROLLBACK: (Stage.ARCHIVED, Stage.PRODUCTION),
}


def kind_of(entry: LedgerEntry) -> ChangeKind:
    """The kind of move `entry` made.

    A rollback to a version sent back to Staging (promoted over with
    `archive_existing` false) moves Staging → Production: it reads as a promotion.
    """
    if entry.from_stage is None:
        return ChangeKind.REGISTRATION
    if entry.from_stage is entry.to_stage:
        return ChangeKind.ROLLOUT
    for kind, move in MOVES.items():
        if (entry.from_stage, entry.to_stage) == move:
            return kind
    return ChangeKind.RETIREMENT


@dataclass(frozen=True, slots=True)
class Overview:
    production_by_algorithm: dict[str, int]
    stages: dict[Stage, int]
    staging_waiting: list[StagingCandidate]
    recent_changes: list[LedgerEntry]


def overview(*, session: Session, kinds: Sequence[ChangeKind] = ()) -> Overview:
    """Production versions by algorithm, versions by stage, the WAITING newest
    Staging versions newer than their series' Production one, the CHANGES newest
    ledger entries (of `kinds` only, MOVES' promotions or rollbacks, when given):
    three queries, each answered from an index."""
    models = ModelStore(session)
    counts = models.stage_algorithm_counts()
    production: dict[str, int] = {}
    stages = dict.fromkeys(Stage, 0)
    for (stage, algorithm), n in sorted(counts.items()):
        stages[stage] += n
        if stage is Stage.PRODUCTION:
            production[algorithm] = n
    moves = [MOVES[kind] for kind in dict.fromkeys(kinds)]
    return Overview(
        production_by_algorithm=production,
        stages=stages,
        staging_waiting=models.staging_candidates(limit=WAITING),
        recent_changes=models.recent_changes(limit=CHANGES, moves=moves),
    )
