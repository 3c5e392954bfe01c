"""The console at /console/ (and / redirects there): static files from the
package, gzipped, revalidated by ETag, under a strict content security policy."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from atalaia.console import STATIC

PATH = "/console"
# Scripts and styles only from the platform itself; uPlot styles elements from
# script (allowed), CSV downloads are blob: links, and so are floor plans (read
# with the token, shown from memory).
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),  # revalidate: an upgrade shows at once
]


class ConsoleFiles:
    """The package's static files with the console's headers."""

    def __init__(self) -> None:
        self._files = GZipMiddleware(StaticFiles(directory=STATIC, html=True))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(HEADERS)
            await send(message)

        await self._files(scope, receive, with_headers)


def install_console(app: FastAPI) -> None:
    """Serve the console at /console/ and send / there."""

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PATH}/")

    app.mount(PATH, ConsoleFiles(), name="console")
