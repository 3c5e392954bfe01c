"""Freed memory goes back to the system after a large load (glibc)."""

from __future__ import annotations

import sys

import pytest

from atalaia import memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_finds_glibcs_trim_and_returns_freed_pages() -> None:
    assert memory._malloc_trim() is not None
    before = _rss_kb()
    blocks = [bytearray(64 * 1024) for _ in range(4_000)]  # 256 MB in small blocks
    del blocks[:-1]  # freed but kept by the allocator (the last pins the top)
    held = _rss_kb()

    memory.return_free_memory()

    assert held - before > 200_000
    assert _rss_kb() < held - 150_000


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])
