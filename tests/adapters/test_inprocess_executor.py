"""The embedded executor: runs each dispatched job once, in chunks; survives crashes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from atalaia.adapters.queue import InProcessExecutor


class Recorder:
    """A run function that records the chunks it gets, once `gate` is open."""

    def __init__(self, *, failing: str = "") -> None:
        self.chunks: list[list[str]] = []
        self.failing = failing
        self.gate = threading.Event()
        self.done = threading.Semaphore(0)
        self.gate_stuck = False  # a run found the gate shut for 5 s

    def __call__(self, chunk: list[str]) -> None:
        self.gate_stuck |= not self.gate.wait(5)
        self.chunks.append(chunk)
        self.done.release()
        if self.failing in chunk:
            raise RuntimeError("boom")

    @property
    def ran(self) -> list[str]:
        return [job_id for chunk in self.chunks for job_id in chunk]

    def wait(self, chunks: int) -> None:
        for _ in range(chunks):
            assert self.done.acquire(timeout=10)
        assert not self.gate_stuck, "a chunk ran before its gate was opened"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(failing="bad")


@pytest.fixture
def executor(recorder: Recorder) -> Iterator[InProcessExecutor]:
    orphans = ["orphan", "a"]
    ex = InProcessExecutor(
        recorder, chunk_size=3, find_orphans=lambda: orphans, sweep_every_s=3600
    )
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

    def test_runs_jobs_dispatched_together_in_chunks(
        self, executor: InProcessExecutor, recorder: Recorder
    ) -> None:
        executor.dispatch_many([f"j{i}" for i in range(7)])
        assert executor.depth() == 7
        recorder.gate.set()
        recorder.wait(3)

        assert recorder.chunks == [["j0", "j1", "j2"], ["j3", "j4", "j5"], ["j6"]]
        assert executor.depth() == 0

    def test_leaves_out_jobs_it_holds_already(
        self, executor: InProcessExecutor, recorder: Recorder
    ) -> None:
        executor.dispatch("a")
        executor.dispatch_many(["a", "b", "b"])
        recorder.gate.set()
        recorder.wait(2)

        assert recorder.chunks == [["a"], ["b"]]
