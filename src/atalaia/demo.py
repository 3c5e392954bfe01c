"""`atalaia demo`: a synthetic fleet driven through the public HTTP API, end to end.

The fleet lives in its own namespace (series ids `demo_sensor_001_radial`, …; the
prefix is a parameter), and the demo touches no series it did not make: before
writing anything it checks that every existing series of its fleet has only
versions trained by jobs its own token subject (DEMO_ACTOR) submitted.

Ingest → train (one batch, `auto`: each series its family) → promote → wait
until inference serves the new versions → stream fresh readings with injected
anomalies through batch prediction → precision and recall against the ground
truth. Only HTTP, as
a user would do it; nothing of the platform is imported but the synthetic data.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson

from atalaia.synthetic import SyntheticSeries, make_fleet, stream

Echo = Callable[[str], None]
Json = dict[str, Any]

API = "/api/v1"
MAX_INGEST = 100_000  # points per ingest request
MAX_PREDICT = 10_000  # readings per batch prediction request
PAGE = 1_000  # items per listing request
POLL_S = 0.5
PROGRESS_S = 10.0
SERVE_WAIT_S = 30.0
ACTIVE = frozenset({"queued", "running"})
RATE_LIMITED = "TrainingRateLimited"
PLOT_PREFERENCE = ("level_shift", "spike", "drift")
DEFAULT_PREFIX = "demo_"
# The token subject of the demo: its jobs' `submitted_by`, how it knows its series.
DEMO_ACTOR = "atalaia-demo"


class DemoError(Exception):
    """The platform answered something the demo did not expect, or not at all."""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    base_url: str
    series_ingested: int
    points_ingested: int
    series_trained: int  # a new version trained by this run
    series_reused: int  # rate-limited: the newest existing version is used instead
    series_failed: int
    versions_promoted: int
    readings_streamed: int
    anomalies_injected: int
    anomalies_flagged: int
    true_positives: int
    precision: float
    recall: float
    phase_seconds: dict[str, float]
    plot_url: str


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_demo(
    base_url: str,
    token: str,
    *,
    sensors: int = 20,
    days: float = 7,
    stream_minutes: int = 60,
    timeout_s: float = 300,
    echo: Echo = _stdout,
    seed: int = 7,
    prefix: str = DEFAULT_PREFIX,
) -> DemoSummary:
    """Run the demo against the platform at `base_url`; echo and return the figures.

    `token` must be DEMO_ACTOR's (role ml_engineer or above); series ids start
    with `prefix`. `timeout_s` bounds the waits (training jobs, then serving);
    each request has its own httpx timeout. Raises DemoError on an unexpected
    answer or no answer, and before writing anything when a series of the
    fleet exists with a version the demo did not train.
    """
    deadline = time.monotonic() + timeout_s
    phases: dict[str, float] = {}
    fleet = [
        dataclasses.replace(s, series_id=prefix + s.series_id)
        for s in make_fleet(sensors=sensors, days=days, seed=seed)
    ]
    n_points = sum(s.values.size for s in fleet)
    size = (
        f"{len(fleet)} series ({sensors} sensors), {days:g} days, {n_points:,} points"
    )
    echo(f"fleet     {size}")
    with _Api(base_url, token) as api:
        _refuse_foreign_series(api, [s.series_id for s in fleet], prefix)
        with _timed(phases, "ingest"):
            points, new = _ingest(api, fleet)
        took = _took(phases, "ingest")
        echo(f"ingest    {len(fleet)} series, {points:,} points ({new:,} new){took}")
        with _timed(phases, "train"):
            trained = _train(api, fleet, days, deadline, echo)
        with _timed(phases, "promote"):
            served, promoted = _promote(api, trained.versions)
        echo(f"promote   {promoted} versions to Production{_took(phases, 'promote')}")
        with _timed(phases, "serve"):
            _await_serving(
                api, fleet, served, min(deadline, time.monotonic() + SERVE_WAIT_S), echo
            )
        with _timed(phases, "stream"):
            truth, flagged = _stream(api, fleet, stream_minutes, seed)
    summary = _summarise(
        base_url, fleet, points, trained, promoted, truth, flagged, phases
    )
    for line in _report(summary):
        echo(line)
    return summary


# -- HTTP ---------------------------------------------------------------------------


class _Api:
    """One httpx client on {base}/api/v1 with the token; errors become DemoError."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base + API,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(120.0, connect=10.0),
        )

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.close()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        allow: Sequence[int] = (),
    ) -> httpx.Response:
        """Send a request; any non-2xx answer not in `allow` raises DemoError."""
        url = f"{self.base}{API}{path}"
        content = (
            None
            if body is None
            else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        )
        try:
            response = self.client.request(method, path, content=content, params=params)
        except httpx.TimeoutException as exc:
            raise DemoError(f"{method} {url} did not answer in time ({exc!r})") from exc
        except httpx.TransportError as exc:
            raise DemoError(f"{url} is unreachable: {exc}") from exc
        if response.is_success or response.status_code in allow:
            return response
        raise DemoError(
            f"{method} {url} answered {response.status_code}: {response.text[:500]}"
        )

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Json:
        answer: Json = self.call(method, path, body, **kwargs).json()
        return answer


