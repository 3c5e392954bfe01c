"""How a command's failure reaches the user: one line on stderr, cause then fix.

`AtalaiaGroup` runs every `atalaia` command and turns the failures an operator
can fix (a bad setting, a database missing or down, a port in use, a folder not
writable) into `CommandFailed`; an unexpected exception is a bug and
keeps its traceback. No line quotes a setting's value: it may be a secret.
"""

from __future__ import annotations

import errno
import re
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from atalaia.errors import AtalaiaError, DependencyUnavailable

FIX_URL = "fix ATALAIA_DATABASE_URL"
_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


class CommandFailed(Exception):
    """A failure the user can fix; `str()` is the line to print."""

    def __init__(self, line: str, *, exit_code: int = 1) -> None:
        super().__init__(line)
        self.exit_code = exit_code


class AtalaiaGroup(TyperGroup):
    """The root command: prints a fixable failure as one line and exits ≠ 0."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            failure = exc if isinstance(exc, CommandFailed) else explain(exc)
            if failure is None:
                raise
        typer.echo(f"atalaia: {failure}", err=True)
        raise typer.Exit(failure.exit_code)


def explain(exc: Exception) -> CommandFailed | None:
    """The one-line failure for `exc`, or None when it is a bug."""
    if isinstance(exc, ValidationError):
        return CommandFailed(_settings_line(exc), exit_code=2)
    if isinstance(exc, DependencyUnavailable) and exc.name == "database":
        return database_failure(exc)
    if isinstance(exc, AtalaiaError):
        return CommandFailed(exc.detail)
    if isinstance(exc, PermissionError):
        return CommandFailed(
            f"permission denied on {exc.filename}: run as its owner, or set "
            "ATALAIA_HOME to a folder you may write"
        )
    return None


def _settings_line(exc: ValidationError) -> str:
    """`bad setting ATALAIA_X: why`, for each refused setting (never its value)."""
    reasons = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        loc = error["loc"]
        reasons.append(f"ATALAIA_{str(loc[0]).upper()}: {message}" if loc else message)
    return f"bad setting: {'; '.join(reasons)}"


def port_failure(exc: OSError, *, host: str, port: int, option: str) -> CommandFailed:
    """Why (host, port) could not be listened on, and which option to change."""
    if exc.errno == errno.EADDRINUSE:
        return CommandFailed(
            f"port {port} on {host} is in use (another atalaia?): stop what "
            f"listens there, or choose another port with {option}"
        )
    return CommandFailed(
        f"cannot listen on {host}:{port} ({exc.strerror}): choose another {option}"
    )


class DatabaseUnreachable(CommandFailed):
    """No answer from the database (down, or a wrong host or port)."""


def database_failure(exc: DependencyUnavailable) -> CommandFailed:
    """Why the database refused or failed a connection (the driver's error that
    caused `exc`), and what to do."""
    detail = " ".join(str(exc.__cause__ or exc.detail).split())
    if missing := _MISSING_DATABASE.search(detail):
        name = missing["name"]
        return CommandFailed(
            f"the database {name} does not exist: create it (`createdb {name}`), "
            f"then `atalaia db upgrade`; or {FIX_URL}"
        )
    if "authentication failed" in detail:
        return CommandFailed(f"the database refused the login ({detail}): {FIX_URL}")
    return DatabaseUnreachable(
        f"cannot reach the database ({detail}): start it, or {FIX_URL}"
    )
