"""A real embedded platform with the demo's fleet, and the console in Chromium."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, expect

from atalaia.api.common.auth import Role
from atalaia.api.common.resources import authenticator_for
from atalaia.cli.demo import embedded_server
from atalaia.demo import DEMO_ACTOR, run_demo
from atalaia.settings import Settings
from fixtures.api import wait_for
from fixtures.browser import Problems, open_page

CANDIDATE = "demo_sensor_001_radial"  # gets a Staging version, promoted by a test
WAITING = "demo_sensor_002_radial"  # gets a Staging version nobody promotes
CANARIED = "demo_sensor_002_axial"  # gets a Staging version a test rolls out
FINISHED = {"succeeded", "failed", "cancelled"}
# Sensor groups, one a sensor (a line of a plant), for tokens limited to them.
GROUPS = {"line-1": ["demo_sensor_001"], "line-2": ["demo_sensor_002"]}


@dataclass(frozen=True)
class Platform:
    base: str
    tokens: dict[Role, str]
    settings: Settings

    def limited_to(self, groups: frozenset[str]) -> Platform:
        """The platform with tokens of every role limited to `groups`."""
        issue = authenticator_for(self.settings).issue
        named = "-".join(sorted(groups))
        tokens = {
            role: issue(
                subject=f"{role.label}-of-{named}", role=role, ttl_s=3600, groups=groups
            )
            for role in Role
        }
        return replace(self, tokens=tokens)

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def api(
        self, method: str, path: str, role: Role = Role.ADMIN, **kw: object
    ) -> httpx.Response:
        kw.setdefault("headers", self.headers(role))
        return httpx.request(
            method,
            f"{self.base}/api/v1{path}",
            timeout=30,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The demo's fleet of 2 sensors, served, streamed (so incidents are open),
    and three series with a Staging candidate waiting."""
    home: Path = tmp_path_factory.mktemp("console")
    settings = Settings(
        home=home, log_json=False, log_level="WARNING", rate_limit_per_min=100_000,
        training_min_interval_s=0, access_groups=GROUPS,
    )  # fmt: skip
    issue = authenticator_for(settings).issue
    tokens = {
        role: issue(subject=f"{role.label}-person", role=role, ttl_s=3600)
        for role in Role
    }
    with embedded_server(settings) as base:
        demo_token = issue(subject=DEMO_ACTOR, role=Role.ML_ENGINEER, ttl_s=3600)
        run_demo(base, demo_token, sensors=2, stream_minutes=60, echo=lambda _l: None)
        found = Platform(base, tokens, settings)
        for series_id in (CANDIDATE, WAITING, CANARIED):
            _train_a_candidate(found, series_id)
        _place_the_fleet(found)
        wait_for(lambda: found.api("GET", "/incidents").json()["incidents"] or None)
        yield found


def _train_a_candidate(platform: Platform, series_id: str) -> None:
    """A new Staging version of `series_id`, from its stored week."""
    job = platform.api("POST", f"/training/{series_id}", json={"window_hours": 168})
    assert job.status_code == 202, job.text
    url = f"/training/jobs/{job.json()['job_id']}"
    wait_for(lambda: platform.api("GET", url).json()["status"] in FINISHED or None)
    assert platform.api("GET", url).json()["status"] == "succeeded"


SITE = "demo_porto"
ASSETS = f"""\
id,kind,name,parent,latitude,longitude,x,y
{SITE},site,Porto plant,,41.15,-8.61,,
demo_press,machine,Press 7,{SITE},,,300,200
demo_sensor_001,sensor,Main bearing,demo_press,,,340,170
demo_sensor_002,sensor,Motor,demo_press,,,340,240
"""


def _place_the_fleet(platform: Platform) -> None:
    """The demo's sensors on a machine of a site, and the site's floor plan."""
    imported = platform.api(
        "POST", "/assets/import", content=ASSETS.encode(),
        headers={**platform.headers(Role.ADMIN), "Content-Type": "text/csv"},
    )  # fmt: skip
    assert imported.status_code == 200, imported.text
    plan = io.BytesIO()
    drawing = Image.new("RGB", (640, 400), "white")
    ImageDraw.Draw(drawing).rectangle((200, 120, 460, 300), outline="gray", width=4)
    drawing.save(plan, format="PNG")
    put = platform.api(
        "PUT", f"/sites/{SITE}/floorplan", content=plan.getvalue(),
        headers={**platform.headers(Role.ADMIN), "Content-Type": "image/png"},
    )  # fmt: skip
    assert put.status_code == 200, put.text


def signed_in(
    browser: Browser, platform: Platform, role: Role, **size: int
) -> tuple[Page, Problems]:
    """A page signed in with `role`'s token, on the fleet page."""
    page, problems = open_page(browser, **size)
    page.goto(f"{platform.base}/console/")
    page.wait_for_url("**/#/signin")
    page.get_by_label("Token").fill(platform.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/#/fleet")
    page.locator("#who").get_by_text(
        role.label.replace("_", " "), exact=True
    ).wait_for()
    return page, problems


def ready(page: Page, route: str) -> None:
    """Wait until the console has loaded what `route` (e.g. "#/fleet") shows."""
    page.locator(f'#main[data-ready="{route}"]').wait_for(state="attached")


def visit(page: Page, platform: Platform, route: str) -> None:
    """Open `route`, wait until its page says it is loaded, and check it shows
    a title and no error."""
    page.goto(f"{platform.base}/console/{route}")
    ready(page, route)
    expect(page.locator("main h1")).to_be_visible()
    expect(page.locator("main .failure")).to_have_count(0)
