"""Sign-ins in the audit log: a token's first use, and failed ones (bounded).

A token is named by its fingerprint, never by itself: the SHA-256 of its `jti`
claim when it has one, else of the token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from atalaia.adapters.db.repositories import AuditEntry
from atalaia.api.common.auth import Principal
from atalaia.logging import CLIENT_ADDRESS, REQUEST_ID

SIGN_IN = "auth.sign_in"
SIGN_IN_FAILED = "auth.sign_in_failed"
WINDOW_S = 60.0


def fingerprint(token: str, claims: Mapping[str, object]) -> str:
    jti = claims.get("jti")
    named = jti if isinstance(jti, str) and jti else token
    return hashlib.sha256(named.encode()).hexdigest()


def expiry(claims: Mapping[str, object]) -> str | None:
    """The `exp` claim in ISO 8601 (None: absent)."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return None
    return datetime.fromtimestamp(exp, UTC).isoformat()


def sign_in(
    token: str, principal: Principal, claims: Mapping[str, object]
) -> tuple[AuditEntry, str]:
    """A token's sign-in entry, made by the request being served, and the key
    that makes it the token's only one."""
    print_ = fingerprint(token, claims)
    entry = AuditEntry(
        actor=principal.subject[:128],
        action=SIGN_IN,
        target=principal.subject[:256],
        detail={
            "role": principal.role.label,
            "issuer": str(claims.get("iss", "")),
            "fingerprint": print_,
            "expires_at": expiry(claims),
        },
        address=CLIENT_ADDRESS.get(),
        request_id=REQUEST_ID.get(),
    )
    return entry, f"{SIGN_IN}:{print_}"


class FailureBudget:
    """At most `per_min` failed sign-ins recorded a minute (in this process):
    a flood of bad tokens cannot fill the table. The next one recorded says how
    many were left out since the last (`unrecorded_before`)."""

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self._window_start = float("-inf")
        self._used = 0
        self._left_out = 0

    def take(self, now: float) -> int | None:
        """None: leave this one out; else how many were left out before it."""
        if now - self._window_start >= WINDOW_S:
            self._window_start, self._used = now, 0
        if self._used >= self.per_min:
            self._left_out += 1
            return None
        self._used += 1
        left_out, self._left_out = self._left_out, 0
        return left_out
