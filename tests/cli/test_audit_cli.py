"""`atalaia token create` writes its `token.create` entry; `atalaia audit
list` reads the log from a training service process."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.repositories import AuditEntry, AuditLog
from atalaia.adapters.db.tables import AuditRow
from atalaia.api.common.auth import Role
from atalaia.api.common.sign_ins import fingerprint
from atalaia.cli import app
from atalaia.cli.serve import ensure_admin_token
from atalaia.settings import Settings
from fixtures.training_process import ATALAIA, training_process

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_creating_a_token_records_its_fingerprint_never_the_token(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"ATALAIA_HOME": str(tmp_path / "home"), "ATALAIA_DATABASE_URL": url}

    result = CliRunner().invoke(
        app, ["token", "create", "--role", "viewer", "--subject", "vic"], env=env
    )

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        [row] = session.scalars(select(AuditRow)).all()
    engine.dispose()
    assert (row.action, row.target, row.actor[:4]) == ("token.create", "vic", "cli:")
    assert row.detail == {
        "role": "viewer",
        "expires_at": row.detail["expires_at"],
        "fingerprint": fingerprint(token, {}),
    }
    assert token not in json.dumps(row.detail)
    assert '"event": "audit"' in result.stderr  # the log line, on stderr


def test_a_limited_token_and_the_first_admin_token_are_recorded(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"ATALAIA_HOME": str(tmp_path / "home"), "ATALAIA_DATABASE_URL": url}
    argv = ["token", "create", "--role", "viewer", "--subject", "lia"]

    made = CliRunner().invoke(app, [*argv, "--group", "b", "--group", "a"], env=env)
    path, created = ensure_admin_token(
        Settings(home=tmp_path / "home", database_url=url)
    )

    assert made.exit_code == 0, made.output
    assert created
    admin = Path(path).read_text().strip()
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        rows = session.scalars(select(AuditRow).order_by(AuditRow.id)).all()
    engine.dispose()
    assert [(r.action, r.target) for r in rows] == [
        ("token.create", "lia"),
        ("token.create", "admin"),
    ]
    assert rows[0].detail["groups"] == ["a", "b"]
    assert rows[1].detail["fingerprint"] == fingerprint(admin, {})
    assert rows[1].detail["role"] == "admin"
    assert "groups" not in rows[1].detail


@pytest.fixture
def training(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A training service on a log of three entries; an admin's environment."""

    def fill(sessions: sessionmaker[Session]) -> None:
        with sessions() as session:
            for actor, action in [("ana", "model.registered"), ("bea", "promote"),
                                  ("ana", "model.promoted")]:  # fmt: skip
                AuditLog(session).append(
                    AuditEntry(actor, action, "pump_1_x/v1", address="10.0.0.9",
                               request_id="r1", at=AT)
                )  # fmt: skip
            session.commit()

    with training_process(tmp_path, Role.ADMIN, fill) as env:
        yield env


def audit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATALAIA, "audit", "list", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_lists_entries_by_the_routes_filters(training: dict[str, str]) -> None:
    lines = audit(training, "--actor", "ana", "--action", "model.")
    paged = audit(training, "--action", "model.", "--action", "promote", "--limit", "1")
    as_json = audit(training, "--actor", "bea", "--json")
    refused = audit(training, "--action", "no way")

    assert lines.returncode == 0, lines.stderr
    assert lines.stdout.splitlines() == [
        f"2026-12-03T12:00:00Z\tana\t{action}\tpump_1_x/v1\t10.0.0.9\tr1"
        for action in ("model.promoted", "model.registered")
    ]
    assert len(paged.stdout.splitlines()) == 1
    assert "more: --cursor 3" in paged.stderr
    assert json.loads(as_json.stdout)["action"] == "promote"
    assert refused.returncode != 0
    assert "audit_action" in refused.stderr
