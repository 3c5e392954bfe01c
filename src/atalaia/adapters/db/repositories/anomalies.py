"""The anomaly log: anomalies scored on ingest, for consumers to read in order.

Rows are appended in the transaction that stores their readings, so an
anomaly is logged exactly when its reading is stored (one per series and
timestamp: a reading sent again is not logged twice).

A consumer reads `after(cursor)` again and again, from the cursor the last
read gave, and misses nothing. On PostgreSQL rows sort by the id of the
transaction that wrote them, then by their own id, and a read returns only
the rows of transactions older than every transaction still running
(`pg_snapshot_xmin`): a row committed after a read always sorts after the
cursor it gave. The price: rows wait for every older transaction running on
the server to end, so a long one anywhere delays the consumer (never makes it
miss a row). On SQLite writers take turns, so ids follow commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from atalaia.adapters.db.tables import ScoredAnomalyRow, utcnow
from atalaia.core.serving import ScoredAnomaly
from atalaia.errors import InvalidInput

# The oldest transaction id still running: the rows of older ones are final.
_SETTLED = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


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
        insert = pg_insert if self.postgres else sqlite_insert
        self.session.execute(insert(ScoredAnomalyRow).on_conflict_do_nothing(), rows)

    def after(
        self, cursor: str | None, limit: int
    ) -> tuple[list[ScoredAnomaly], str | None]:
        """Up to `limit` anomalies logged after `cursor` (None: from the first),
        in order, and the cursor to read on from (the same when none)."""
        txid, last = _parse(cursor)
        row = ScoredAnomalyRow
        if self.postgres:
            stmt = (
                select(row)
                .where(tuple_(row.txid, row.id) > tuple_(txid, last))
                .where(row.txid < _SETTLED)
                .order_by(row.txid, row.id)
            )
        else:
            stmt = select(row).where(row.id > last).order_by(row.id)
        found = list(self.session.scalars(stmt.limit(limit)))
        if not found:
            return [], cursor
        end = found[-1]
        return [_anomaly(r) for r in found], f"{end.txid or 0}:{end.id}"


def _parse(cursor: str | None) -> tuple[int, int]:
    if cursor is None:
        return -1, 0
    try:
        txid, last = (int(part) for part in cursor.split(":"))
    except ValueError:
        raise InvalidInput(
            f"cursor {cursor!r} is not one this log gave", rule="cursor"
        ) from None
    return txid, last


def _row(anomaly: ScoredAnomaly) -> dict[str, object]:
    fields = asdict(anomaly)
    fields["ts"], fields["score"] = fields.pop("timestamp"), fields.pop("anomaly_score")
    return fields


def _anomaly(row: ScoredAnomalyRow) -> ScoredAnomaly:
    return ScoredAnomaly(
        row.series_id, row.ts, row.value, row.score, row.expected, row.lower,
        row.upper, row.direction, row.reason, row.version, row.algorithm, row.stale,
    )  # fmt: skip
