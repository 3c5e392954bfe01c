"""A report's charts as PNGs: incidents and anomaly rate day by day, and a
sensor's axes with their model's band (drawn as GET /plot draws them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sqlalchemy.orm import Session

from atalaia.core.ports import ArtifactStore
from atalaia.errors import NotFound
from atalaia.services.plotting import (
    PlotQuery,
    TimeAxis,
    build_plot_data,
    date_numbers,
    draw_figure,
    finish_panel,
    save_figure,
)
from atalaia.services.reports.content import Chart, Day, Period

BAR = "#3a6ea5"
LINE = "#c0392b"
DAY_S = 86_400.0


def daily_charts(period: Period, days: Sequence[Day]) -> list[Chart]:
    """Incidents opened per day, and the anomaly rate per day (at noon)."""
    noon = np.array([d.day.timestamp() + DAY_S / 2 for d in days], dtype=float)
    x = date_numbers(noon)
    incidents = _figure()
    ax = incidents.axes[0]
    ax.bar(x, [d.incidents for d in days], width=0.7, color=BAR)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _from_zero(ax, at_least=1.0)
    _style(ax, period, "incidents opened")
    rates = _figure()
    ax = rates.axes[0]
    ax.plot(x, [100 * d.anomaly_rate for d in days], color=LINE, marker="o", ms=3)
    _from_zero(ax, at_least=1.0)
    _style(ax, period, "anomaly rate (%)")
    return [
        Chart("Incidents opened per day", save_figure(incidents, "png")),
        Chart("Anomaly rate per day", save_figure(rates, "png")),
    ]


def _from_zero(ax: Axes, *, at_least: float) -> None:
    """Counts and rates start at 0, and a period of zeros still shows a scale
    (0 to `at_least`) rather than one around 0."""
    ax.set_ylim(0, max(ax.get_ylim()[1], at_least))


def _figure() -> Figure:
    figure = Figure(figsize=(6.4, 2.8), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    figure.add_subplot()
    return figure


def _style(ax: Axes, period: Period, label: str) -> None:
    TimeAxis(period.start, period.end).style(ax)
    ax.set_ylabel(label)
    ax.spines[["top", "right"]].set_visible(False)
    finish_panel(ax)


def axis_chart(
    session: Session,
    series_id: str,
    period: Period,
    *,
    artifacts: ArtifactStore | None = None,
) -> Chart:
    """A series' readings of the period with its model's band and anomalies."""
    query = PlotQuery(series_id, period.start, period.end)
    try:
        data = build_plot_data(session, query, artifacts=artifacts)
    except NotFound:
        return Chart(f"{series_id}: no readings", b"")
    return Chart(series_id, save_figure(draw_figure(data), "png"))
