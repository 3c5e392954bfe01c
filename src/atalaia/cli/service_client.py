"""Calling the training service's API from a command: its URL and token
options, a client, and one call that turns an error answer into one line.

The service is at ATALAIA_TRAINING_URL (`--url`); the token is `--token`,
else ATALAIA_TOKEN, else the embedded server's `<home>/admin-token`. An https
URL is verified against the system's CAs and ATALAIA_TLS_CA_FILE (default: the
self-signed certificate `atalaia up` made).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atalaia.cli.failures import CommandFailed

if TYPE_CHECKING:
    import httpx

Url = Annotated[
    str | None,
    typer.Option(
        help="The training service (default: ATALAIA_TRAINING_URL).", show_default=False
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="ATALAIA_TOKEN",
        help="A bearer token (default: the embedded server's admin token).",
        show_default=False,
    ),
]


TIMEOUT_S = 120.0  # a fleet's selection is frozen before the answer


def training_client(
    url: str | None, token: str | None, timeout_s: float = TIMEOUT_S
) -> httpx.Client:
    import httpx

    from atalaia.settings import load_settings
    from atalaia.tls import client_context

    settings = load_settings()
    bearer = token or _admin_token(settings.home)
    return httpx.Client(
        base_url=url or settings.training_url,
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=timeout_s,
        verify=client_context(settings),
    )


def _admin_token(home: Path) -> str:
    path = home / "admin-token"
    if not path.exists():
        raise CommandFailed(
            f"no token: give --token (or ATALAIA_TOKEN), or run where {path} exists"
        )
    return path.read_text().strip()


def call(
    client: httpx.Client,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON answer; CommandFailed on an error answer or no answer."""
    return json_of(answered(client, method, path, json=body, params=params))


def answered(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    kept: Collection[int] = (),
    **request: Any,
) -> httpx.Response:
    """The answer (a file's, say); CommandFailed on an error answer (but those
    of a status in `kept`, returned) or no answer."""
    import httpx

    try:
        answer = client.request(method, path, **request)
    except httpx.HTTPError as exc:
        raise CommandFailed(
            f"cannot reach the training service at {client.base_url} "
            f"({type(exc).__name__}): start it, or set --url"
        ) from None
    if answer.status_code >= 400 and answer.status_code not in kept:
        found = json_of(answer)
        rule = found.get("rule", "")
        raise CommandFailed(
            f"HTTP {answer.status_code} {rule}: {found.get('detail', answer.text)}"
        )
    return answer


def json_of(answer: httpx.Response) -> dict[str, Any]:
    try:
        found: dict[str, Any] = answer.json()
    except ValueError:  # not JSON: a proxy's page, say
        return {}
    return found
