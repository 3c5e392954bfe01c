"""A report as a PDF: HTML from Jinja2 templates, laid out by WeasyPrint.

The templates ship in `templates/`; a file of the same name in the site's
`report_templates_dir` replaces one (`fleet.html`, `sensor.html`, the
`base.html` they extend, `report.css`, `macros.html`). Charts are embedded as
data URIs: rendering fetches nothing.
"""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from atalaia.errors import DependencyUnavailable
from atalaia.services.reports.content import Cell, Report

PANGO = "the system's Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0)"


def render_pdf(report: Report, *, templates_dir: Path | None = None) -> bytes:
    """The report as a PDF (A4, landscape); DependencyUnavailable when the
    system lacks the Pango that WeasyPrint lays text out with (imported
    here, so that the platform starts without it)."""
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]
    except (ImportError, OSError) as exc:  # its libraries are loaded at import
        raise DependencyUnavailable(
            f"PDF reports need {PANGO}; Excel reports do not"
        ) from exc
    html = render_html(report, templates_dir=templates_dir)
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def render_html(report: Report, *, templates_dir: Path | None = None) -> str:
    """The report's HTML, from `<kind>.html`."""
    environment = template_environment(templates_dir)
    return environment.get_template(f"{report.kind}.html").render(report=report)


def template_environment(templates_dir: Path | None) -> Environment:
    """The shipped templates, behind a site's own (`templates_dir`) if given."""
    loaders: list[BaseLoader] = [PackageLoader("atalaia.services.reports", "templates")]
    if templates_dir is not None:
        loaders.insert(0, FileSystemLoader(templates_dir))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.do"],
    )
    environment.filters["data_uri"] = data_uri
    environment.filters["cell"] = show_cell
    return environment


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def show_cell(value: Cell, column: str = "") -> str:
    """A cell as the PDF shows it: rates as percentages, numbers shortened."""
    if value is None:
        return ""
    if isinstance(value, float) and "rate" in column.lower():
        return f"{100 * value:.2f} %"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return value
