"""The synthetic fleet, and `run_demo` end to end against a real embedded server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from atalaia import synthetic
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli import app
from atalaia.cli.demo import embedded_server, free_port
from atalaia.demo import DEMO_ACTOR, DemoError, DemoSummary, run_demo
from atalaia.settings import Settings
from atalaia.synthetic import SyntheticSeries, make_fleet, stream
from fixtures.api import inline_body, wait_for

# -- synthetic -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet() -> list[SyntheticSeries]:
    return make_fleet(sensors=2, days=7, seed=7)


def test_fleet_shapes(fleet: list[SyntheticSeries]) -> None:
    assert [s.series_id for s in fleet] == [
        f"sensor_00{n}_{axis}"
        for n in (1, 2)
        for axis in ("radial", "axial", "tangential")
    ]
    for s in fleet:
        assert s.timestamps.shape == s.values.shape == (10_080,)
        assert s.timestamps.dtype == s.values.dtype == np.float64
        assert np.all(np.diff(s.timestamps) == 60.0)
        assert s.timestamps[0] == synthetic.DEFAULT_START
        assert np.isfinite(s.values).all()
        assert s.values.std() > 1e-6


def test_fleet_is_deterministic_per_seed(fleet: list[SyntheticSeries]) -> None:
    again = make_fleet(sensors=2, days=7, seed=7)
    other = make_fleet(sensors=2, days=7, seed=8)
    for a, b, c in zip(fleet, again, other, strict=True):
        assert np.array_equal(a.values, b.values)
        assert a.injected == b.injected
        assert not np.array_equal(a.values, c.values)


def test_injected_anomalies_really_deviate(fleet: list[SyntheticSeries]) -> None:
    kinds = {i.kind for s in fleet for i in s.injected}
    assert kinds == {"spike", "level_shift", "drift"}
    assert any(not s.injected for s in fleet)  # some series stay clean
    for s in fleet:
        level, sigma = s.profile.level, s.profile.sigma
        deviation = np.abs(s.values - level) / sigma
        marked = np.zeros(s.values.size, dtype=bool)
        for i in s.injected:
            part = deviation[i.start_index : i.end_index]
            marked[i.start_index : i.end_index] = True
            if i.kind == "spike":
                assert part.min() >= 6.0
            elif i.kind == "level_shift":
                assert np.median(part) > 3.0
            else:  # drift: the end of the ramp is far off
                assert np.median(part[-len(part) // 10 :]) > 2.0
        assert deviation[~marked].max() < 5.0


def test_stream_continues_after_the_training_data(fleet: list[SyntheticSeries]) -> None:
    ids, timestamps, values, truth = stream(fleet, minutes=30, seed=3)
    assert len(ids) == timestamps.size == values.size == truth.size == 6 * 30
    assert np.all(np.diff(timestamps) >= 0)  # time-major, as readings arrive
    by_id = {s.series_id: s for s in fleet}
    ids_array = np.array(ids)
    for series_id, s in by_id.items():
        mine = ids_array == series_id
        assert mine.sum() == 30
        assert timestamps[mine][0] == s.timestamps[-1] + 60.0
        assert np.all(np.diff(timestamps[mine]) == 60.0)
    sigma = np.array([by_id[i].profile.sigma for i in ids])
    level = np.array([by_id[i].profile.level for i in ids])
    deviation = np.abs(values - level) / sigma
    assert truth.any()
    assert deviation[truth].min() > 4.0
    assert deviation[~truth].max() < 4.0
    sensors = np.array([i.rsplit("_", 1)[0] for i in ids])
    shifted = [x for x in set(sensors) if truth[sensors == x].sum() >= 3 * 15]
    assert len(shifted) == 1  # every axis of one sensor, over the second half
    again = stream(fleet, minutes=30, seed=3)
    assert np.array_equal(again[2], values)
    assert np.array_equal(again[3], truth)


# -- end to end ------------------------------------------------------------------------


@pytest.fixture
def platform_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, log_json=False, log_level="WARNING")


@pytest.fixture
def platform(platform_settings: Settings) -> Iterator[tuple[str, str]]:
    """(base url, the demo's token) of the embedded app served by uvicorn on a
    thread."""
    token = authenticator_for(platform_settings).issue(
        subject=DEMO_ACTOR, role=Role.ML_ENGINEER, ttl_s=3600
    )
    with embedded_server(platform_settings) as base:
        yield base, token


@pytest.fixture
def user(platform_settings: Settings) -> dict[str, str]:
    """Headers of a user of the platform, who may train and promote."""
    token = authenticator_for(platform_settings).issue(
        subject="ana", role=Role.ML_ENGINEER, ttl_s=3600
    )
    return {"Authorization": f"Bearer {token}"}


def _user_trains_and_promotes(
    base: str, user: dict[str, str], series_id: str
) -> list[dict[str, object]]:
    """`series_id` trained and promoted by the user; its versions."""
    api = f"{base}/api/v1"
    queued = httpx.post(
        f"{api}/training/{series_id}", json=inline_body(), headers=user, timeout=60
    )
    assert queued.status_code == 202, queued.text
    job_url = f"{api}/training/jobs/{queued.json()['job_id']}"

    def finished() -> dict[str, object] | None:
        job: dict[str, object] = httpx.get(job_url, headers=user).json()
        return job if job["status"] not in ("queued", "running") else None

    job = wait_for(finished)
    assert job["status"] == "succeeded", job
    promote = f"{api}/models/{series_id}/versions/{job['model_version']}/promote"
    promoted = httpx.post(promote, json={"strategy": "direct"}, headers=user)
    assert promoted.status_code == 200, promoted.text
    return _versions(base, user, series_id)


def _points(base: str, user: dict[str, str], series_id: str) -> object:
    url = f"{base}/api/v1/series/{series_id}/points"
    return httpx.get(url, params={"limit": 100_000}, headers=user).json()


def _versions(
    base: str, user: dict[str, str], series_id: str
) -> list[dict[str, object]]:
    response = httpx.get(f"{base}/api/v1/models/{series_id}/versions", headers=user)
    assert response.status_code == 200, response.text
    versions: list[dict[str, object]] = response.json()
    return versions


class _Output(list[str]):
    """Collects the demo's lines; also writes them, so a failure shows them."""

    def __call__(self, line: str) -> None:
        self.append(line)
        sys.stdout.write(line + "\n")


def _assert_detects(summary: DemoSummary) -> None:
    assert summary.readings_streamed == 6 * 60
    assert summary.anomalies_injected > 0
    assert summary.recall >= 0.8
    assert summary.precision >= 0.5


def test_run_demo_end_to_end(platform: tuple[str, str]) -> None:
    base, token = platform
    out = _Output()
    first = run_demo(base, token, sensors=2, days=7, stream_minutes=60, echo=out)
    assert (first.series_ingested, first.points_ingested) == (6, 6 * 10_080)
    assert (first.series_trained, first.series_reused, first.series_failed) == (6, 0, 0)
    assert first.versions_promoted == 6
    _assert_detects(first)
    assert first.plot_url.startswith(f"{base}/api/v1/plot?series_id=demo_sensor_00")
    assert set(first.phase_seconds) == {"ingest", "train", "promote", "serve", "stream"}
    assert any("6/6 series answered by the promoted version" in line for line in out)
    assert any("$(cat .atalaia/admin-token)" in line for line in out)
    auth = {"Authorization": f"Bearer {token}"}
    plot = httpx.get(first.plot_url, headers=auth, timeout=60)
    assert plot.status_code == 200
    assert plot.headers["content-type"] == "image/png"

    # Again within 5 minutes: training is rate-limited, the served versions are reused.
    out.clear()
    second = run_demo(base, token, sensors=2, days=7, stream_minutes=60, echo=out)
    assert (second.series_trained, second.series_reused, second.series_failed) == (
        0,
        6,
        0,
    )
    assert second.versions_promoted == 0
    _assert_detects(second)
    assert any("TrainingRateLimited" in line for line in out)
    assert any("(0 new)" in line for line in out)  # ingest is idempotent


def test_run_demo_reports_http_errors(platform: tuple[str, str]) -> None:
    base, _ = platform
    with pytest.raises(DemoError, match="401"):
        run_demo(base, "not-a-token", sensors=1, echo=lambda _line: None)


def test_run_demo_names_an_unreachable_url() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DemoError, match=f"{base}/api/v1/series"):
        run_demo(base, "token", sensors=1, echo=lambda _line: None)


