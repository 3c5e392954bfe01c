"""Training batches as the console follows them: jobs by status, rate and ETA,
newest first, a page at a time; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.tables import JobRow
from atalaia.api import training
from atalaia.core.jobs import JobStatus
from atalaia.core.series import Readings
from atalaia.services.training import new_job_id
from fixtures.api import Headers, SettingsFactory, finished_job
from fixtures.readings import sensor_series

BATCHES = "/api/v1/training/batches"
Sessions = sessionmaker[Session]


@pytest.fixture
def client(database_url: str, make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The training service, on each database; the jobs the tests write are
    never run (the executor resumes jobs at start and sweeps after a minute)."""
    settings = make_settings(database_url, training_min_interval_s=0)
    with TestClient(training.create_app(settings)) as test_client:
        yield test_client


def add_batch(
    sessions: Sessions,
    counts: dict[JobStatus, int],
    *,
    started_ago_s: float = 100.0,
    finished_ago_s: float = 0.0,
    actor: str = "ana",
) -> str:
    """A batch of jobs in `counts`' statuses: accepted `started_ago_s` + 10 s
    ago, those begun started `started_ago_s` ago, those ended finished
    `finished_ago_s` ago."""
    batch_id, now = new_job_id(), datetime.now(UTC)
    started = now - timedelta(seconds=started_ago_s)
    finished = now - timedelta(seconds=finished_ago_s)
    rows: list[dict[str, Any]] = []
    for status, n in counts.items():
        for _ in range(n):
            row: dict[str, Any] = {
                "job_id": new_job_id(), "series_id": f"s{len(rows):04d}_radial",
                "status": status.value, "algorithm": "robust",
                "hyperparameters": {"threshold_sigma": 3.5}, "window_hours": 168.0,
                "submitted_by": actor, "batch_id": batch_id,
                "created_at": started - timedelta(seconds=10), "attempts": 0,
            }  # fmt: skip
            if status is not JobStatus.QUEUED:
                row |= {"started_at": started, "attempts": 1}
            if status.terminal:
                row["finished_at"] = finished
            rows.append(row)
    with sessions() as session:
        session.execute(insert(JobRow), rows)
        session.commit()
    return batch_id


MIXED = {
    JobStatus.SUCCEEDED: 40,
    JobStatus.FAILED: 5,
    JobStatus.CANCELLED: 5,
    JobStatus.RUNNING: 10,
    JobStatus.QUEUED: 40,
}


