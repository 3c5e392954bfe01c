"""The embedded server keeps its home private: readings, models and secrets."""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path

from fastapi.testclient import TestClient

from atalaia.api.common.auth import Role
from atalaia.cli.serve import ensure_admin_token
from atalaia.embedded import create_embedded_app
from atalaia.settings import Settings
from fixtures.api import bearer, inline_body, promote, train


def _modes(home: Path) -> dict[str, str]:
    """Every path under `home` (and `home` itself) → its permission bits, octal;
    a file gone meanwhile (a snapshot's temporary file, renamed) is left out."""
    modes = {}
    for path in [home, *home.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):
            modes[str(path.relative_to(home))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return modes


def test_every_path_under_home_is_private_after_training(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, log_json=False)  # the default SQLite file in home
    ensure_admin_token(settings)
    headers = bearer(settings, Role.ADMIN)
    with TestClient(create_embedded_app(settings)) as client:
        body = inline_body()
        ingested = client.post("/api/v1/series/s1/points", json=body, headers=headers)
        assert ingested.status_code == 200, ingested.text
        job = train(client, "s1", headers)  # inline: its payload is an artifact
        assert job["status"] == "succeeded", job
        promote(client, "s1", job["model_version"], headers)
        modes = _modes(home)  # while SQLite's -wal and -shm files exist

    modes |= _modes(home)  # and the inference snapshot, written at shutdown
    expected = {"atalaia.db", "atalaia.db-wal", "atalaia.db-shm", "admin-token",
                "jwt-secret", "inference-snapshot.npz",
                "inference-snapshot-streams.npz", "artifacts"}  # fmt: skip
    assert expected <= set(modes)
    assert any(name.startswith("artifacts/") for name in modes)
    wrong = {
        name: mode
        for name, mode in modes.items()
        if mode != ("0o700" if (home / name).is_dir() else "0o600")
    }
    assert wrong == {}
