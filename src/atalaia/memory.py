"""Giving freed memory back to the operating system.

A warm load builds the fleet's table from hundreds of MB of rows read and
decoded, then frees them; glibc's allocator keeps most of those pages for
later allocations, so the process would go on holding three times the table.
`malloc_trim` returns them. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


def return_free_memory() -> None:
    """Give the pages the allocator holds free back to the system (glibc)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim
