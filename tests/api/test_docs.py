"""/docs works offline: every asset it loads comes from the service itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from atalaia.settings import Settings
from fixtures.api import SERVICES

# src="…", href="…" and swagger-ui's `url: '…'` (the OpenAPI document)
URL = re.compile(r"""(?:src|href)=["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest, settings: Settings) -> TestClient:
    # No lifespan: the documentation pages need no database, queue or model.
    return TestClient(SERVICES[request.param](settings))


def test_docs_load_only_same_origin_assets(service: TestClient) -> None:
    page = service.get("/docs")
    assert page.status_code == 200

    urls = [a or b for a, b in URL.findall(page.text)]
    assert len(urls) == 4  # favicon, stylesheet, script, OpenAPI document
    assert "http" not in page.text.replace("http-equiv", "")
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = service.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url


def test_the_oauth2_redirect_page_is_served(service: TestClient) -> None:
    page = service.get("/docs/oauth2-redirect")

    assert page.status_code == 200
    assert "http" not in page.text.lower().replace("http-equiv", "")


def test_redoc_is_not_served(service: TestClient) -> None:
    answer = service.get("/redoc")

    assert answer.status_code == 404
    assert answer.json()["rule"] == "route_exists"
