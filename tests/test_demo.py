"""The synthetic fleet, and `run_demo` end to end against a real embedded server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from atalaia import synthetic
from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli.demo import embedded_server, free_port
from atalaia.demo import DemoError, DemoSummary, run_demo
from atalaia.settings import Settings
from atalaia.synthetic import SyntheticSeries, make_fleet, stream

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
def platform(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base url, admin token) of the embedded app served by uvicorn on a thread."""
    settings = Settings(home=tmp_path, log_json=False, log_level="WARNING")
    token = authenticator_for(settings).issue(
        subject="demo", role=Role.ADMIN, ttl_s=3600
    )
    with embedded_server(settings) as base:
        yield base, token


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
    assert first.plot_url.startswith(f"{base}/api/v1/plot?series_id=sensor_00")
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
    with pytest.raises(
        DemoError, match=f"{base}/api/v1/series/sensor_001_radial/points"
    ):
        run_demo(base, "token", sensors=1, echo=lambda _line: None)
