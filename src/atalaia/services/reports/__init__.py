"""Reports of a period, as PDF or Excel: a fleet's (or a site's) and a sensor's;
on demand, or scheduled weekly, stored and sent (`scheduled`)."""

from atalaia.services.reports.build import (
    SensorNotFound,
    check_fleet_size,
    fleet_report,
    sensor_report,
)
from atalaia.services.reports.content import Period, Report
from atalaia.services.reports.pdf import render_pdf
from atalaia.services.reports.scheduled import (
    Delivery,
    ScheduledRun,
    send_scheduled_reports,
)
from atalaia.services.reports.stored import (
    ListedFile,
    ReportFileGone,
    list_report_files,
    read_report_file,
)
from atalaia.services.reports.workbook import render_xlsx

__all__ = [
    "Delivery",
    "ListedFile",
    "Period",
    "Report",
    "ReportFileGone",
    "ScheduledRun",
    "SensorNotFound",
    "check_fleet_size",
    "fleet_report",
    "list_report_files",
    "read_report_file",
    "render_pdf",
    "render_xlsx",
    "send_scheduled_reports",
    "sensor_report",
]
