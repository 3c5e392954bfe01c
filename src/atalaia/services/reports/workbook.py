"""A report as an Excel workbook (XlsxWriter): a summary sheet with native
charts of the days, then one sheet per table; a sensor's axes as pictures."""

from __future__ import annotations

import io
from typing import Any

from xlsxwriter import Workbook  # type: ignore[import-untyped]

from atalaia.services.reports.content import Report, Table

DAILY = "Daily"
MAX_WIDTH = 60


def render_xlsx(report: Report) -> bytes:
    """The report as an .xlsx file."""
    buffer = io.BytesIO()
    book = Workbook(buffer, {"in_memory": True, "default_date_format": "yyyy-mm-dd"})
    book.set_properties({"title": report.title, "creator": "atalaia"})
    styles = _styles(book)
    summary = _summary_sheet(book, report, styles)
    for table in report.tables.values():
        _table_sheet(book, table, styles)
    _daily_charts(book, summary, report.tables[DAILY])
    _pictures(book, report)
    book.close()
    return buffer.getvalue()


def _styles(book: Any) -> dict[str, Any]:
    return {
        "title": book.add_format({"bold": True, "font_size": 16}),
        "header": book.add_format({"bold": True, "bg_color": "#EEF2F7", "border": 1}),
        "label": book.add_format({"font_color": "#555555"}),
        "percent": book.add_format({"num_format": "0.00%"}),
        "number": book.add_format({"num_format": "#,##0.####"}),
    }


def _summary_sheet(book: Any, report: Report, styles: dict[str, Any]) -> Any:
    sheet = book.add_worksheet("Summary")
    sheet.write(0, 0, report.title, styles["title"])
    period = report.period
    sheet.write(1, 0, "From (UTC)", styles["label"])
    sheet.write(1, 1, f"{period.start_at:%Y-%m-%d %H:%M}")
    sheet.write(2, 0, "To (UTC)", styles["label"])
    sheet.write(2, 1, f"{period.end_at:%Y-%m-%d %H:%M}")
    for row, (label, value) in enumerate(report.summary, start=4):
        sheet.write(row, 0, label, styles["label"])
        sheet.write(row, 1, value)
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 1, 20)
    return sheet


def _table_sheet(book: Any, table: Table, styles: dict[str, Any]) -> None:
    sheet = book.add_worksheet(table.name[:31])
    sheet.write_row(0, 0, table.columns, styles["header"])
    for row, values in enumerate(table.rows, start=1):
        sheet.write_row(row, 0, values)
    for col, name in enumerate(table.columns):
        width = max([len(name), *(len(str(r[col])) for r in table.rows[:200])])
        style = styles["percent"] if "rate" in name.lower() else None
        sheet.set_column(col, col, min(width + 2, MAX_WIDTH), style)
    sheet.freeze_panes(1, 0)
    if table.rows:
        sheet.autofilter(0, 0, len(table.rows), len(table.columns) - 1)
    if table.note:
        sheet.write(len(table.rows) + 2, 0, table.note)


def _daily_charts(book: Any, summary: Any, daily: Table) -> None:
    """A column chart of the incidents opened per day and a line of the
    anomaly rate, from the Daily sheet, on the summary sheet."""
    last = len(daily.rows)
    days = [DAILY, 1, 0, last, 0]
    incidents = book.add_chart({"type": "column"})
    incidents.add_series(
        {
            "name": "Incidents opened",
            "categories": days,
            "values": [DAILY, 1, 1, last, 1],
        }
    )
    incidents.set_title({"name": "Incidents opened per day"})
    incidents.set_legend({"none": True})
    summary.insert_chart("D2", incidents, {"x_scale": 1.4})
    rate = book.add_chart({"type": "line"})
    rate.add_series(
        {"name": "Anomaly rate", "categories": days, "values": [DAILY, 1, 4, last, 4],
         "marker": {"type": "circle"}}
    )  # fmt: skip
    rate.set_title({"name": "Anomaly rate per day"})
    rate.set_y_axis({"num_format": "0.00%"})
    rate.set_legend({"none": True})
    summary.insert_chart("D18", rate, {"x_scale": 1.4})


def _pictures(book: Any, report: Report) -> None:
    """The charts only a picture shows (a sensor's axes with their band)."""
    pictures = [c for c in report.charts[2:] if c.png]
    if not pictures:
        return
    sheet = book.add_worksheet("Charts")
    for i, chart in enumerate(pictures):
        sheet.write(i * 27, 0, chart.caption)
        sheet.insert_image(
            i * 27 + 1, 0, f"{chart.caption}.png",
            {"image_data": io.BytesIO(chart.png), "x_scale": 0.8, "y_scale": 0.8},
        )  # fmt: skip
