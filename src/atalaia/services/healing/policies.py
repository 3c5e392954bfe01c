"""Each rule's policy: its settings (`healing_<rule>_enabled`, `_dry_run`,
`_max_per_hour`), unless an admin set one at run time (stored, audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AuditLog, HealingRules
from atalaia.core.healing import Policy, Rule
from atalaia.errors import NotFound
from atalaia.services.healing.rules import build_rules
from atalaia.settings import Settings


class HealingRuleNotFound(NotFound):
    """No healing rule of that name."""


@dataclass(frozen=True, slots=True)
class RuleState:
    """A rule, its policy in force, and who set it (None: the settings)."""

    rule: Rule
    policy: Policy
    updated_by: str | None = None
    updated_at: datetime | None = None


def settings_policy(settings: Settings, rule: str) -> Policy:
    """The policy the settings give `rule` (a rule without settings: the default)."""
    default = Policy()

    def setting(name: str, fallback: Any) -> Any:
        return getattr(settings, f"healing_{rule}_{name}", fallback)

    return Policy(
        enabled=bool(setting("enabled", default.enabled)),
        dry_run=bool(setting("dry_run", default.dry_run)),
        max_actions_per_hour=int(setting("max_per_hour", default.max_actions_per_hour)),
    )


def rule_states(session: Session, settings: Settings) -> list[RuleState]:
    """Every rule with the policy in force."""
    stored = HealingRules(session).stored()
    states = []
    for rule in build_rules(settings):
        if (kept := stored.get(rule.name)) is not None:
            state = RuleState(rule, kept.policy, kept.updated_by, kept.updated_at)
            states.append(state)
        else:
            states.append(RuleState(rule, settings_policy(settings, rule.name)))
    return states


def policies(session: Session, settings: Settings) -> dict[str, Policy]:
    return {s.rule.name: s.policy for s in rule_states(session, settings)}


def change_rule(
    *,
    session: Session,
    settings: Settings,
    name: str,
    enabled: bool | None,
    dry_run: bool | None,
    max_actions_per_hour: int | None,
    actor: str,
) -> RuleState:
    """Set what is given of rule `name`'s policy (the rest as in force); audited.
    HealingRuleNotFound for a rule that does not exist."""
    states = {s.rule.name: s for s in rule_states(session, settings)}
    if name not in states:
        raise HealingRuleNotFound(
            f"no healing rule {name!r}; rules: {', '.join(sorted(states))}"
        )
    before = states[name].policy
    policy = Policy(
        before.enabled if enabled is None else enabled,
        before.dry_run if dry_run is None else dry_run,
        before.max_actions_per_hour
        if max_actions_per_hour is None
        else max_actions_per_hour,
    )
    HealingRules(session).put(name, policy, actor=actor)
    AuditLog(session).record(
        actor=actor, action="healing.rule_changed", target=name,
        before=_fields(before), after=_fields(policy),
    )  # fmt: skip
    session.commit()
    return next(s for s in rule_states(session, settings) if s.rule.name == name)


def _fields(policy: Policy) -> dict[str, object]:
    return {
        "enabled": policy.enabled,
        "dry_run": policy.dry_run,
        "max_actions_per_hour": policy.max_actions_per_hour,
    }
