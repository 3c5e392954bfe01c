"""Start processes, wait until they are ready, and stop them: by PID, across runs.

A started process is its own session (process group), so it outlives the command
that started it and stopping it reaches its children too (nginx's workers). A
`Started` record is plain data: written to a state file by one command, read back
by another. Its start time (from /proc) guards against signalling a recycled PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from atalaia.files import open_private_append

LOOPBACK = "127.0.0.1"
_PROC = Path("/proc")
# Children of this process: polled (and so reaped) rather than probed by PID.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """A process to start: its name, command line, extra environment and port.

    A process with a port is ready when GET `ready_path` there answers 200; one
    without (a queue worker) is ready while it runs.
    """

    name: str
    argv: tuple[str, ...]
    port: int | None = None
    ready_path: str = "/ready"
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{LOOPBACK}:{self.port}"


@dataclass(frozen=True, slots=True)
class Started:
    """A running process as recorded in a state file."""

    name: str
    pid: int
    argv: list[str]
    log: str
    url: str | None = None
    ready_url: str | None = None
    start_time: int | None = None  # clock ticks after boot, from /proc


class StartFailed(RuntimeError):
    """A process exited or did not become ready in time; names it and its log."""

    def __init__(self, process: Started, reason: str) -> None:
        super().__init__(f"{process.name} {reason}; see {process.log}")
        self.process = process


def spawn(spec: ProcessSpec, log_dir: Path) -> Started:
    """Start `spec` detached, its output appended to `log_dir/<name>.log`."""
    log = log_dir / f"{spec.name}.log"
    with os.fdopen(open_private_append(log), "ab") as out:
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **spec.env},
            start_new_session=True,
        )
    _children[proc.pid] = proc
    url = spec.url
    return Started(
        name=spec.name,
        pid=proc.pid,
        argv=list(spec.argv),
        log=str(log),
        url=url,
        ready_url=None if url is None else url + spec.ready_path,
        start_time=_start_time(proc.pid),
    )


def alive(process: Started) -> bool:
    """Whether the process still runs (a zombie or a recycled PID does not)."""
    child = _children.get(process.pid)
    if child is not None and child.poll() is not None:  # exited: now reaped
        return False
    if not _PROC.is_dir():
        try:
            os.kill(process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _stat(process.pid)
    if stat is None or stat[0] == "Z":
        return False
    return process.start_time is None or stat[1] == process.start_time


def probe(url: str, timeout_s: float = 2.0) -> tuple[bool, str, object]:
    """GET `url`: (answered 200, a short detail, the JSON body or None)."""
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__, None
    try:
        body: object = response.json()
    except ValueError:
        body = None
    return response.status_code == 200, f"HTTP {response.status_code}", body


def wait_ready(processes: Sequence[Started], timeout_s: float) -> None:
    """Return once every process is ready; raise `StartFailed` for the first that
    exits, or for those still not ready after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pending = list(processes)
    while pending:
        for process in list(pending):
            if not alive(process):
                raise StartFailed(process, "exited during start-up")
            if process.ready_url is None or probe(process.ready_url, 1.0)[0]:
                pending.remove(process)
        if pending and time.monotonic() > deadline:
            raise StartFailed(pending[0], f"was not ready after {timeout_s:g} s")
        if pending:
            time.sleep(0.1)


def stop(processes: Sequence[Started], timeout_s: float = 10.0) -> list[Started]:
    """SIGTERM every process group, SIGKILL those left after `timeout_s`.

    Returns the processes that had to be killed.
    """
    for process in processes:
        _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = [p for p in processes if alive(p)]
    for process in killed:
        _signal(process, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in processes:
        _children.pop(process.pid, None)
    return killed


def _signal(process: Started, sig: signal.Signals) -> None:
    if not alive(process):
        return
    try:  # the whole group when it leads one, as `spawn` arranges
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)
    except ProcessLookupError:
        pass


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) from /proc/<pid>/stat, or None when there is no such PID."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The fields after the command name (which may itself hold a ")").
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[19])


def _start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]
