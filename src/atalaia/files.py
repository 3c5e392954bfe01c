"""Folders and files only their owner may read: readings, models and secrets.

Modes are given where each path is made, not through the process umask, which
is global to every thread and library. SQLite copies its database file's mode
to the -wal and -shm files it makes beside it, so creating that file 0600
first covers all three.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private_dir(path: Path) -> None:
    """Create `path` and any missing parent 0700; existing folders are left as
    they are (the operator chose their mode)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # made by another process in between
            pass


def touch_private(path: Path) -> None:
    """Create the empty file `path` 0600 (and its folder 0700) unless it exists."""
    make_private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))


def open_private_append(path: Path) -> int:
    """A descriptor appending to `path`, created 0600 (and its folder 0700)."""
    make_private_dir(path.parent)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)


def write_private_npz(path: Path, **arrays: Any) -> None:
    """Write `arrays` to the .npz file `path`, 0600, atomically: a reader sees
    the whole old file or the whole new one."""
    make_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".npz-")  # 0600
    with os.fdopen(fd, "wb") as out:
        np.savez(out, **arrays)
    os.replace(tmp, path)
