"""Server processes for benchmarks: start, wait until ready, measure CPU, stop."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from atalaia.api.common.auth import Authenticator, Role

_TICK = os.sysconf("SC_CLK_TCK")


def atalaia_serve(port: int, role: str | None = None) -> list[str]:
    """The argv of `atalaia serve` (one `role`, or every service) on `port`, from
    this interpreter's install."""
    roles = ["--role", role] if role else []
    atalaia = str(Path(sys.executable).with_name("atalaia"))
    return [atalaia, "serve", *roles, "--host", "127.0.0.1", "--port", str(port)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    """`pid` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and every process it started."""
        return sum(_cpu_seconds(pid) for pid in _children(self.process.pid))

    def rss_mb(self) -> float:
        return sum(_rss_bytes(pid) for pid in _children(self.process.pid)) / 2**20


@contextmanager
def serve(
    argv: Sequence[str],
    *,
    port: int,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout_s: float = 180.0,
) -> Iterator[Server]:
    """Run `argv` (a server listening on `port`) until the block ends.

    Ready when `ready_path` answers 200. The server runs in its own process
    group, so that everything it started is stopped with it.
    """
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        list(argv),
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, ready_path, timeout_s, log_path)
        yield server
    finally:
        _stop(process)
        if log_path:
            out.close()  # type: ignore[union-attr]


def _wait_ready(
    server: Server, path: str, timeout_s: float, log_path: Path | None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path else ""
            raise RuntimeError(
                f"server exited with {server.process.returncode}\n{tail}"
            )
        try:
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready on {server.base_url}{path} in {timeout_s}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass


def service_env(
    home: Path, url: str, *, rate_per_min: int
) -> tuple[dict[str, str], str]:
    """The environment of a service on database `url` with a fresh secret, and a
    viewer's token signed with it."""
    secret = secrets.token_urlsafe(48)
    token = Authenticator(secret).issue(subject="bench", role=Role.VIEWER, ttl_s=3600)
    env = {
        "ATALAIA_HOME": str(home),
        "ATALAIA_DATABASE_URL": url,
        "ATALAIA_JWT_SECRET": secret,
        "ATALAIA_LOG_LEVEL": "WARNING",
        "ATALAIA_RATE_LIMIT_PER_MIN": str(rate_per_min),
    }
    return env, token


def get_ok(
    http: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """The answer to a GET of `url`; RuntimeError unless a 200."""
    answer = http.get(url, headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"GET {url} answered {answer.status_code}: {answer.text}")
    return answer


def timed_gets(
    http: httpx.Client, url: str, requests: int, warmup: int
) -> tuple[list[float], httpx.Response]:
    """Durations of `requests` GETs of `url` (after `warmup` untimed), and the
    last answer."""
    for _ in range(warmup):
        get_ok(http, url)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = get_ok(http, url)
        samples.append(time.perf_counter() - started)
    return samples, answer
