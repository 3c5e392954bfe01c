"""`atalaia backup`, `atalaia backup list|verify` and `atalaia restore` on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.cli import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    """A migrated SQLite platform with one artifact, backups under `backups`."""
    upgrade_database(f"sqlite:///{tmp_path / 'live.db'}")
    LocalArtifactStore(tmp_path / "home" / "artifacts").put("models/s1/a.npz", b"a")
    return {
        "ATALAIA_HOME": str(tmp_path / "home"),
        "ATALAIA_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}",
        "ATALAIA_BACKUP_DIR": str(tmp_path / "backups"),
    }


def test_backs_up_lists_verifies_and_restores(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    made = runner.invoke(app, ["backup"], env=env)
    assert made.exit_code == 0, made.output
    backup = Path(made.stdout.splitlines()[0])

    listed = runner.invoke(app, ["backup", "list"], env=env)
    verified = runner.invoke(app, ["backup", "verify", str(backup)], env=env)
    fresh = env | {
        "ATALAIA_HOME": str(tmp_path / "fresh"),
        "ATALAIA_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
    }
    restored = runner.invoke(app, ["restore", str(backup)], env=fresh)

    assert listed.stdout.startswith(backup.name)
    assert verified.stdout.startswith("ok: ")
    assert restored.exit_code == 0, restored.output
    assert "POST /api/v1/admin/reload" in restored.output
    assert (tmp_path / "fresh" / "artifacts" / "models/s1/a.npz").read_bytes() == b"a"


def test_refuses_to_restore_over_data_in_one_line(env: dict[str, str | None]) -> None:
    backup = Path(runner.invoke(app, ["backup"], env=env).stdout.splitlines()[0])

    refused = runner.invoke(app, ["restore", str(backup)], env=env)

    assert refused.exit_code == 1
    assert refused.stderr.startswith("atalaia: the database holds tables")
    assert "--force" in refused.stderr


def test_needs_a_folder(env: dict[str, str | None]) -> None:
    listed = runner.invoke(
        app, ["backup", "list"], env=env | {"ATALAIA_BACKUP_DIR": None}
    )

    assert listed.exit_code == 1
    assert "ATALAIA_BACKUP_DIR" in listed.output