class TestForeignSeries:
    def test_leaves_a_users_series_of_the_readmes_ids_alone(
        self, tmp_path: Path, user: dict[str, str]
    ) -> None:
        # No training interval: the demo could retrain what it wrongly took as its own.
        settings = Settings(
            home=tmp_path, log_json=False, log_level="WARNING",
            training_min_interval_s=0,
        )  # fmt: skip
        token = authenticator_for(settings).issue(
            subject=DEMO_ACTOR, role=Role.ML_ENGINEER, ttl_s=3600
        )
        with embedded_server(settings) as base:
            users = _user_trains_and_promotes(base, user, "sensor_001_radial")
            before = _points(base, user, "sensor_001_radial")

            summary = run_demo(base, token, sensors=1, echo=lambda _line: None)

            assert (summary.series_trained, summary.versions_promoted) == (3, 3)
            assert _versions(base, user, "sensor_001_radial") == users
            assert _points(base, user, "sensor_001_radial") == before
            assert _versions(base, user, "demo_sensor_001_radial")[0]["stage"] == (
                "production"
            )

    def test_refuses_before_writing_when_a_series_is_someone_elses(
        self, platform: tuple[str, str], user: dict[str, str]
    ) -> None:
        base, token = platform
        users = _user_trains_and_promotes(base, user, "demo_sensor_001_axial")

        with pytest.raises(DemoError, match="demo_sensor_001_axial .*--prefix"):
            run_demo(base, token, sensors=1, echo=lambda _line: None)

        assert _versions(base, user, "demo_sensor_001_axial") == users
        listed = httpx.get(f"{base}/api/v1/series", headers=user).json()["series"]
        # The demo ingested nothing: only the user's series holds readings.
        assert [s["series_id"] for s in listed] == ["demo_sensor_001_axial"]

    def test_the_cli_refuses_in_one_line(
        self,
        platform: tuple[str, str],
        user: dict[str, str],
        platform_settings: Settings,
    ) -> None:
        base, _ = platform
        _user_trains_and_promotes(base, user, "sensor_001_radial")
        env = {"ATALAIA_HOME": str(platform_settings.home)}

        result = CliRunner().invoke(
            app, ["demo", "--url", base, "--sensors", "1", "--prefix", ""], env=env
        )

        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "sensor_001_radial" in lines[0]
        assert "--prefix" in lines[0]
