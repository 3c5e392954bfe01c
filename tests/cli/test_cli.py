"""The `atalaia` command line, run in-process with Typer's runner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli import app
from atalaia.cli.demo import free_port
from atalaia.cli.serve import (
    ServiceRole,
    create_role_app,
    ensure_admin_token,
    listen,
)
from atalaia.settings import Settings

runner = CliRunner()
ATALAIA = Path(sys.executable).with_name("atalaia")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "ATALAIA_HOME": str(tmp_path / "home"),
        "ATALAIA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }


class TestToken:
    def test_creates_a_token_the_services_accept(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        result = runner.invoke(
            app,
            ["token", "create", "--role", "ml_engineer", "--subject", "ana"],
            env=env,
        )

        assert result.exit_code == 0, result.output
        settings = Settings(home=tmp_path / "home")
        principal = authenticator_for(settings).authenticate(result.stdout.strip())
        assert (principal.subject, principal.role) == ("ana", Role.ML_ENGINEER)

    def test_refuses_an_unknown_role(self, env: dict[str, str]) -> None:
        result = runner.invoke(
            app, ["token", "create", "--role", "root", "--subject", "x"], env=env
        )

        assert result.exit_code == 2
        assert "unknown role" in result.output


class TestDb:
    def test_upgrade_creates_the_schema(self, env: dict[str, str]) -> None:
        result = runner.invoke(app, ["db", "upgrade"], env=env)

        assert result.exit_code == 0, result.output
        tables = inspect(create_engine(env["ATALAIA_DATABASE_URL"])).get_table_names()
        assert {"readings", "model_versions", "training_jobs"} <= set(tables)


class TestServe:
    @pytest.mark.parametrize(
        ("role", "route"),
        [
            (ServiceRole.EMBEDDED, "/api/v1/plot"),
            (ServiceRole.TRAINING, "/api/v1/training/{series_id}"),
            (ServiceRole.INFERENCE, "/api/v1/predict/{series_id}"),
            (ServiceRole.PLOT, "/api/v1/plot"),
            (ServiceRole.HEALTH, "/api/v1/health"),
        ],
    )
    def test_every_role_serves_its_routes_and_probes(
        self, role: ServiceRole, route: str, tmp_path: Path
    ) -> None:
        paths = set(create_role_app(role, Settings(home=tmp_path)).openapi()["paths"])

        assert {"/health", "/ready", route} <= paths

    def test_admin_token_is_written_once(self, tmp_path: Path) -> None:
        settings = Settings(home=tmp_path)

        path, created = ensure_admin_token(settings)
        again, created_again = ensure_admin_token(settings)

        assert (created, created_again) == (True, False)
        assert path == again
        token = Path(path).read_text().strip()
        assert authenticator_for(settings).authenticate(token).role is Role.ADMIN
        assert Path(path).stat().st_mode & 0o077 == 0

    def test_says_where_the_token_is_then_serving_on_once_it_answers(
        self, tmp_path: Path
    ) -> None:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATALAIA_")}
        argv = [str(ATALAIA), "serve", "--port", str(port)]
        with subprocess.Popen(
            argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
        ) as proc:
            try:
                lines = _lines_until(proc, "serving on")
                with socket.create_connection(("127.0.0.1", port)):
                    pass  # bound and accepting when it says so
            finally:
                proc.terminate()

        assert lines == [
            "atalaia: wrote the admin token to .atalaia/admin-token",
            f"atalaia: embedded serving on http://127.0.0.1:{port} (docs: /docs)",
        ]


def _lines_until(proc: subprocess.Popen[str], needle: str) -> list[str]:
    """The lines `proc` wrote on stderr up to the first holding `needle`."""
    assert proc.stderr is not None
    lines: list[str] = []
    while line := proc.stderr.readline():
        if line.startswith("atalaia:"):
            lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    pytest.fail(f"exited ({proc.wait()}) without {needle!r}: {lines}")


def test_served_connections_send_small_answers_at_once() -> None:
    """Accepted connections inherit TCP_NODELAY from the socket `serve` binds:
    without it an answer waits on the client's delayed ACK (p99 of 20–40 ms)."""
    with listen("127.0.0.1", 0) as server:
        with socket.create_connection(server.getsockname()[:2]):
            accepted, _ = server.accept()
            with accepted:
                nodelay = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    assert nodelay == 1
