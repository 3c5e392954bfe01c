"""The console at /console/ (and / redirects there): static files from the
package, gzipped, revalidated by ETag, under a strict content security policy."""

from __future__ import annotations

from functools import lru_cache

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from atalaia.api.common.resources import Resources
from atalaia.console import STATIC

PATH = "/console"


@lru_cache(maxsize=8)
def policy(connect: tuple[str, ...] = ()) -> str:
    """Scripts and styles only from the platform itself; uPlot styles elements
    from script (allowed), CSV downloads are blob: links, and so are floor plans
    (read with the token, shown from memory). `connect`: other origins the
    console calls (the OpenID Connect provider's token endpoint)."""
    sources = " ".join(("'self'", *connect))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob:; "
        f"connect-src {sources}; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


@lru_cache(maxsize=8)
def headers(connect: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy(connect).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-cache"),  # revalidate: an upgrade shows at once
    ]


def _provider_origins(scope: Scope) -> tuple[str, ...]:
    """The OpenID Connect provider's origins, when one is configured."""
    resources: Resources | None = scope.get("state", {}).get("resources")
    oidc = resources.authenticator.oidc if resources is not None else None
    return tuple(oidc.browser_origins()) if oidc is not None else ()


class ConsoleFiles:
    """The package's static files with the console's headers."""

    def __init__(self) -> None:
        self._files = GZipMiddleware(StaticFiles(directory=STATIC, html=True))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = headers(_provider_origins(scope))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(extra)
            await send(message)

        await self._files(scope, receive, with_headers)


def install_console(app: FastAPI) -> None:
    """Serve the console at /console/ and send / there."""

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PATH}/")

    app.mount(PATH, ConsoleFiles(), name="console")
