"""The console with a token limited to sensor groups: it lands on its sensors,
is offered only what the server lets it see (never a fleet-wide view, which
would answer 403 `series_access`), and is told why when it opens one by hand;
a full token's console is unchanged."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from atalaia.api.common.auth import Role
from console.conftest import SITE, Platform, ready, signed_in, visit
from fixtures.browser import blocking_violations, screenshot

LINE = frozenset({"line-1"})  # demo_sensor_001 only
NAV = ["Fleet", "Incidents", "Sites", "Training", "Models", "Alerts"]
FLEET_WIDE = "#/models"  # a page of fleet-wide views only
NARROW = {"width": 375, "height": 800}
CRAWLED = 80  # pages at most: the demo's fleet is small


def _nav(page: Page) -> list[str]:
    return page.locator("#nav a:visible").all_inner_texts()


def _links(page: Page) -> list[str]:
    """The console's routes the page shows links to."""
    hrefs: list[str] = page.locator("a[href^='#/']:visible").evaluate_all(
        "links => links.map((a) => a.getAttribute('href'))"
    )
    return hrefs


def _crawl(page: Page, platform: Platform, start: str) -> list[str]:
    """Every route a user reaches by following links from `start`, each
    visited: loaded, titled, without an error."""
    seen: list[str] = []
    todo = [start]
    while todo and len(seen) < CRAWLED:
        route = todo.pop(0)
        if route not in seen:
            visit(page, platform, route)
            seen.append(route)
            todo += _links(page)
    assert not [r for r in todo if r not in seen], "more pages than CRAWLED"
    return seen


@pytest.mark.parametrize("width", ["wide", "narrow"])
def test_a_limited_token_lands_on_its_sensors_with_its_groups_named(
    chromium: Browser, platform: Platform, width: str
) -> None:
    size = NARROW if width == "narrow" else {}
    page, problems = signed_in(
        chromium, platform.limited_to(LINE), Role.DATA_SCIENTIST, **size
    )

    visit(page, platform, "#/fleet")
    expect(page.locator("#who .badge-groups")).to_have_text("Sensor groups: line-1")
    sensor = page.get_by_role("main").get_by_role
    expect(sensor("link", name="demo_sensor_001", exact=True)).to_be_visible()
    expect(sensor("link", name="demo_sensor_002", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Report (PDF)")).to_have_count(0)
    expect(page.get_by_role("region", name="Stored reports")).to_have_count(0)
    screenshot(page, f"limited-landing-{width}")
    if width == "wide":
        assert _nav(page) == [n for n in NAV if n != "Models"]
    assert problems.take() == []
    assert blocking_violations(page) == []
    root = "document.documentElement"
    assert page.evaluate(f"{root}.scrollWidth - {root}.clientWidth") <= 0


def test_no_page_a_limited_token_can_reach_is_refused_it(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform.limited_to(LINE), Role.DATA_SCIENTIST)

    reached = _crawl(page, platform, "#/fleet")

    assert problems.take() == []  # no answer of 400 or above, no console error
    assert FLEET_WIDE not in reached
    assert {
        "#/incidents", "#/sites", f"#/sites/{SITE}", "#/training", "#/alerts",
        "#/sensors/demo_sensor_001", "#/series/demo_sensor_001_radial",
    } <= set(reached)  # fmt: skip
    assert any(r.startswith("#/incidents/") for r in reached)
    assert not [r for r in reached if "demo_sensor_002" in r]
    visit(page, platform, "#/training")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_role("heading", name="Batches")).to_have_count(0)
    screenshot(page, "limited-training")
    visit(page, platform, "#/alerts")
    expect(page.get_by_role("heading", name="Rules")).to_be_visible()
    expect(page.get_by_role("heading", name="Recent notifications")).to_have_count(0)
    screenshot(page, "limited-alerts")
    assert problems.take() == []


def test_a_fleet_wide_page_opened_by_hand_says_why_it_is_not_shown(
    chromium: Browser, platform: Platform
) -> None:
    groups = frozenset({"line-1", "line-2"})
    page, problems = signed_in(chromium, platform.limited_to(groups), Role.VIEWER)

    visit(page, platform, FLEET_WIDE)

    note = page.get_by_role("note")
    expect(note).to_contain_text(
        "Your token covers sensor groups line-1, line-2; this view is fleet-wide."
    )
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    screenshot(page, "limited-fleet-wide")
    assert problems.take() == []  # the console did not ask for it
    assert blocking_violations(page) == []
    note.get_by_role("link", name="Incidents").click()
    ready(page, "#/incidents")


def test_a_group_the_platform_does_not_configure_is_named_as_such(
    chromium: Browser, platform: Platform
) -> None:
    groups = frozenset({"line-1", "ghost"})
    page, problems = signed_in(chromium, platform.limited_to(groups), Role.VIEWER)

    expect(page.locator("#who .badge-groups")).to_have_text(
        "Sensor groups: ghost (not configured), line-1"
    )
    assert problems.take() == []


def test_a_full_token_is_offered_every_page_and_section(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.ADMIN)

    visit(page, platform, "#/fleet")
    assert _nav(page) == NAV
    expect(page.locator("#who .badge-groups")).to_have_count(0)
    expect(page.get_by_role("button", name="Report (PDF)")).to_be_visible()
    expect(page.get_by_role("region", name="Stored reports")).to_be_visible()
    visit(page, platform, FLEET_WIDE)
    expect(page.get_by_role("note")).to_have_count(0)
    waiting = page.get_by_role("heading", name="Staging candidates waiting")
    expect(waiting).to_be_visible()
    visit(page, platform, "#/training")
    expect(page.get_by_role("heading", name="Batches")).to_be_visible()
    visit(page, platform, "#/alerts")
    expect(page.get_by_role("heading", name="Recent notifications")).to_be_visible()
    assert problems.take() == []
