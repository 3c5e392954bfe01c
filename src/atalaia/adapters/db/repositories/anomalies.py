"""The anomaly log: anomalies scored on ingest, for consumers to read in order.

Rows are appended in the transaction that stores their readings, so an
anomaly is logged exactly when its reading is stored (one per series and
timestamp: a reading sent again is not logged twice).

A consumer reads `after(cursor)` again and again, from the cursor the last
read gave, and misses nothing: ids are given in the order their rows commit.
On PostgreSQL a writer takes a transaction-scoped advisory lock before it
appends, so writers append and commit one after the other (the append is the
last step of an ingest: the lock is held for the insert and the commit only);
a row committed after a read always has a larger id than the read saw. On
SQLite writers take turns anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import ScoredAnomalyRow, utcnow
from atalaia.core.serving import ScoredAnomaly
from atalaia.errors import InvalidInput

# Held by the transaction appending to the log until it ends (a constant key:
# "atalaia_anomalies" as a number).
_APPEND_TURN = text("SELECT pg_advisory_xact_lock(7306228153918)")


class AnomalyLog:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def append(self, anomalies: Sequence[ScoredAnomaly]) -> None:
        """Log these anomalies; one already logged for its series and
        timestamp is left as it is."""
        if not anomalies:
            return
        now = utcnow()
        rows = [_row(a) | {"scored_at": now} for a in anomalies]
        if self.postgres:
            self.session.execute(_APPEND_TURN)
        insert = pg_insert if self.postgres else sqlite_insert
        self.session.execute(insert(ScoredAnomalyRow).on_conflict_do_nothing(), rows)

    def after(
        self, cursor: str | None, limit: int
    ) -> tuple[list[ScoredAnomaly], str | None]:
        """Up to `limit` anomalies logged after `cursor` (None: from the first),
        in order, and the cursor to read on from (the same when none)."""
        stmt = (
            select(ScoredAnomalyRow)
            .where(ScoredAnomalyRow.id > _parse(cursor))
            .order_by(ScoredAnomalyRow.id)
            .limit(limit)
        )
        found = list(self.session.scalars(stmt))
        if not found:
            return [], cursor
        return [_anomaly(r) for r in found], str(found[-1].id)


def _parse(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isdigit() and int(cursor) < 2**63):
        raise InvalidInput(f"cursor {cursor!r} is not one this log gave", rule="cursor")
    return int(cursor)


def _row(anomaly: ScoredAnomaly) -> dict[str, object]:
    fields = asdict(anomaly)
    fields["ts"], fields["score"] = fields.pop("timestamp"), fields.pop("anomaly_score")
    return fields


def _anomaly(row: ScoredAnomalyRow) -> ScoredAnomaly:
    return ScoredAnomaly(
        row.series_id, row.ts, row.value, row.score, row.expected, row.lower,
        row.upper, row.direction, row.reason, row.version, row.algorithm, row.stale,
    )  # fmt: skip