def _pages(api: _Api, path: str, key: str, params: dict[str, Any]) -> list[Json]:
    """Every item under `key` of a cursor-paginated listing."""
    items: list[Json] = []
    params = {**params, "limit": PAGE}
    while True:
        page = api.json("GET", path, params=params)
        items += page[key]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - started


def _took(phases: dict[str, float], name: str) -> str:
    return f" in {phases[name]:.1f} s"


# -- phases ---------------------------------------------------------------------------


def _refuse_foreign_series(api: _Api, series_ids: list[str], prefix: str) -> None:
    """Raise DemoError if a series of the fleet exists and is not the demo's."""
    existing = {
        item["series_id"]
        for path, key in (("/series", "series"), ("/models", "models"))
        for item in _pages(api, path, key, {"prefix": prefix})
    }
    for series_id in sorted(existing.intersection(series_ids)):
        if not _made_by_demo(api, series_id):
            raise DemoError(
                f"series {series_id} exists and was not made by the demo; nothing "
                f"was changed: run it in another namespace with --prefix"
            )


def _made_by_demo(api: _Api, series_id: str) -> bool:
    """The demo submitted a job for it, and trained every version it has."""
    jobs = _pages(api, "/training/jobs", "jobs", {"series_id": series_id})
    mine = {j["job_id"] for j in jobs if j["submitted_by"] == DEMO_ACTOR}
    response = api.call("GET", f"/models/{series_id}/versions", allow=(404,))
    versions: list[Json] = response.json() if response.is_success else []
    return bool(mine) and all(v["lineage"]["job_id"] in mine for v in versions)


def _ingest(api: _Api, fleet: Sequence[SyntheticSeries]) -> tuple[int, int]:
    """Send every series' readings, ≤ MAX_INGEST per request; (received, inserted)."""
    received = inserted = 0
    for s in fleet:
        for at in range(0, s.values.size, MAX_INGEST):
            part = slice(at, at + MAX_INGEST)
            body = {"timestamps": s.timestamps[part], "values": s.values[part]}
            answer = api.json("POST", f"/series/{s.series_id}/points", body)
            received += int(answer["received"])
            inserted += int(answer["inserted"])
    return received, inserted


