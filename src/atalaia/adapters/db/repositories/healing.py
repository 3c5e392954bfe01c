"""The self-healing engine's decisions (`healing_actions`) and the policies an
admin set for its rules (`healing_rules`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories.incidents import parse_cursor
from atalaia.adapters.db.tables import HealingActionRow, HealingRuleRow, utcnow
from atalaia.core.healing import ACTED, Earlier, Outcome, Policy, Verdict

CHUNK = 1_000  # targets per statement


@dataclass(frozen=True, slots=True)
class HealingAction:
    """A recorded decision."""

    id: int
    at: datetime
    rule: str
    action: str
    target: str
    outcome: Outcome
    reason: str
    evidence: dict[str, Any]
    episode: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class ActionFilter:
    rule: str | None = None
    outcome: Outcome | None = None
    target: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    policy: Policy
    updated_by: str
    updated_at: datetime


class HealingLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self, verdicts: Sequence[Verdict], *, at: datetime, request_id: str | None
    ) -> None:
        """Write each verdict as a decision taken at `at`."""
        if verdicts:
            self.session.add_all(_row(v, at, request_id) for v in verdicts)

    def taken(self, rule: str, *, since: datetime) -> int:
        """How many of `rule`'s decisions since `since` took an action (or
        would have, in a dry run)."""
        row = HealingActionRow
        stmt = select(func.count()).where(
            row.rule == rule, row.at >= since, row.outcome.in_(sorted(ACTED))
        )
        return int(self.session.scalar(stmt) or 0)

    def earlier(
        self, rule: str, targets: Iterable[str]
    ) -> dict[tuple[str, str], Earlier]:
        """The last decision of `rule` on each of `targets`, by (action, target)."""
        found: dict[tuple[str, str], Earlier] = {}
        for row in self.latest(rule, targets):
            found[row.action, row.target] = Earlier(
                row.outcome, row.at.timestamp(), row.episode
            )
        return found

    def latest(
        self, rule: str, targets: Iterable[str] | None = None, *,
        since: datetime | None = None,
    ) -> list[HealingAction]:  # fmt: skip
        """The last decision of `rule` per (action, target), on `targets`
        (None: every target decided on since `since`)."""
        row = HealingActionRow
        found: list[HealingAction] = []
        for where in _target_conditions(targets):
            newest = select(func.max(row.id)).where(row.rule == rule, *where)
            if since is not None:
                newest = newest.where(row.at >= since)
            stmt = select(row).where(
                row.id.in_(newest.group_by(row.action, row.target))
            )
            found += [_action(r) for r in self.session.scalars(stmt)]
        return found

    def page(
        self, where: ActionFilter, after: str | None, limit: int
    ) -> tuple[list[HealingAction], str | None]:
        """Decisions matching `where`, newest first, after cursor `after`; the
        cursor of the next page (None: no more)."""
        row = HealingActionRow
        stmt = select(row).where(*_conditions(where))
        if after is not None:
            stmt = stmt.where(row.id < parse_cursor(after))
        rows = list(self.session.scalars(stmt.order_by(row.id.desc()).limit(limit)))
        cursor = str(rows[-1].id) if len(rows) == limit else None
        return [_action(r) for r in rows], cursor


class HealingRules:
    """The policies set at run time, by rule name (over the settings')."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def stored(self) -> dict[str, StoredPolicy]:
        return {
            r.rule: StoredPolicy(
                Policy(r.enabled, r.dry_run, r.max_actions_per_hour),
                r.updated_by,
                r.updated_at,
            )
            for r in self.session.scalars(select(HealingRuleRow))
        }

    def put(self, rule: str, policy: Policy, *, actor: str) -> None:
        row = self.session.get(HealingRuleRow, rule) or HealingRuleRow(rule=rule)
        row.enabled, row.dry_run = policy.enabled, policy.dry_run
        row.max_actions_per_hour = policy.max_actions_per_hour
        row.updated_by, row.updated_at = actor, utcnow()
        self.session.add(row)


def _row(verdict: Verdict, at: datetime, request_id: str | None) -> HealingActionRow:
    d = verdict.decision
    reason = d.reason if not verdict.note else f"{d.reason} [{verdict.note}]"
    return HealingActionRow(
        at=at, rule=d.rule, action=d.action, target=d.target[:256],
        outcome=verdict.outcome.value, reason=reason[:1000],
        evidence=dict(d.evidence), episode=d.episode[:128], request_id=request_id,
    )  # fmt: skip


def _action(row: HealingActionRow) -> HealingAction:
    return HealingAction(
        row.id, row.at, row.rule, row.action, row.target, Outcome(row.outcome),
        row.reason, dict(row.evidence), row.episode, row.request_id,
    )  # fmt: skip


def _target_conditions(
    targets: Iterable[str] | None,
) -> Iterator[list[ColumnElement[bool]]]:
    if targets is None:
        yield []
        return
    listed = sorted(set(targets))
    for start in range(0, len(listed), CHUNK):
        yield [HealingActionRow.target.in_(listed[start : start + CHUNK])]


def _conditions(where: ActionFilter) -> list[ColumnElement[bool]]:
    row = HealingActionRow
    conditions: list[ColumnElement[bool]] = []
    if where.rule is not None:
        conditions.append(row.rule == where.rule)
    if where.outcome is not None:
        conditions.append(row.outcome == where.outcome.value)
    if where.target is not None:
        conditions.append(row.target == where.target)
    if where.since is not None:
        conditions.append(row.at >= where.since)
    return conditions
