"""TrainingClaims on SQLite and PostgreSQL: the per-series training interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import TrainingClaims

SERIES = "sensor_001_radial"
T0 = datetime(2024, 12, 1, 8, 0, tzinfo=UTC)
INTERVAL_S = 300
Sessions = sessionmaker[Session]


def claim(sessions: Sessions, jobs: dict[str, str], at: datetime) -> set[str]:
    with sessions() as session:
        won = TrainingClaims(session).claim(jobs, at=at, interval_s=INTERVAL_S)
        session.commit()
    return won


def test_a_series_is_claimed_again_only_after_the_interval(sessions: Sessions) -> None:
    first = claim(sessions, {SERIES: "job-1", "pump7": "job-2"}, T0)
    too_soon = claim(sessions, {SERIES: "job-3"}, T0 + timedelta(seconds=299))
    later = claim(sessions, {SERIES: "job-4"}, T0 + timedelta(seconds=300))

    assert (first, too_soon, later) == ({SERIES, "pump7"}, set(), {SERIES})
    with sessions() as session:
        last = TrainingClaims(session).last([SERIES, "pump7", "idle"])
    assert last == {SERIES: T0 + timedelta(seconds=300), "pump7": T0}


def test_a_rolled_back_claim_claims_nothing(sessions: Sessions) -> None:
    with sessions() as session:
        TrainingClaims(session).claim({SERIES: "job-1"}, at=T0, interval_s=INTERVAL_S)
        session.rollback()

    assert claim(sessions, {SERIES: "job-2"}, T0) == {SERIES}


def test_releasing_a_cancelled_job_frees_its_series(sessions: Sessions) -> None:
    claim(sessions, {SERIES: "job-1"}, T0)
    with sessions() as session:
        TrainingClaims(session).release("job-0")  # not the claim's job: kept
        session.commit()
    kept = claim(sessions, {SERIES: "job-2"}, T0)
    with sessions() as session:
        TrainingClaims(session).release("job-1")
        session.commit()

    assert kept == set()
    assert claim(sessions, {SERIES: "job-3"}, T0) == {SERIES}
