"""Job executors behind the core's JobQueue interface."""

from atalaia.adapters.queue.inprocess import InProcessExecutor

__all__ = ["InProcessExecutor"]