@dataclass
class _Training:
    """Per series: the version to serve and its stage, or why there is none."""

    versions: dict[str, tuple[int, str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    new: int = 0
    reused: int = 0


def _train(
    api: _Api,
    fleet: Sequence[SyntheticSeries],
    days: float,
    deadline: float,
    echo: Echo,
) -> _Training:
    body = {
        "series_ids": [s.series_id for s in fleet],
        "window_hours": days * 24,
        "config": {"algorithm": "auto"},
    }
    # 422 or 429: no series could be trained; the body still lists each refusal.
    batch = api.call("POST", "/training/batch", body, allow=(422, 429)).json()
    accepted = batch.get("accepted", 0)
    out = _Training()
    limited = [r["series_id"] for r in batch["rejected"] if r["error"] == RATE_LIMITED]
    for r in batch["rejected"]:
        if r["error"] != RATE_LIMITED:
            out.failed[r["series_id"]] = f"{r['error']}: {r['detail']}"
    batch_id = batch.get("batch_id", "refused")
    echo(f"train     batch {batch_id}: {accepted} jobs queued (auto)")
    if accepted:
        _collect_jobs(out, _await_jobs(api, batch_id, deadline, echo))
    if limited:
        echo(
            f"          {len(limited)} series were trained less than 5 minutes ago "
            "(TrainingRateLimited): using their newest Staging/Production versions"
        )
        _reuse_versions(api, out, limited)
    echo(f"train     {out.new} trained, {out.reused} reused, {len(out.failed)} failed")
    for series_id, reason in list(out.failed.items())[:5]:
        echo(f"          {series_id}: {reason}")
    return out


def _await_jobs(api: _Api, batch_id: str, deadline: float, echo: Echo) -> list[Json]:
    """Poll the batch's jobs until none is queued or running, or the deadline."""
    next_progress = time.monotonic() + PROGRESS_S
    while True:
        jobs = _batch_jobs(api, batch_id)
        active = sum(j["status"] in ACTIVE for j in jobs)
        if active == 0 or time.monotonic() >= deadline:
            return jobs
        if time.monotonic() >= next_progress:
            echo(f"          {len(jobs) - active}/{len(jobs)} jobs done")
            next_progress += PROGRESS_S
        time.sleep(POLL_S)


def _batch_jobs(api: _Api, batch_id: str) -> list[Json]:
    return _pages(api, "/training/jobs", "jobs", {"batch_id": batch_id})


def _collect_jobs(out: _Training, jobs: list[Json]) -> None:
    for job in jobs:
        series_id, status = job["series_id"], job["status"]
        if status == "succeeded" and job["model_version"] is not None:
            out.versions[series_id] = (int(job["model_version"]), "staging")
            out.new += 1
        elif status in ACTIVE:
            out.failed[series_id] = f"job {job['job_id']} still {status} at the timeout"
        else:
            error = job["error"] or {}
            out.failed[series_id] = (
                f"job {status}: {error.get('error')}: {error.get('detail')}"
            )


def _reuse_versions(api: _Api, out: _Training, series_ids: list[str]) -> None:
    """Take the newest Staging or Production version of each series."""
    for series_id in series_ids:
        response = api.call("GET", f"/models/{series_id}/versions", allow=(404,))
        versions: list[Json] = response.json() if response.is_success else []
        usable = [v for v in versions if v["stage"] in ("staging", "production")]
        if usable:
            out.versions[series_id] = (int(usable[0]["version"]), usable[0]["stage"])
            out.reused += 1
        else:
            out.failed[series_id] = (
                "rate-limited and no Staging or Production version yet"
            )


def _promote(
    api: _Api, versions: dict[str, tuple[int, str]]
) -> tuple[dict[str, int], int]:
    """Promote Staging versions (direct); (series → version to serve, promoted)."""
    served: dict[str, int] = {}
    promoted = 0
    for series_id, (version, stage) in versions.items():
        if stage == "production":
            served[series_id] = version
            continue
        path = f"/models/{series_id}/versions/{version}/promote"
        response = api.call("POST", path, {"strategy": "direct"}, allow=(409,))
        if response.is_success:  # 409: not Staging any more; leave it as it is
            served[series_id] = version
            promoted += 1
    return served, promoted


def _await_serving(
    api: _Api,
    fleet: Sequence[SyntheticSeries],
    served: dict[str, int],
    deadline: float,
    echo: Echo,
) -> None:
    """Predict each series' last reading until inference answers with its version."""
    last = {s.series_id: s for s in fleet}
    pending = dict(served)
    while pending:
        points = [_point(last[sid], -1) for sid in pending]
        for chunk in _chunks(points, MAX_PREDICT):
            for r in api.json("POST", "/predict/batch", {"points": chunk})["results"]:
                if r["model_info"]["version"] == pending.get(r["series_id"]):
                    del pending[r["series_id"]]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S / 2)
    done = len(served) - len(pending)
    echo(f"serve     {done}/{len(served)} series answered by the promoted version")
    if pending:
        echo(f"          not yet served: {', '.join(sorted(pending)[:5])}")


def _point(s: SyntheticSeries, i: int) -> Json:
    return {
        "series_id": s.series_id,
        "timestamp": s.timestamps[i],
        "value": s.values[i],
    }


def _chunks(items: list[Json], size: int) -> Iterator[list[Json]]:
    for at in range(0, len(items), size):
        yield items[at : at + size]


def _stream(
    api: _Api, fleet: Sequence[SyntheticSeries], minutes: int, seed: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Score the fresh readings in request-sized chunks; returns (truth, flagged)."""
    ids, timestamps, values, truth = stream(fleet, minutes, seed)
    points = [
        {"series_id": sid, "timestamp": t, "value": v}
        for sid, t, v in zip(ids, timestamps.tolist(), values.tolist(), strict=True)
    ]
    flagged: list[bool] = []
    for chunk in _chunks(points, MAX_PREDICT):
        results = api.json("POST", "/predict/batch", {"points": chunk})["results"]
        if len(results) != len(chunk):
            raise DemoError(f"asked {len(chunk)} predictions, got {len(results)}")
        flagged += [bool(r["anomaly"]) for r in results]
    return truth, np.array(flagged, dtype=np.bool_)


# -- summary ---------------------------------------------------------------------------


def _summarise(
    base_url: str,
    fleet: Sequence[SyntheticSeries],
    points: int,
    trained: _Training,
    promoted: int,
    truth: npt.NDArray[np.bool_],
    flagged: npt.NDArray[np.bool_],
    phases: dict[str, float],
) -> DemoSummary:
    tp = int((truth & flagged).sum())
    n_flagged, n_truth = int(flagged.sum()), int(truth.sum())
    return DemoSummary(
        base_url=base_url.rstrip("/"),
        series_ingested=len(fleet),
        points_ingested=points,
        series_trained=trained.new,
        series_reused=trained.reused,
        series_failed=len(trained.failed),
        versions_promoted=promoted,
        readings_streamed=int(truth.size),
        anomalies_injected=n_truth,
        anomalies_flagged=n_flagged,
        true_positives=tp,
        precision=tp / n_flagged if n_flagged else 0.0,
        recall=tp / n_truth if n_truth else 0.0,
        phase_seconds=dict(phases),
        plot_url=f"{base_url.rstrip('/')}{API}/plot?series_id={_plot_series(fleet)}&format=png",
    )


def _plot_series(fleet: Sequence[SyntheticSeries]) -> str:
    """A series whose history has an injected anomaly, the most visible kind first."""
    for kind in PLOT_PREFERENCE:
        for s in fleet:
            if any(i.kind == kind for i in s.injected):
                return s.series_id
    return fleet[0].series_id


def _report(s: DemoSummary) -> list[str]:
    phases = ", ".join(f"{name} {sec:.1f} s" for name, sec in s.phase_seconds.items())
    series_id = s.plot_url.split("series_id=", 1)[1].split("&", 1)[0]
    return [
        f"stream    {s.readings_streamed:,} readings: {s.anomalies_injected} anomalies "
        f"injected, {s.anomalies_flagged} flagged, {s.true_positives} true positives",
        f"result    precision {s.precision:.2f}, recall {s.recall:.2f}; "
        f"{s.series_trained + s.series_reused}/{s.series_ingested} series served, "
        f"{s.series_failed} failed",
        f"time      {phases}",
        f"plot      {s.plot_url}",
        '          curl -H "Authorization: Bearer $(cat .atalaia/admin-token)" \\',
        f'            "{s.plot_url}" -o {series_id}.png',
    ]
