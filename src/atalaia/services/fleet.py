"""The fleet at a glance: live incidents by severity and kind, the sensors
anomalous now, each sensor group's incidents and anomaly rate, the worst
incidents.

The anomaly rate of a group is its series' anomalies over their predictions in
the current and the previous hour (`prediction_rollups`). Reading it means
reading every series' rollups of those hours, so `GroupRates` keeps it for
`ttl_s` seconds: the incidents' figures are read on every call, the rates at
most that often.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import IncidentStore, RollupStore
from atalaia.core.incidents import Incident, sensor_group
from atalaia.core.series import sensor_of
from atalaia.services.kept import Kept
from atalaia.services.training_chunk import SessionFactory

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Rates:
    """Per sensor group, (predictions, anomalies) from `since` on, as read at
    `as_of` (epoch seconds both)."""

    since: float
    as_of: float
    by_group: dict[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class GroupFigures:
    group: str
    live_incidents: int
    sensors_affected: int
    predictions: int
    anomalies: int

    @property
    def anomaly_rate(self) -> float | None:
        return self.anomalies / self.predictions if self.predictions else None

    def rank(self) -> tuple[int, float, str]:
        """Most live incidents first, then the highest anomaly rate."""
        return (-self.live_incidents, -(self.anomaly_rate or 0.0), self.group)


@dataclass(frozen=True, slots=True)
class FleetStatus:
    at: float
    live_counts: dict[tuple[str, str], int]  # (kind, severity) → live incidents
    sensors_anomalous: int
    anomalous_within_s: float
    groups: list[GroupFigures]
    groups_total: int
    rates: Rates
    top: list[Incident]


def fleet_status(
    session: Session,
    *,
    rates: Rates,
    at: float,
    anomalous_within_s: float,
    groups: int,
    top: int,
) -> FleetStatus:
    """The fleet's figures at `at`: the `groups` first groups (`GroupFigures.rank`)
    and the `top` live incidents of highest peak score."""
    store = IncidentStore(session)
    live = store.live_by_group()
    figures = sorted(
        (
            GroupFigures(g, *live.get(g, (0, 0)), *rates.by_group.get(g, (0, 0)))
            for g in live.keys() | rates.by_group.keys()
        ),
        key=GroupFigures.rank,
    )
    return FleetStatus(
        at=at,
        live_counts=store.live_counts(),
        sensors_anomalous=store.anomalous_sensors(at - anomalous_within_s),
        anomalous_within_s=anomalous_within_s,
        groups=figures[:groups],
        groups_total=len(figures),
        rates=rates,
        top=store.top_live(top),
    )


def read_rates(session: Session, at: float, groups: SeriesGroups) -> Rates:
    """Predictions and anomalies per sensor group in the hour holding `at` and
    the one before."""
    since = (at // HOUR_S - 1) * HOUR_S
    store = RollupStore(session)
    by_group: dict[str, tuple[int, int]] = {}
    for start in (since, since + HOUR_S):
        series, predictions, anomalies = store.hour(datetime.fromtimestamp(start, UTC))
        names, codes = groups.of(series)
        sums = [
            np.bincount(codes, weights=counts, minlength=len(names)).tolist()
            for counts in (predictions, anomalies)
        ]
        for name, p, a in zip(names, *sums, strict=True):
            p0, a0 = by_group.get(name, (0, 0))
            by_group[name] = (p0 + int(p), a0 + int(a))
    return Rates(since, at, by_group)


class SeriesGroups:
    """The sensor group of each series of a list; the answers for the last
    `keep` lists are kept (a fleet's series seldom change, and working out
    285,000 series' groups takes a few tenths of a second)."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._kept: dict[tuple[int, int], tuple[list[str], npt.NDArray[np.intp]]] = {}

    def of(self, series: list[str]) -> tuple[list[str], npt.NDArray[np.intp]]:
        """The groups' names, and for each series the index of its group."""
        key = (len(series), hash(tuple(series)))
        found = self._kept.get(key)
        if found is None:
            found = self._kept[key] = _groups_of(series)
            if len(self._kept) > self.keep:
                del self._kept[next(iter(self._kept))]  # the oldest
        return found


def _groups_of(series: list[str]) -> tuple[list[str], npt.NDArray[np.intp]]:
    names: dict[str, int] = {}
    codes: list[int] = []
    sensor, code = None, 0
    for series_id in series:
        # By series id: a sensor's axes come one after the other.
        this_sensor, _ = sensor_of(series_id)
        if this_sensor != sensor:
            sensor = this_sensor
            code = names.setdefault(sensor_group(this_sensor), len(names))
        codes.append(code)
    return list(names), np.asarray(codes, np.intp)


class GroupRates(Kept[Rates]):
    """`read_rates`, kept `ttl_s` seconds (`clock`: epoch seconds)."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, clock=clock)
        self.sessions = sessions
        self._groups = SeriesGroups()

    def read(self) -> Rates:
        with self.sessions() as session:
            return read_rates(session, self.clock(), self._groups)

    def read_at(self, figure: Rates) -> float:
        return figure.as_of
