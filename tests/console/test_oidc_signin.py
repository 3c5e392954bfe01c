"""Signing in to the console through a real OpenID Connect provider: the
authorization code flow with PKCE in Chromium, the token exchanged from the
browser across origins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from atalaia.cli.demo import embedded_server
from atalaia.settings import Settings
from console.conftest import ready
from fixtures.browser import Problems, open_page, screenshot
from fixtures.oidc_provider import AUDIENCE, CLIENT_ID, OidcProvider


@pytest.fixture
def console_base(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[str]:
    """The platform, trusting the provider, whose client is the console."""
    settings = Settings(
        home=tmp_path, log_json=False, log_level="WARNING",
        oidc_issuer=oidc_provider.issuer, oidc_audience=AUDIENCE,
        oidc_client_id=CLIENT_ID, oidc_provider_name=oidc_provider.name,
    )  # fmt: skip
    with embedded_server(settings) as base:
        oidc_provider.client.redirect_uris.append(f"{base}/console/")
        oidc_provider.allowed_origins.add(base)
        yield base


def _sign_in_as(
    chromium: Browser, provider: OidcProvider, base: str, user: str, route: str
) -> tuple[Page, Problems]:
    """Open `route`, be sent to sign in, and approve as `user` at the provider."""
    page, problems = open_page(chromium)
    page.goto(f"{base}/console/{route}")
    page.wait_for_url("**/#/signin")
    page.get_by_role("button", name=f"Sign in with {provider.name}").click()
    page.wait_for_url(f"{provider.issuer}/authorize?**")
    expect(page.get_by_role("heading")).to_have_text(f"Sign in to {provider.name}")
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Continue").click()
    return page, problems


def test_sign_in_with_the_provider_then_sign_out(
    chromium: Browser, oidc_provider: OidcProvider, console_base: str
) -> None:
    page, problems = _sign_in_as(
        chromium, oidc_provider, console_base, "leo", "#/models"
    )

    page.wait_for_url(f"{console_base}/console/#/models")  # no code left in it
    page.locator("#who").get_by_text("ml engineer", exact=True).wait_for()
    ready(page, "#/models")
    screenshot(page, "oidc-signed-in")
    kept = page.evaluate("sessionStorage.getItem('atalaia.token')")
    claims = jwt.decode(kept, options={"verify_signature": False})
    assert (claims["aud"], claims["sub"]) == (AUDIENCE, "leo")  # the access token
    assert problems.take() == []

    page.locator("#who").get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/#/signin")
    assert page.evaluate("sessionStorage.getItem('atalaia.token')") is None


def test_the_sign_in_page_offers_the_provider_and_the_token(
    chromium: Browser, oidc_provider: OidcProvider, console_base: str
) -> None:
    page, problems = open_page(chromium)
    page.goto(f"{console_base}/console/#/signin")
    ready(page, "#/signin")

    expect(
        page.get_by_role("button", name=f"Sign in with {oidc_provider.name}")
    ).to_be_visible()
    expect(page.get_by_label("Token")).to_be_visible()
    screenshot(page, "oidc-signin")
    assert problems.take() == []
    serious = [
        v["id"]
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def test_an_account_without_an_atalaia_role_is_told_why(
    chromium: Browser, oidc_provider: OidcProvider, console_base: str
) -> None:
    page, problems = _sign_in_as(chromium, oidc_provider, console_base, "eva", "")

    expect(page.get_by_role("alert")).to_contain_text("names no atalaia role")
    assert page.evaluate("sessionStorage.getItem('atalaia.token')") is None
    assert [p for p in problems.take() if "403" not in p] == []


def test_an_answer_to_another_request_is_refused(
    chromium: Browser, console_base: str
) -> None:
    page, problems = open_page(chromium)
    page.goto(f"{console_base}/console/?code=stolen&state=forged")

    expect(page.get_by_role("alert")).to_contain_text("does not match the request")
    assert "code=" not in page.url
    assert page.evaluate("sessionStorage.getItem('atalaia.token')") is None
    assert problems.take() == []
