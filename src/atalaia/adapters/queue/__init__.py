"""Job executors behind the core's JobQueue interface."""

from atalaia.adapters.queue.inprocess import InProcessExecutor
from atalaia.adapters.queue.turns import WriteTurns

__all__ = ["InProcessExecutor", "WriteTurns"]