def get_batch(client: TestClient, headers: Headers, batch_id: str) -> dict[str, Any]:
    answer = client.get(f"{BATCHES}/{batch_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


class TestOneBatch:
    def test_counts_a_mixed_batch_and_its_time_left(
        self, client: TestClient, viewer: Headers, sessions: Sessions
    ) -> None:
        batch_id = add_batch(sessions, MIXED, started_ago_s=100.0)

        body = get_batch(client, viewer, batch_id)

        counts = {k: body[k] for k in ("total", "done", *map(str, JobStatus))}
        assert counts == {
            "total": 100, "done": 50, "queued": 40, "running": 10,
            "succeeded": 40, "failed": 5, "cancelled": 5,
        }  # fmt: skip
        assert (body["actor"], body["algorithm"]) == ("ana", "robust")
        # 50 jobs ended in the 100 s since the first started: 0.5 a second,
        # and 50 left take 100 s more (a little less and more: the test's time)
        assert 0.4 < body["rate_per_s"] <= 0.5
        assert 100.0 <= body["eta_s"] < 125.0
        started = datetime.fromisoformat(body["started_at"])
        created = datetime.fromisoformat(body["created_at"])
        assert started - created == timedelta(seconds=10)
        assert body["links"]["jobs"] == f"/api/v1/training/jobs?batch_id={batch_id}"

    def test_a_finished_batch_has_its_rate_to_its_end_and_no_eta(
        self, client: TestClient, viewer: Headers, sessions: Sessions
    ) -> None:
        ended = {JobStatus.SUCCEEDED: 90, JobStatus.FAILED: 10}
        batch_id = add_batch(sessions, ended, started_ago_s=600.0, finished_ago_s=400.0)

        body = get_batch(client, viewer, batch_id)

        assert (body["done"], body["total"]) == (100, 100)
        assert body["rate_per_s"] == pytest.approx(100 / 200.0)
        assert body["eta_s"] is None
        assert datetime.fromisoformat(body["updated_at"]) - datetime.fromisoformat(
            body["started_at"]
        ) == timedelta(seconds=200)

    def test_a_batch_not_started_has_no_rate_nor_eta(
        self, client: TestClient, viewer: Headers, sessions: Sessions
    ) -> None:
        batch_id = add_batch(sessions, {JobStatus.QUEUED: 3})

        body = get_batch(client, viewer, batch_id)

        assert (body["queued"], body["done"], body["started_at"]) == (3, 0, None)
        assert (body["rate_per_s"], body["eta_s"]) == (None, None)
        assert body["updated_at"] == body["created_at"]

    def test_running_jobs_but_none_ended_leave_the_eta_unknown(
        self, client: TestClient, viewer: Headers, sessions: Sessions
    ) -> None:
        running = {JobStatus.RUNNING: 2, JobStatus.QUEUED: 8}
        batch_id = add_batch(sessions, running)

        body = get_batch(client, viewer, batch_id)

        assert (body["rate_per_s"], body["eta_s"]) == (0.0, None)

    def test_an_unknown_batch_is_404(self, client: TestClient, viewer: Headers) -> None:
        answer = client.get(f"{BATCHES}/{new_job_id()}", headers=viewer)

        assert answer.status_code == 404
        assert answer.json()["rule"] == "batch_exists"


class TestPages:
    def test_pages_batches_newest_first_and_leaves_out_lone_jobs(
        self, client: TestClient, viewer: Headers, sessions: Sessions
    ) -> None:
        made = [add_batch(sessions, {JobStatus.QUEUED: i + 1}) for i in range(5)]
        lone = add_batch(sessions, {JobStatus.QUEUED: 1})
        with sessions() as session:  # a job submitted alone has no batch
            session.execute(
                update(JobRow).where(JobRow.batch_id == lone).values(batch_id=None)
            )
            session.commit()

        pages, cursor = [], ""
        while True:
            answer = client.get(f"{BATCHES}?limit=2{cursor}", headers=viewer)
            assert answer.status_code == 200, answer.text
            pages.append(
                [(b["batch_id"], b["total"]) for b in answer.json()["batches"]]
            )
            if answer.json()["next_cursor"] is None:
                break
            cursor = f"&cursor={answer.json()['next_cursor']}"

        # newest first: ids sort by the millisecond of submission (and at
        # random within one)
        expected = sorted(((b, i + 1) for i, b in enumerate(made)), reverse=True)
        assert pages == [expected[:2], expected[2:4], expected[4:]]

    def test_a_full_last_page_is_followed_by_an_empty_one(
        self, client: TestClient, viewer: Headers, sessions: Sessions
    ) -> None:
        made = [add_batch(sessions, MIXED) for _ in range(2)]

        first = client.get(f"{BATCHES}?limit=2", headers=viewer).json()
        rest = client.get(
            f"{BATCHES}?limit=2&cursor={first['next_cursor']}", headers=viewer
        ).json()

        assert [b["batch_id"] for b in first["batches"]] == sorted(made, reverse=True)
        assert [b["done"] for b in first["batches"]] == [50, 50]
        assert rest == {"batches": [], "next_cursor": None}

    def test_no_batch_is_an_empty_page(
        self, client: TestClient, viewer: Headers
    ) -> None:
        answer = client.get(BATCHES, headers=viewer)

        assert answer.json() == {"batches": [], "next_cursor": None}

    @pytest.mark.parametrize("limit", [0, 101])
    def test_refuses_a_page_size_out_of_bounds(
        self, client: TestClient, viewer: Headers, limit: int
    ) -> None:
        answer = client.get(f"{BATCHES}?limit={limit}", headers=viewer)

        assert answer.status_code == 422
        assert answer.json()["rule"] == "request_schema"

    def test_needs_a_token(self, client: TestClient) -> None:
        assert client.get(BATCHES).status_code == 401


def test_follows_a_batch_the_api_accepted_to_its_end(
    client: TestClient, scientist: Headers, sessions: Sessions
) -> None:
    week = Readings.of(*sensor_series(10_080))
    with sessions() as session:
        ReadingStore(session).append_many(
            {f"sensor_007_{axis}": week for axis in ("radial", "axial")}
        )
        session.commit()
    submitted = time.time()
    accepted = client.post(
        "/api/v1/training/batch",
        json={"sensor_id": "sensor_007", "config": {"algorithm": "zscore"}},
        headers=scientist,
    ).json()

    for job in accepted["jobs"]:
        finished_job(client, job["job_id"], scientist)
    body = get_batch(client, scientist, accepted["batch_id"])

    assert (body["total"], body["succeeded"], body["done"]) == (2, 2, 2)
    assert (body["actor"], body["algorithm"]) == ("tester", "zscore")
    assert body["eta_s"] is None
    assert body["rate_per_s"] > 0
    listed = client.get(BATCHES, headers=scientist).json()["batches"]
    assert [b["batch_id"] for b in listed] == [accepted["batch_id"]]
    updated = datetime.fromisoformat(body["updated_at"]).timestamp()
    assert submitted <= updated <= time.time()  # its last job's end
