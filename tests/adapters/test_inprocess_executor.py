"""The embedded executor: runs each dispatched job once, survives crashes, sweeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from atalaia.adapters.queue import InProcessExecutor


class Recorder:
    def __init__(self, *, failing: str = "") -> None:
        self.ran: list[str] = []
        self.failing = failing
        self.gate = threading.Event()
        self.done = threading.Semaphore(0)

    def __call__(self, job_id: str) -> None:
        self.gate.wait(5)
        self.ran.append(job_id)
        self.done.release()
        if job_id == self.failing:
            raise RuntimeError("boom")

    def wait(self, n: int) -> None:
        for _ in range(n):
            assert self.done.acquire(timeout=5)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(failing="bad")


@pytest.fixture
def executor(recorder: Recorder) -> Iterator[InProcessExecutor]:
    orphans = ["orphan", "a"]
    ex = InProcessExecutor(recorder, find_orphans=lambda: orphans, sweep_every_s=3600)
    ex.start()
    yield ex
    recorder.gate.set()
    ex.stop()


class TestInProcessExecutor:
    def test_a_job_dispatched_twice_while_waiting_runs_once(
        self, executor: InProcessExecutor, recorder: Recorder
    ) -> None:
        executor.dispatch("a")
        executor.dispatch("a")
        recorder.gate.set()

        executor.dispatch("b")
        recorder.wait(2)

        assert sorted(recorder.ran) == ["a", "b"]

    def test_keeps_working_after_a_job_raises(
        self, executor: InProcessExecutor, recorder: Recorder
    ) -> None:
        recorder.gate.set()

        executor.dispatch("bad")
        executor.dispatch("next")
        recorder.wait(2)

        assert recorder.ran == ["bad", "next"]
        assert executor.alive()

    def test_sweep_dispatches_orphans_it_does_not_hold(
        self, executor: InProcessExecutor, recorder: Recorder
    ) -> None:
        executor.dispatch("a")  # held: waiting at the gate

        swept = executor.sweep_once()
        recorder.gate.set()
        recorder.wait(2)

        assert swept == 1
        assert sorted(recorder.ran) == ["a", "orphan"]
