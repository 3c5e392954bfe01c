"""Every failure of the command line: one line on stderr (cause and fix), exit ≠ 0.

Read-only commands create nothing: no folder, no database file, no secret.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from atalaia.cli import app
from fixtures.db import BACKENDS, sqlite_url, with_database

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("workdir")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder and no ATALAIA_* variable from the outside."""
    monkeypatch.chdir(tmp_path)
    for name in ("ATALAIA_HOME", "ATALAIA_DATABASE_URL", "ATALAIA_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture(params=BACKENDS)
def missing_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL whose database does not exist, on each backend."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "nowhere" / "atalaia.db")
    admin_url: str = request.getfixturevalue("postgres_admin")
    return with_database(admin_url, "atalaia_no_such_database")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _one_line_failure(result: Result, *needles: str) -> str:
    """The single stderr line of a failed command, holding every needle."""
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def _created(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


class TestDatabase:
    def test_info_on_a_missing_database_fails_and_creates_nothing(
        self, workdir: Path, missing_database_url: str
    ) -> None:
        env = {"ATALAIA_DATABASE_URL": missing_database_url}

        result = runner.invoke(app, ["db", "info"], env=env)

        line = _one_line_failure(result, "does not exist")
        assert "atalaia db upgrade" in line or "createdb" in line
        assert _created(workdir) == []

    def test_info_in_an_empty_folder_creates_nothing(self, workdir: Path) -> None:
        result = runner.invoke(app, ["db", "info"])

        _one_line_failure(result, ".atalaia/atalaia.db", "atalaia db upgrade")
        assert _created(workdir) == []

    def test_upgrade_names_an_unreachable_server(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = sock.getsockname()[1]
        url = f"postgresql://atalaia@127.0.0.1:{closed}/atalaia"

        result = runner.invoke(
            app, ["db", "upgrade"], env={"ATALAIA_DATABASE_URL": url}
        )

        _one_line_failure(result, "cannot reach the database", "ATALAIA_DATABASE_URL")

    @pytest.mark.parametrize("url", ["nonsense", "mysql://u:pw@host/db"])
    def test_names_a_bad_url_without_its_password(self, url: str) -> None:
        result = runner.invoke(app, ["db", "info"], env={"ATALAIA_DATABASE_URL": url})

        line = _one_line_failure(result, "ATALAIA_DATABASE_URL")
        assert "pw" not in line


class TestSettings:
    def test_a_bad_setting_is_named(self) -> None:
        env = {"ATALAIA_DB_POOL_SIZE": "many"}

        result = runner.invoke(app, ["db", "info"], env=env)

        _one_line_failure(result, "ATALAIA_DB_POOL_SIZE")
        assert "many" not in result.stderr

    def test_a_refused_secret_is_never_printed(self, workdir: Path) -> None:
        env = {"ATALAIA_ENVIRONMENT": "production", "ATALAIA_JWT_SECRET": "short1234"}

        result = runner.invoke(
            app, ["token", "create", "--role", "viewer", "--subject", "x"], env=env
        )

        _one_line_failure(result, "ATALAIA_JWT_SECRET", "openssl rand -hex 32")
        assert "short1234" not in result.output
        assert _created(workdir) == []

    def test_production_refuses_auth_disabled(self) -> None:
        env = {"ATALAIA_ENVIRONMENT": "production", "ATALAIA_AUTH_ENABLED": "false"}

        result = runner.invoke(app, ["serve"], env=env)

        _one_line_failure(result, "ATALAIA_AUTH_ENABLED")


class TestServe:
    def test_a_busy_port_is_one_line_before_anything_is_written(
        self, workdir: Path, busy_port: int
    ) -> None:
        result = runner.invoke(app, ["serve", "--port", str(busy_port)])

        line = _one_line_failure(result, str(busy_port), "in use", "--port")
        assert "serving on" not in result.output
        assert "serving on" not in line
        assert _created(workdir) == []

    def test_a_missing_postgresql_database_is_one_line(
        self, postgres_admin: str
    ) -> None:
        # (`atalaia serve` creates a missing SQLite database.)
        url = with_database(postgres_admin, "atalaia_no_such_database")
        env = {"ATALAIA_DATABASE_URL": url}

        result = runner.invoke(app, ["serve", "--role", "inference"], env=env)

        _one_line_failure(result, "does not exist", "createdb")


class TestReadOnly:
    @pytest.mark.parametrize("command", [["status"], ["down"], ["db", "info"]])
    def test_creates_nothing_in_an_empty_folder(
        self, workdir: Path, command: list[str]
    ) -> None:
        result = runner.invoke(app, command)

        _one_line_failure(result)
        assert _created(workdir) == []


def _commands(command: object, path: list[str]) -> Iterator[list[str]]:
    yield path
    subcommands: dict[str, object] = getattr(command, "commands", {})
    for name, sub in subcommands.items():
        yield from _commands(sub, [*path, name])


def test_no_help_shows_a_flag_as_taking_a_value() -> None:
    root = typer.main.get_command(app)
    paths = list(_commands(root, []))
    assert len(paths) > 10

    for path in paths:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output
        assert "BOOLEAN" not in result.output


class TestWorker:
    def test_a_missing_database_is_one_line(self, missing_database_url: str) -> None:
        env = {
            "ATALAIA_DATABASE_URL": missing_database_url,
            "ATALAIA_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        }

        result = runner.invoke(app, ["worker"], env=env)

        _one_line_failure(result, "does not exist")


class TestScheduler:
    def test_a_missing_database_is_one_line(self, missing_database_url: str) -> None:
        env = {"ATALAIA_DATABASE_URL": missing_database_url}

        result = runner.invoke(app, ["scheduler", "--once", "drift"], env=env)

        _one_line_failure(result, "does not exist")

    def test_a_busy_metrics_port_is_one_line(
        self, database_url: str, busy_port: int
    ) -> None:
        env = {"ATALAIA_DATABASE_URL": database_url}

        result = runner.invoke(
            app, ["scheduler", "--metrics-port", str(busy_port)], env=env
        )

        _one_line_failure(result, str(busy_port), "in use", "--metrics-port")
