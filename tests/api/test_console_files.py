"""The console's files: served from the package, complete, under a strict policy."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from atalaia.console import STATIC

IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*["'`](\.{1,2}/[^"'`$]+)["'`]""")
LINKED = re.compile(r'''(?:src|href)="([^"#:]+)"''')


def test_the_root_sends_to_the_console(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)

    assert answer.status_code == 307
    assert answer.headers["location"] == "/console/"


def test_the_console_page_is_served_under_a_strict_policy(client: TestClient) -> None:
    page = client.get("/console/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"


def test_every_file_the_console_links_or_imports_is_served(client: TestClient) -> None:
    html = (STATIC / "index.html").read_text()
    wanted = {f"/console/{path}" for path in LINKED.findall(html)}
    for module in STATIC.glob("js/**/*.js"):
        for target in IMPORT.findall(module.read_text()):
            resolved = (module.parent / target).resolve().relative_to(STATIC)
            wanted.add(f"/console/{resolved.as_posix()}")
    pages = {p.stem for p in (STATIC / "js" / "pages").glob("*.js")}
    routes = set(re.findall(r'"(\w+)"\],', (STATIC / "js" / "app.js").read_text()))

    assert routes == pages  # every route has its page module and no module is orphaned
    wanted |= {f"/console/js/pages/{page}.js" for page in pages}  # imported by name
    assert len(wanted) > 15
    for path in sorted(wanted):
        assert client.get(path).status_code == 200, path


def test_files_are_gzipped_and_revalidated(client: TestClient) -> None:
    first = client.get("/console/vendor/uplot/uPlot.iife.min.js")
    again = client.get(
        "/console/vendor/uplot/uPlot.iife.min.js",
        headers={"If-None-Match": first.headers["etag"]},
    )

    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["cache-control"] == "no-cache"
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/console/nothing.js", "/console/../pyproject.toml"])
def test_a_missing_file_is_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404
