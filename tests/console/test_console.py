"""The console in a real browser: every page clean and accessible, the
operator's flows, and roles enforced on both sides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.storage import LocalArtifactStore
from atalaia.api.common.auth import Role
from atalaia.services import reports
from atalaia.settings import ReportSubscription
from console.conftest import (
    CANARIED,
    CANDIDATE,
    SITE,
    WAITING,
    Platform,
    ready,
    signed_in,
    visit,
)
from fixtures.api import wait_for
from fixtures.browser import blocking_violations, open_page, screenshot
from fixtures.reports import workbook

FLAT = "demo_flat_001_radial"  # a series the demo does not make
NARROW = {"width": 375, "height": 800}


def _pages(platform: Platform) -> dict[str, str]:
    incident = platform.api("GET", "/incidents").json()["incidents"][0]["id"]
    return {
        "fleet": "#/fleet",
        "incidents": "#/incidents",
        "incident": f"#/incidents/{incident}",
        "series": f"#/series/{CANDIDATE}",
        "sensor": "#/sensors/demo_sensor_001",
        "training": "#/training",
        "models": "#/models",
        "alerts": "#/alerts",
        "sites": "#/sites",
        "site": f"#/sites/{SITE}",
    }


@pytest.mark.parametrize("width", ["wide", "narrow"])
def test_every_page_loads_clean_and_accessible(
    chromium: Browser, platform: Platform, width: str
) -> None:
    size = NARROW if width == "narrow" else {}
    page, problems = signed_in(chromium, platform, Role.ADMIN, **size)
    for name, route in _pages(platform).items():
        visit(page, platform, route)
        screenshot(page, f"{name}-{width}")

        assert problems.take() == [], name
        assert blocking_violations(page) == [], name
        root = "document.documentElement"
        overflow = page.evaluate(f"{root}.scrollWidth - {root}.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"


def test_the_sign_in_page_is_clean_and_accessible(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = open_page(chromium)
    page.goto(f"{platform.base}/")  # / sends to the console, which asks for a token

    page.wait_for_url("**/console/#/signin")
    ready(page, "#/signin")
    screenshot(page, "signin")
    assert problems.take() == []
    assert blocking_violations(page) == []


def test_a_refused_token_is_named_and_nothing_is_kept(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = open_page(chromium)
    page.goto(f"{platform.base}/console/#/signin")
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("This token is refused")
    assert page.evaluate("sessionStorage.getItem('atalaia.token')") is None
    assert [p for p in problems.take() if "401" not in p] == []


def test_sign_in_fleet_sensor_then_promote(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.ML_ENGINEER)
    ready(page, "#/fleet")
    page.get_by_label("Sensor or prefix").fill("demo_sensor_001")
    page.get_by_role("button", name="Apply").click()
    ready(page, "#/fleet?prefix=demo_sensor_001")
    page.get_by_role("link", name="demo_sensor_001", exact=True).click()
    ready(page, "#/sensors/demo_sensor_001")
    page.get_by_role("link", name=CANDIDATE, exact=True).click()
    ready(page, f"#/series/{CANDIDATE}")

    page.get_by_role("button", name="Promote v2").click()

    expect(page.get_by_role("status")).to_contain_text("Version 2 promoted")
    expect(page.get_by_role("button", name="Promote v2")).to_have_count(0)
    served = platform.api("GET", f"/models/{CANDIDATE}/deployment-config").json()
    assert served["production_version"] == 2
    expect(page.get_by_role("button", name="Roll back")).to_be_visible()
    screenshot(page, "series-after-promotion")
    assert problems.take() == []


def test_a_canary_started_shown_and_ended_from_the_series_page(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.ML_ENGINEER)
    page.goto(f"{platform.base}/console/#/series/{CANARIED}")
    ready(page, f"#/series/{CANARIED}")

    page.get_by_label("Strategy for version 2").select_option("canary")
    page.get_by_role("button", name="Promote v2").click()

    expect(page.get_by_role("status")).to_contain_text("Canary of version 2 started")
    card = page.get_by_role("group", name="Canary of version 2: 5 % of the readings")
    expect(card).to_be_visible()
    expect(page.get_by_text("canary: production 95 %, candidate 5 %")).to_be_visible()
    expect(page.get_by_role("button", name="Promote v2")).to_have_count(0)
    screenshot(page, "series-canary")
    config = platform.api("GET", f"/models/{CANARIED}/deployment-config").json()
    assert config["split"] == {"candidate": 5.0, "production": 95.0}

    card.get_by_role("button", name="End it").click()

    expect(page.get_by_role("status")).to_contain_text("canary ended")
    expect(card).to_have_count(0)
    expect(page.get_by_role("button", name="Promote v2")).to_be_visible()
    config = platform.api("GET", f"/models/{CANARIED}/deployment-config").json()
    assert (config["split"], config["staging_versions"]) == (None, [2])
    assert problems.take() == []


def test_a_site_on_the_map_opens_its_floor_plan_and_a_sensor(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.VIEWER)
    visit(page, platform, "#/sites")
    dot = page.locator(f'circle.site-dot[data-site="{SITE}"]')
    expect(dot).to_have_count(1)
    expect(page.locator("svg.site-map circle.heat-spot")).to_have_count(0)
    page.get_by_label("Incidents of").select_option("3650")  # the demo's are of 2024
    ready(page, "#/sites?days=3650")
    expect(page.locator("svg.site-map circle.heat-spot")).to_have_count(1)
    screenshot(page, "sites-map")

    dot.click()
    ready(page, f"#/sites/{SITE}")
    page.get_by_label("Incidents of").select_option("3650")
    ready(page, f"#/sites/{SITE}?days=3650")
    expect(page.locator("svg.floor-plan image")).to_have_count(1)
    expect(page.locator("svg.floor-plan [data-node]")).to_have_count(3)
    expect(page.locator("svg.floor-plan circle.heat-spot").first).to_be_visible()
    screenshot(page, "site-plan")
    page.locator('circle.plan-sensor[data-node="demo_sensor_001"]').click()
    ready(page, "#/sensors/demo_sensor_001")

    assert problems.take() == []


def test_a_cell_of_the_fleet_grid_opens_its_sensor(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.VIEWER)
    ready(page, "#/fleet")

    page.locator("canvas.grid").first.click(position={"x": 3, "y": 3})

    ready(page, "#/sensors/demo_sensor_001")  # the first sensor of the first group
    assert problems.take() == []


def test_the_fleet_grid_is_walked_with_the_keyboard(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.VIEWER)
    ready(page, "#/fleet")
    grid = page.locator("canvas.grid").first

    grid.focus()
    expect(page.locator("[aria-live=polite].visually-hidden")).to_contain_text(
        "demo_sensor_001"
    )
    page.keyboard.press("ArrowRight")
    expect(page.locator("[aria-live=polite].visually-hidden")).to_contain_text(
        "demo_sensor_002"
    )
    page.keyboard.press("Enter")

    ready(page, "#/sensors/demo_sensor_002")
    assert problems.take() == []


def test_a_zoom_asks_the_server_for_the_narrower_window(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.VIEWER)
    page.goto(f"{platform.base}/console/#/series/{CANDIDATE}")
    ready(page, f"#/series/{CANDIDATE}")
    status = page.locator(".chart-status")
    before = status.inner_text()

    with page.expect_response(lambda r: "/chart?" in r.url) as answer:
        page.get_by_role("button", name="Zoom in").click()

    window = answer.value.json()["window"]
    expect(status).not_to_have_text(before)
    assert "10,080 readings" in before
    assert 0 < window["end"] - window["start"] <= 3.6 * 86_400
    assert problems.take() == []


def test_open_an_incident_and_acknowledge_it(
    chromium: Browser, platform: Platform
) -> None:
    page, problems = signed_in(chromium, platform, Role.DATA_SCIENTIST)
    page.get_by_role("link", name="Incidents").click()
    ready(page, "#/incidents")
    row = page.locator("tbody tr").filter(has_text="open").first
    number = row.get_by_role("link").first.inner_text()
    row.get_by_role("link", name=number).click()
    ready(page, f"#/incidents/{number.lstrip('#')}")
    actions = page.get_by_role("region", name="Actions")

    actions.get_by_label("Assignee").fill("maria")
    actions.get_by_role("button", name="Acknowledge").click()

    expect(page.get_by_role("status")).to_contain_text("Acknowledged")
    expect(page.locator("dl.facts")).to_contain_text("acknowledged")
    stored = platform.api("GET", f"/incidents/{number.lstrip('#')}").json()
    assert (stored["state"], stored["assignee"]) == ("acknowledged", "maria")
    screenshot(page, "incident-acknowledged")
    assert problems.take() == []


def test_a_viewer_sees_no_promote_button_and_a_forged_promotion_is_403(
    chromium: Browser, platform: Platform
) -> None:
    served = platform.api("GET", f"/models/{WAITING}/deployment-config").json()
    assert served["staging_versions"] == [2]  # an engineer would be offered it
    page, problems = signed_in(chromium, platform, Role.VIEWER)
    page.goto(f"{platform.base}/console/#/series/{WAITING}")
    ready(page, f"#/series/{WAITING}")
    expect(page.get_by_role("heading", name="Versions")).to_be_visible()

    expect(page.get_by_role("button", name="Promote v2")).to_have_count(0)
    expect(page.get_by_role("button", name="Roll back")).to_have_count(0)
    status = page.evaluate(
        """async (path) => (await fetch(path, {method: "POST", headers: {
             "Content-Type": "application/json",
             Authorization: `Bearer ${sessionStorage.getItem("atalaia.token")}`},
           body: JSON.stringify({strategy: "direct"})})).status""",
        f"/api/v1/models/{WAITING}/versions/2/promote",
    )
    assert status == 403
    assert [p for p in problems.take() if "403" not in p] == []
    still = platform.api("GET", f"/models/{WAITING}/deployment-config").json()
    assert still["staging_versions"] == [2]


def test_sign_out_forgets_the_token(chromium: Browser, platform: Platform) -> None:
    page, _ = signed_in(chromium, platform, Role.VIEWER)

    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url("**/#/signin")
    assert page.evaluate("sessionStorage.getItem('atalaia.token')") is None
    page.goto(f"{platform.base}/console/#/incidents")
    page.wait_for_url("**/#/signin")


def test_a_failed_job_shows_why_and_is_retried(
    chromium: Browser, platform: Platform
) -> None:
    # A week of one value: accepted (enough points), refused when it runs.
    week = {"timestamps": [1.7e9 + 60.0 * i for i in range(10_080)],
            "values": [1.0] * 10_080}  # fmt: skip
    sent = platform.api("POST", f"/series/{FLAT}/points", json=week)
    assert sent.status_code == 200, sent.text
    job = platform.api("POST", f"/training/{FLAT}", json={"window_hours": 168})
    assert job.status_code == 202, job.text
    url = f"/training/jobs/{job.json()['job_id']}"
    wait_for(lambda: platform.api("GET", url).json()["status"] == "failed" or None)
    page, problems = signed_in(chromium, platform, Role.DATA_SCIENTIST)
    page.goto(f"{platform.base}/console/#/training?status=failed")
    ready(page, "#/training?status=failed")
    row = page.locator("tbody tr").filter(has_text=FLAT)
    expect(row).to_contain_text("non_constant")

    row.get_by_role("button", name="Retry").click()

    expect(page.get_by_role("status")).to_contain_text("Queued again as")
    jobs = platform.api("GET", "/training/jobs", params={"series_id": FLAT}).json()
    assert len(jobs["jobs"]) == 2
    screenshot(page, "training-retried")
    assert problems.take() == []


def test_the_last_7_days_reports_are_saved_from_the_fleet_and_sensor_pages(
    chromium: Browser, platform: Platform, tmp_path: Path
) -> None:
    page, problems = signed_in(chromium, platform, Role.VIEWER)
    ready(page, "#/fleet")

    with page.expect_download() as fleet_pdf:
        page.get_by_role("button", name="Report (PDF)").click()
    page.goto(f"{platform.base}/console/#/sensors/demo_sensor_001")
    ready(page, "#/sensors/demo_sensor_001")
    with page.expect_download() as sensor_xlsx:
        page.get_by_role("button", name="Report (Excel)").click()

    assert fleet_pdf.value.suggested_filename.startswith("atalaia-fleet-fleet-")
    fleet_pdf.value.save_as(tmp_path / "fleet.pdf")
    assert (tmp_path / "fleet.pdf").read_bytes().startswith(b"%PDF-")
    saved = sensor_xlsx.value.suggested_filename
    assert saved.startswith("atalaia-sensor-demo_sensor_001-")
    assert saved.endswith(".xlsx")
    sensor_xlsx.value.save_as(tmp_path / "sensor.xlsx")
    assert (
        "Model versions" in workbook((tmp_path / "sensor.xlsx").read_bytes()).sheetnames
    )
    assert problems.take() == []


def test_a_report_of_the_picked_days_and_a_stored_one_are_saved(
    chromium: Browser, platform: Platform, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    artifacts = LocalArtifactStore(platform.settings.artifacts_path)
    engine = make_engine(platform.settings.database_url)
    try:
        run = reports.send_scheduled_reports(
            sessions=make_session_factory(engine),
            subscriptions=[ReportSubscription(name="weekly", channels=["ops"])],
            delivery=reports.Delivery(artifacts, None, platform.base), now=now,
        )  # fmt: skip
    finally:
        engine.dispose()
    (stored,) = run.stored["weekly"]
    page, problems = signed_in(chromium, platform, Role.VIEWER)
    ready(page, "#/fleet")
    picker = page.get_by_role("group", name="Report of a period")
    today = f"{now:%Y-%m-%d}"
    expect(picker.get_by_label("to")).to_have_value(today)
    expect(picker.get_by_label("From")).to_have_value(
        f"{now - timedelta(days=6):%Y-%m-%d}"
    )

    picker.get_by_label("From").fill("2026-11-20")
    picker.get_by_label("to").fill("2026-11-26")
    with page.expect_download() as picked:
        picker.get_by_role("button", name="Report (Excel)").click()
    listed = page.get_by_role("region", name="Stored reports")
    expect(listed).to_contain_text("weekly")
    screenshot(page, "fleet-reports")
    with page.expect_download() as saved:
        listed.locator("tr").filter(has_text="weekly").get_by_role(
            "button", name="Save PDF"
        ).click()

    assert picked.value.suggested_filename == (
        "atalaia-fleet-fleet-20261120-20261127.xlsx"  # the 26th included
    )
    saved.value.save_as(tmp_path / "stored.pdf")
    with_name = platform.api("GET", f"/reports/files/{stored}", Role.VIEWER)
    assert saved.value.suggested_filename in with_name.headers["content-disposition"]
    assert (tmp_path / "stored.pdf").read_bytes() == with_name.content
    assert problems.take() == []
