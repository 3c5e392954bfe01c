"""Reports of a period, as PDF or Excel: a fleet's (or a site's) and a sensor's."""

from atalaia.services.reports.build import SensorNotFound, fleet_report, sensor_report
from atalaia.services.reports.content import Period, Report
from atalaia.services.reports.pdf import render_pdf
from atalaia.services.reports.workbook import render_xlsx

__all__ = [
    "Period",
    "Report",
    "SensorNotFound",
    "fleet_report",
    "render_pdf",
    "render_xlsx",
    "sensor_report",
]
