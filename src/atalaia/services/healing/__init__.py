"""Self-healing (monitor → diagnose → act): rules over the platform's own
signals, run by the scheduler; every decision recorded (`healing_actions`, the
audit log) and counted (`healing_decisions_total`). See `engine`."""

from atalaia.services.healing.act import Submitted
from atalaia.services.healing.engine import (
    Healer,
    HealingMetrics,
    HealingReport,
    Run,
)
from atalaia.services.healing.policies import (
    HealingRuleNotFound,
    RuleState,
    change_rule,
    rule_states,
)
from atalaia.services.healing.rules import RULES, build_rules

__all__ = [
    "RULES",
    "Healer",
    "HealingMetrics",
    "HealingReport",
    "HealingRuleNotFound",
    "Run",
    "RuleState",
    "Submitted",
    "build_rules",
    "change_rule",
    "rule_states",
]
