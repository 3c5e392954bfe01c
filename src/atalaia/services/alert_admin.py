"""Alert channels, rules and silences changed through the API: checked, written
with an audit-log entry, committed. What the API makes has source "api"; a
name the rules file owns is refused (`alert_config_source`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import AlertConfig, AuditLog
from atalaia.adapters.db.repositories.alerts import StoredChannel, StoredSilence
from atalaia.core.notifications import Channel
from atalaia.errors import InvalidInput
from atalaia.services.alert_config import RuleSpec, SilenceMatchers

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


def put_rule(*, session: Session, spec: RuleSpec, actor: str) -> None:
    """Create or replace a rule; every channel it names must exist
    (`alert_channel_unknown`)."""
    config = AlertConfig(session)
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


def delete_rule(*, session: Session, name: str, actor: str) -> None:
    AlertConfig(session).delete_rule(name, SOURCE)
    _audit(session, actor, "alert.rule_deleted", f"rule/{name}")


def add_silence(
    *,
    session: Session,
    starts_at: float,
    ends_at: float,
    author: str,
    reason: str,
    matchers: SilenceMatchers,
    at: float,
) -> StoredSilence:
    """A silence from `starts_at` to `ends_at`: after its start, not over at
    `at` (`silence_window`), at most MAX_SILENCE_S long (`silence_length`)."""
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
    silence = AlertConfig(session).add_silence(
        starts_at, ends_at, author, reason, matched
    )
    _audit(session, author, "alert.silence_added", f"silence/{silence.id}",
           starts_at=starts_at, ends_at=ends_at, reason=reason)  # fmt: skip
    return silence


def end_silence(
    *, session: Session, silence_id: int, actor: str, at: float
) -> StoredSilence:
    """End a silence at `at` (one not started yet ends as it starts)."""
    silence = AlertConfig(session).end_silence(silence_id, at)
    _audit(session, actor, "alert.silence_ended", f"silence/{silence_id}")
    return silence


def _audit(
    session: Session, actor: str, action: str, target: str, **detail: Any
) -> None:
    AuditLog(session).record(actor=actor, action=action, target=target, **detail)
    session.commit()
