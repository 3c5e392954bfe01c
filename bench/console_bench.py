"""The console in Chromium: the fleet page over a fleet of `sensors` sensors and
a series page over `readings` readings, as an operator opens them.

A fresh PostgreSQL database gets the fleet of `bench fleet-grid` (95,000
sensors × 3 axes: models, stale sensors, incidents, drift) and the series of
`bench chart` (a week of `readings` readings, a seasonal model, anomalies, a
level shift, incidents). `atalaia serve --role training` serves the API and
the console. Debian's Chromium (Playwright) opens each page `runs` times,
each in a fresh context (nothing cached, the token in the tab as after
signing in), after one visit apart (the server's grid kept, as while
operators look):

- fleet: navigation start → the grid painted (the page's `atalaia:fleet`
  mark) and the bytes it transferred (HTML, scripts, styles, the grid's data;
  encoded, as sent); the first visit after start (the server reads the grid
  before answering) is reported apart;
- series: the page's load event → its chart drawn and taking input (the
  `atalaia:chart:<id>` mark), navigation → the same, and a zoom (the "+"
  button → the narrower window drawn).

Targets: the fleet's first render ≤ 1 s and ≤ 1 MB; the chart ≤ 500 ms after load.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from bench._fleet import fresh_database
from bench._servers import atalaia_serve, free_port, serve, service_env
from bench.chart_bench import fill_series, series_id
from bench.fleet_grid_bench import fill_fleet, vacuum
from bench.predict_bench import Figures, Target, judge

DATABASE = "atalaia_bench_console"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TARGETS: list[Target] = [
    ("fleet_render_p50_ms", "≤", 1000),
    ("fleet_kb", "≤", 1000),
    ("chart_after_load_p50_ms", "≤", 500),
]
# What the page sent and received: every resource and the document, as encoded.
TRANSFERRED = """() => performance.getEntriesByType("navigation")
  .concat(performance.getEntriesByType("resource"))
  .reduce((sum, e) => sum + e.transferSize, 0)"""


def console(
    sensors: int,
    incidents: int,
    readings: int,
    runs: int,
    url: str | None,
    browser: Browser | None = None,
) -> tuple[Figures, str]:
    """Fill a database, serve it, and time the pages in Chromium (`browser`, or
    one launched here)."""
    with fresh_database(url, DATABASE) as db_url, tempfile.TemporaryDirectory() as d:
        home = Path(d)
        upgrade_database(db_url)
        engine = make_engine(db_url)
        try:
            figures = fill_fleet(
                make_session_factory(engine), sensors, incidents, time.time()
            )
            figures["chart_fill_s"] = fill_series(engine, home, readings)
            vacuum(engine)
        finally:
            engine.dispose()
        figures |= _time_pages(home, db_url, series_id(readings), runs, browser)
    figures |= {"readings": readings, "runs": runs}
    line = (
        f"fleet of {sensors:,}: painted p50 {figures['fleet_render_p50_ms']} ms, "
        f"{figures['fleet_kb']} KB; series of {readings:,}: chart "
        f"{figures['chart_after_load_p50_ms']} ms after load, zoom "
        f"{figures['zoom_p50_ms']} ms"
    )
    return figures, "\n".join([line, *judge(figures, TARGETS)])


def _time_pages(
    home: Path, url: str, chart_series: str, runs: int, browser: Browser | None
) -> Figures:
    env, token = service_env(home, url, rate_per_min=100_000)
    port = free_port()
    with (
        serve(atalaia_serve(port, "training"), port=port, ready_path="/ready",
              env=env, log_path=home / "training.log") as server,
        ExitStack() as stack,
    ):  # fmt: skip
        if browser is None:
            driver = stack.enter_context(sync_playwright())
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            stack.callback(browser.close)
        base = f"{server.base_url}/console/"
        first = _visit(browser, token, f"{base}#/fleet", "atalaia:fleet")
        fleet = [_visit(browser, token, f"{base}#/fleet", "atalaia:fleet")
                 for _ in range(runs)]  # fmt: skip
        page, mark = f"{base}#/series/{chart_series}", f"atalaia:chart:{chart_series}"
        _visit(browser, token, page, mark)  # the series' pages in the database's cache
        chart = [_visit(browser, token, page, mark, zoom=True) for _ in range(runs)]
    after_load = [v["mark_ms"] - v["load_ms"] for v in chart]
    return {
        "fleet_render_p50_ms": _median(v["mark_ms"] for v in fleet),
        "fleet_render_max_ms": max(round(v["mark_ms"]) for v in fleet),
        "fleet_first_visit_ms": round(first["mark_ms"]),  # the grid read, not kept
        "fleet_kb": round(max(v["bytes"] for v in fleet) / 1000, 1),
        "chart_after_load_p50_ms": _median(after_load),
        "chart_after_load_max_ms": round(max(after_load)),
        "chart_from_navigation_p50_ms": _median(v["mark_ms"] for v in chart),
        "chart_kb": round(max(v["bytes"] for v in chart) / 1000, 1),
        "zoom_p50_ms": _median(v["zoom_ms"] for v in chart),
    }


def _visit(
    browser: Browser, token: str, url: str, mark: str, *, zoom: bool = False
) -> dict[str, float]:
    """Open `url` signed in; when `mark` is set: its time, the load event's, the
    bytes moved, and with `zoom` how long a zoom takes to draw."""
    # Playwright's waits evaluate script the console's policy refuses: lifted here.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, bypass_csp=True
    )
    context.add_init_script(f"sessionStorage.setItem('atalaia.token', '{token}')")
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(f"performance.getEntriesByName('{mark}').length > 0")
    found = {
        "mark_ms": page.evaluate(_entry(mark, 0)),
        "load_ms": page.evaluate(
            "performance.getEntriesByType('navigation')[0].loadEventEnd"
        ),
        "bytes": page.evaluate(TRANSFERRED),
    }
    if zoom:
        found["zoom_ms"] = _zoom(page, mark)
    context.close()
    return found


def _zoom(page: Page, mark: str) -> float:
    """Milliseconds from a click on "+" to the narrower window drawn."""
    started: float = page.evaluate("performance.now()")
    page.get_by_role("button", name="Zoom in").click()
    page.wait_for_function(f"performance.getEntriesByName('{mark}').length > 1")
    drawn: float = page.evaluate(_entry(mark, 1))
    return drawn - started


def _entry(mark: str, index: int) -> str:
    """JavaScript for the time of the `index`th `mark`, in ms from navigation."""
    return f"performance.getEntriesByName('{mark}')[{index}].startTime"


def _median(values: Iterable[float]) -> float:
    return round(statistics.median(values), 1)
