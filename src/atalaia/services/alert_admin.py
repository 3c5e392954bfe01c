"""Alert channels, rules and silences changed through the API: checked, written
with an audit-log entry, committed. What the API makes has source "api"; a
name the rules file owns is refused (`alert_config_source`).

A caller limited to sensor groups (`scope`) sees and changes only the rules
and silences its groups confine: one of their prefixes (a rule's series
prefix; a silence's series prefix, sensor or sensor group) lies under a group
pattern ending in `*`. Making a wider one is refused (`series_access`);
deleting or ending one is answered as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AlertConfig, AuditLog
from atalaia.adapters.db.repositories.alerts import (
    NotFoundByName,
    StoredChannel,
    StoredRule,
    StoredSilence,
)
from atalaia.core.access import SERIES_ACCESS, SeriesScope
from atalaia.core.notifications import Channel
from atalaia.errors import InvalidInput, PermissionDenied
from atalaia.services.alert_config import RuleSpec, SilenceMatchers, silence_of

SOURCE = "api"
MAX_SILENCE_S = 30 * 86_400.0


def put_channel(
    *, session: Session, channel: Channel, rate_per_min: int, actor: str
) -> StoredChannel:
    """Create or replace a channel."""
    AlertConfig(session).put_channel(channel, rate_per_min, SOURCE)
    _audit(session, actor, "alert.channel_put", f"channel/{channel.name}",
           type=channel.type, rate_per_min=rate_per_min)  # fmt: skip
    return StoredChannel(channel, rate_per_min, SOURCE)


def delete_channel(*, session: Session, name: str, actor: str) -> None:
    """Delete a channel no rule names (`channel_in_use` otherwise)."""
    AlertConfig(session).delete_channel(name, SOURCE)
    _audit(session, actor, "alert.channel_deleted", f"channel/{name}")


def rules(*, session: Session, scope: SeriesScope | None) -> list[StoredRule]:
    """Every rule `scope` confines (None: every rule), by name."""
    return [r for r in AlertConfig(session).rules() if _rule_within(scope, r)]


def put_rule(
    *, session: Session, spec: RuleSpec, actor: str, scope: SeriesScope | None
) -> None:
    """Create or replace a rule; every channel it names must exist
    (`alert_channel_unknown`); it and the rule it replaces within `scope`."""
    config = AlertConfig(session)
    _require_within(scope, spec.rule().prefixes, f"rule {spec.name!r}")
    replaced = config.rule(spec.name)
    if replaced is not None and not _rule_within(scope, replaced):
        raise _outside(scope, f"the rule {spec.name!r} it replaces")
    known = {stored.channel.name for stored in config.channels()}
    unknown = sorted((set(spec.channels) | set(spec.escalate_to)) - known)
    if unknown:
        raise InvalidInput(
            f"rule {spec.name!r} names no channel {', '.join(unknown)}; "
            "create it first (PUT /alerts/channels/{name})",
            rule="alert_channel_unknown",
        )
    config.put_rule(spec.name, spec.model_dump(mode="json"), SOURCE)
    _audit(session, actor, "alert.rule_put", f"rule/{spec.name}")


def delete_rule(
    *, session: Session, name: str, actor: str, scope: SeriesScope | None
) -> None:
    """Delete a rule (one outside `scope`: NotFoundByName)."""
    config = AlertConfig(session)
    found = config.rule(name)
    if found is not None and not _rule_within(scope, found):
        raise NotFoundByName(f"no rule {name!r}")
    config.delete_rule(name, SOURCE)
    _audit(session, actor, "alert.rule_deleted", f"rule/{name}")


def silences(
    *, session: Session, scope: SeriesScope | None, active_at: float | None = None
) -> list[StoredSilence]:
    """Silences `scope` confines (None: every one), newest first; or those
    not yet over at `active_at`."""
    found = AlertConfig(session).silences(active_at=active_at)
    return [s for s in found if _silence_within(scope, s)]


def add_silence(
    *,
    session: Session,
    starts_at: float,
    ends_at: float,
    author: str,
    reason: str,
    matchers: SilenceMatchers,
    at: float,
    scope: SeriesScope | None,
) -> StoredSilence:
    """A silence from `starts_at` to `ends_at`: after its start, not over at
    `at` (`silence_window`), at most MAX_SILENCE_S long (`silence_length`),
    within `scope` (`series_access`)."""
    if ends_at <= max(starts_at, at):
        raise InvalidInput(
            f"a silence ends after it starts and after now; it would end at "
            f"{ends_at:.0f}, start at {starts_at:.0f} (now {at:.0f})",
            rule="silence_window",
        )
    if ends_at - starts_at > MAX_SILENCE_S:
        raise InvalidInput(
            f"a silence lasts at most {MAX_SILENCE_S / 86_400:.0f} days; this "
            f"one would last {(ends_at - starts_at) / 86_400:.1f}",
            rule="silence_length",
        )
    matched = matchers.model_dump(mode="json", exclude_defaults=True)
    made = silence_of(0, starts_at, ends_at, author, reason, matched)
    _require_within(scope, made.prefixes, "the silence")
    silence = AlertConfig(session).add_silence(
        starts_at, ends_at, author, reason, matched
    )
    _audit(session, author, "alert.silence_added", f"silence/{silence.id}",
           starts_at=starts_at, ends_at=ends_at, reason=reason)  # fmt: skip
    return silence


def end_silence(
    *,
    session: Session,
    silence_id: int,
    actor: str,
    at: float,
    scope: SeriesScope | None,
) -> StoredSilence:
    """End a silence at `at` (one not started yet ends as it starts; one
    outside `scope`: NotFoundByName)."""
    config = AlertConfig(session)
    if not _silence_within(scope, config.silence(silence_id)):
        raise NotFoundByName(f"no silence {silence_id}")
    silence = config.end_silence(silence_id, at)
    _audit(session, actor, "alert.silence_ended", f"silence/{silence_id}")
    return silence


def _audit(
    session: Session, actor: str, action: str, target: str, **detail: Any
) -> None:
    AuditLog(session).record(actor=actor, action=action, target=target, **detail)
    session.commit()


def _rule_within(scope: SeriesScope | None, stored: StoredRule) -> bool:
    if scope is None:  # no rule to parse
        return True
    spec = RuleSpec.model_validate({**stored.spec, "name": stored.name})
    return _within(scope, spec.rule().prefixes)


def _silence_within(scope: SeriesScope | None, s: StoredSilence) -> bool:
    if scope is None:  # no silence to build
        return True
    silence = silence_of(s.id, s.starts_at, s.ends_at, s.author, s.reason, s.matchers)
    return _within(scope, silence.prefixes)


def _within(scope: SeriesScope | None, prefixes: Iterable[str]) -> bool:
    return scope is None or any(scope.confines(p) for p in prefixes)


def _require_within(
    scope: SeriesScope | None, prefixes: Iterable[str], what: str
) -> None:
    """Refuse (`series_access`) what `scope` does not confine."""
    if not _within(scope, prefixes):
        raise _outside(scope, what)


def _outside(scope: SeriesScope | None, what: str) -> PermissionDenied:
    """The refusal of what could match series outside `scope`."""
    assert scope is not None  # every series is within no scope
    open_ended = [p for p in scope.patterns if p.endswith("*")]
    return PermissionDenied(
        f"{what} could match series outside the token's sensor groups "
        f"({', '.join(sorted(scope.groups)) or 'none'}): give a series_prefix "
        "(a silence: or a sensor_id or sensor_group) that one of their "
        f"patterns ending in * matches ({', '.join(open_ended) or 'none'})",
        rule=SERIES_ACCESS,
    )
