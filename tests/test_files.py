"""Private folders and files, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from atalaia.cluster.supervisor import ProcessSpec, spawn, stop
from atalaia.files import make_private_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_makes_every_missing_folder_private_and_leaves_existing_ones(
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o755)

    make_private_dir(tmp_path / "a" / "b" / "c")

    assert [_mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    assert _mode(tmp_path) == 0o755


def test_a_spawned_process_log_is_private(tmp_path: Path) -> None:
    started = spawn(ProcessSpec(name="true", argv=("true",)), tmp_path / "logs")
    stop([started])

    assert (_mode(tmp_path / "logs"), _mode(Path(started.log))) == (0o700, 0o600)
    assert os.access(started.log, os.R_OK)
