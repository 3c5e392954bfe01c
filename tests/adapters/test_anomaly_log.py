"""The anomaly log on SQLite and PostgreSQL: appended once per reading, read in
order, nothing skipped by a reader while a writer is still running."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import AnomalyLog
from atalaia.core.serving import ScoredAnomaly
from atalaia.errors import InvalidInput
from fixtures.db import truncate_tables

Sessions = sessionmaker[Session]


def anomaly(series_id: str, timestamp: float) -> ScoredAnomaly:
    return ScoredAnomaly(
        series_id, timestamp, 9.0, 3.0, 0.0, -1.0, 1.0, "above", "outside_band",
        2, "zscore", False,
    )  # fmt: skip


def logged(sessions: Sessions, *anomalies: ScoredAnomaly) -> None:
    with sessions() as session:
        AnomalyLog(session).append(anomalies)
        session.commit()


def read_all(
    sessions: Sessions, cursor: str | None = None
) -> tuple[list[str], str | None]:
    """Every anomaly logged after `cursor`, two a read: "series@t" each."""
    seen: list[str] = []
    with sessions() as session:
        while True:
            page, cursor = AnomalyLog(session).after(cursor, limit=2)
            if not page:
                return seen, cursor
            seen += [f"{a.series_id}@{a.timestamp:g}" for a in page]


def test_read_in_order_once_each(sessions: Sessions) -> None:
    logged(sessions, anomaly("a", 1), anomaly("b", 1), anomaly("a", 2))
    logged(sessions, anomaly("a", 2), anomaly("a", 3))  # a@2 sent again

    everything, cursor = read_all(sessions)
    logged(sessions, anomaly("c", 1))
    rest, _ = read_all(sessions, cursor)

    assert everything == ["a@1", "b@1", "a@2", "a@3"]
    assert rest == ["c@1"]
    with sessions() as session:
        [first], _ = AnomalyLog(session).after(None, limit=1)
    assert first == anomaly("a", 1)


def test_a_cursor_the_log_never_gave_is_refused(sessions: Sessions) -> None:
    with sessions() as session, pytest.raises(InvalidInput) as refused:
        AnomalyLog(session).after("yesterday", limit=10)
    with sessions() as session, pytest.raises(InvalidInput):
        AnomalyLog(session).after("9" * 30, limit=10)
    assert refused.value.rule == "cursor"


def test_writers_commit_in_the_order_of_their_ids(postgres_database: str) -> None:
    """PostgreSQL: a second writer waits for the first to end, so a reader
    never sees a later id before an earlier one commits (SQLite's writers take
    turns anyway)."""
    truncate_tables(postgres_database)
    engine = create_engine(postgres_database)
    sessions = sessionmaker(engine)
    first = sessions()
    AnomalyLog(first).append([anomaly("first", 1)])  # not committed yet
    second = threading.Thread(target=logged, args=(sessions, anomaly("second", 1)))
    second.start()
    second.join(timeout=1.0)

    while_open, cursor = read_all(sessions)
    waited = second.is_alive()
    first.commit()
    first.close()
    second.join(timeout=10.0)
    after_commit, _ = read_all(sessions, cursor)
    engine.dispose()

    assert (while_open, waited) == ([], True)
    assert after_commit == ["first@1", "second@1"]
