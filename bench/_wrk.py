"""HTTP load with wrk (Debian's package): requests/s, latency percentiles, CPU used.

`run_wrk` cycles through a list of prepared requests (so a benchmark can spread
its load over many series); `run_lua` takes a Lua `request` function instead
(bodies made as they are sent: fresh timestamps). Both read wrk's figures back
as JSON from a Lua `done` hook. The CPU time wrk itself used is reported
beside the server's, since both share the machine.

Each run starts `SETTLE_S` after the previous one: when wrk opens its connections
right after the previous wrk closed its own, the first request of about one new
connection in a hundred waits a second (p99 1.2 s at 64 connections of batches,
for atalaia and the raw ASGI reference alike); 0.2 s apart, none does.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SETTLE_S = 0.5
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, '
    .. '"socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d}\\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


@dataclass(frozen=True, slots=True)
class Request:
    """One request wrk sends: a path and a JSON body (POST), or no body (GET)."""

    path: str
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class WrkResult:
    connections: int
    requests: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx answers plus socket errors
    wrk_cpu_s: float

    def figures(self, prefix: str = "") -> dict[str, float | int]:
        return {
            f"{prefix}rps": round(self.requests_per_s),
            f"{prefix}p50_ms": self.p50_ms,
            f"{prefix}p99_ms": self.p99_ms,
            f"{prefix}errors": self.errors,
        }


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(apt, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(apt, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def lua_string(data: bytes) -> str:
    """`data` as a Lua long string literal."""
    text = data.decode()
    level = "=" * 4
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def _cycling(requests: Sequence[Request]) -> str:
    """Lua sending `requests` in turn (`headers` is defined before it)."""
    specs = ",\n".join(
        f"{{{lua_string(r.path.encode())}, "
        f"{lua_string(r.body) if r.body is not None else 'nil'}}}"
        for r in requests
    )
    return f"""
local specs = {{
{specs}
}}
local prepared = {{}}
local n = 0
init = function(args)
  for i, spec in ipairs(specs) do
    local method = spec[2] and "POST" or "GET"
    prepared[i] = wrk.format(method, spec[1], headers, spec[2])
  end
end
request = function()
  n = n % #prepared + 1
  return prepared[n]
end
"""


def run_wrk(
    base_url: str,
    requests: Sequence[Request],
    *,
    connections: int,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
    threads: int = 1,
) -> WrkResult:
    """Load `base_url` with `requests` in turn for `duration_s`; wrk's figures."""
    return run_lua(
        base_url,
        _cycling(requests),
        connections=connections,
        duration_s=duration_s,
        headers=headers,
        threads=threads,
    )


def run_lua(
    base_url: str,
    lua: str,
    *,
    connections: int,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
    threads: int = 1,
) -> WrkResult:
    """Load `base_url` for `duration_s` with the requests of `lua`'s `request`
    function (a global `headers` table is defined before it: pass it to
    `wrk.format`); wrk's figures."""
    wrk = ensure_wrk()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    head = ", ".join(
        f"[ {lua_string(k.encode())} ] = {lua_string(v.encode())}"
        for k, v in all_headers.items()
    )
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "load.lua"
        script.write_text(f"headers = {{ {head} }}\n{lua}\n{_DONE}")
        time.sleep(SETTLE_S)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [
                wrk,
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{duration_s:g}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base_url,
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(
        (s for s in done.stdout.splitlines() if s.startswith("WRK_JSON ")), None
    )
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return WrkResult(
        connections=connections,
        requests=raw["requests"],
        requests_per_s=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=raw["non2xx"] + raw["socket_errors"],
        wrk_cpu_s=cpu,
    )


def median_run(runs: Sequence[WrkResult]) -> WrkResult:
    """The run with the median throughput (runs are not averaged field by field)."""
    ranked = sorted(runs, key=lambda r: r.requests_per_s)
    middle = statistics.median_low(range(len(ranked)))
    return ranked[middle]
