"""The fleet's grid: every sensor's state (`core.fleet_states`), by group.

A sensor's state is made of (`read_grid`, a few set-based queries):

- its series' Production versions (no_model without any), read again when
  the registry's ledger moved (`GridMemo`);
- its newest reading: stored (`series.last_ts`) or predicted (a prediction
  rollup of the hours since `stale_after_s` ago); stale when a sensor with
  readings has none that recent;
- the last drift check (`services.scheduler.check_drift`): the series it found
  drifted, as its platform event lists them (its audit entry when the event
  is gone), still in Production with the version checked;
- the anomaly log: an anomaly of a reading within `anomaly_window_s`;
- its live incidents' severities.

Reading it for a fleet takes a large part of a second, so `FleetGrids` keeps
the grid `ttl_s` seconds, as `services.fleet.GroupRates` keeps the rates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import ModelStore
from atalaia.adapters.db.repositories.fleet_grid import NO_READING, FleetGridReads
from atalaia.core.fleet_states import (
    LEGEND,
    NO_INCIDENT,
    Codes,
    Flags,
    GroupRun,
    Positions,
    SensorFacts,
    grid_order,
    prefix_mask,
    rank_states,
)
from atalaia.core.schedule import Task
from atalaia.core.series import sensor_of
from atalaia.errors import DependencyUnavailable
from atalaia.services.kept import Kept
from atalaia.services.training_chunk import SessionFactory

log = structlog.get_logger()

# A drift check's audit entry: `scheduler.drift`, or `…_failed` when it found
# drift but queueing the retraining failed (`services.scheduler`).
DRIFT_RUNS = (Task.DRIFT.audit_action, f"{Task.DRIFT.audit_action}_failed")
DRIFT_EVENT = "model.drift"
SAME_RUN_S = 60.0  # a run's event and audit entry are written together
# The grid is read again after an answer once older than TTL_S (the console
# asks every ~15 s, and again soon when an answer is older), and before
# answering once older than MAX_AGE_S (nobody looked for that long).
TTL_S = 10.0
MAX_AGE_S = 600.0


@dataclass(frozen=True, slots=True)
class FleetGrid:
    """Sensors in the grid's order (by group, then id), each one's state (a
    `SensorState` value), the groups' runs; figures of `at` (epoch seconds)."""

    at: float
    sensors: list[str]
    groups: list[GroupRun]
    states: Codes

    def counts(self) -> dict[str, int]:
        """Sensors in each state, every state named."""
        counts = np.bincount(self.states, minlength=len(LEGEND)).tolist()
        return dict(zip(LEGEND, counts, strict=True))

    def states_text(self) -> str:
        """One digit a sensor: its state."""
        return (self.states + ord("0")).astype(np.uint8).tobytes().decode("ascii")

    def of_group(self, name: str) -> FleetGrid:
        """The sensors of group `name` (none when there is no such group)."""
        run = next((r for r in self.groups if r.name == name), None)
        if run is None:
            return FleetGrid(self.at, [], [], self.states[:0])
        stop = run.start + run.count
        return FleetGrid(
            self.at,
            self.sensors[run.start : stop],
            [GroupRun(name, 0, run.count)],
            self.states[run.start : stop],
        )

    def of_prefix(self, prefix: str) -> FleetGrid:
        """The sensors a series of which may begin with `prefix`."""
        if not self.sensors:
            return self
        return self._kept(prefix_mask(self.sensors, prefix))

    def of_sensors(self, chosen: Collection[str]) -> FleetGrid:
        """The sensors among `chosen` (the sensors under an asset, say)."""
        if not self.sensors:
            return self
        return self._kept(np.array([s in chosen for s in self.sensors], dtype=bool))

    def _kept(self, mask: np.ndarray) -> FleetGrid:
        """The sensors `mask` keeps, in their groups."""
        kept = mask.astype(np.intp)
        positions = np.flatnonzero(kept)
        counts = np.add.reduceat(kept, [r.start for r in self.groups]).tolist()
        runs, start = [], 0
        for run, count in zip(self.groups, counts, strict=True):
            if count:
                runs.append(GroupRun(run.name, start, count))
                start += count
        return FleetGrid(
            self.at,
            [self.sensors[i] for i in positions.tolist()],
            runs,
            self.states[positions],
        )


def read_grid(
    session: Session,
    *,
    at: float,
    anomaly_window_s: float,
    stale_after_s: float,
    memo: GridMemo,
) -> FleetGrid:
    """Every sensor's state at `at` (epoch seconds; see the module)."""
    reads = FleetGridReads(session)
    stored, last = reads.newest_readings()
    modelled = memo.modelled(session)
    read_before = at - stale_after_s
    predicted = reads.predicted_sensors(read_before=read_before, since=read_before)
    severities = reads.live_severities()
    anomalous = _sensors(reads.anomalous_series(since=at - anomaly_window_s))
    drifted = _sensors(drifted_series(reads))
    layout = memo.layout({*stored, *modelled, *severities, *anomalous, *drifted})
    index = layout.index
    stale = np.zeros(len(index), bool)
    stale[_positions(index, stored)] = (last > NO_READING) & (last < read_before)
    stale[_positions(index, predicted)] = False
    facts = SensorFacts(
        modelled=_flags(index, modelled),
        stale=stale,
        drift=_flags(index, drifted),
        anomalous=_flags(index, anomalous),
        severity=_severities(index, severities),
    )
    return FleetGrid(at, layout.sensors, layout.groups, rank_states(facts))


def drifted_series(reads: FleetGridReads) -> list[str]:
    """The series the last drift check found drifted whose Production version
    is still the one it checked."""
    run = reads.last_audit(DRIFT_RUNS)
    if run is None or not run[1].get("selected"):
        return []
    run_at, detail = run
    event = reads.last_event(DRIFT_EVENT)
    if event is not None and abs(event[0] - run_at) <= SAME_RUN_S:
        named = event[1].get("series", [])  # up to its first 1,000
    else:  # the event was pruned
        named = detail.get("series", [])  # up to its first 100
    return reads.production_kept_since([str(s) for s in named], run_at)


def _sensors(series_ids: Iterable[str]) -> set[str]:
    return {sensor_of(series_id)[0] for series_id in series_ids}


def _positions(index: Mapping[str, int], sensors: Collection[str]) -> Positions:
    return np.fromiter(map(index.__getitem__, sensors), np.intp, len(sensors))


def _flags(index: Mapping[str, int], members: Collection[str]) -> Flags:
    flags = np.zeros(len(index), bool)
    flags[_positions(index, members)] = True
    return flags


def _severities(
    index: Mapping[str, int], severities: Mapping[str, int]
) -> npt.NDArray[np.int8]:
    ranks = np.full(len(index), NO_INCIDENT, np.int8)
    ranks[_positions(index, severities)] = list(severities.values())
    return ranks


@dataclass(frozen=True, slots=True)
class Layout:
    """A set of sensors in the grid's order, each one's position in it, and
    the groups' runs (`core.fleet_states.grid_order`)."""

    members: frozenset[str]
    sensors: list[str]
    index: dict[str, int]
    groups: list[GroupRun]


class GridMemo:
    """What `read_grid` keeps from one read to the next: the layout of the
    last set of sensors (a fleet's sensors seldom change, and ordering 95,000
    of them takes a tenth of a second), and the sensors with a Production
    version as of the registry's last ledger entry (every stage change is one)."""

    def __init__(self) -> None:
        self._layout: Layout | None = None
        self._modelled: tuple[int, set[str]] | None = None

    def layout(self, sensors: set[str]) -> Layout:
        """The layout of `sensors`, kept while they stay the same."""
        members = frozenset(sensors)
        if self._layout is None or self._layout.members != members:
            unordered = list(members)
            order, runs = grid_order(unordered)
            listed = [unordered[i] for i in order.tolist()]
            index = {sensor: i for i, sensor in enumerate(listed)}
            self._layout = Layout(members, listed, index, runs)
        return self._layout

    def modelled(self, session: Session) -> set[str]:
        """The sensors a series of which (or which, a sensor model) has a
        Production version."""
        position = ModelStore(session).latest_seq()  # first: never too new
        if self._modelled is None or self._modelled[0] != position:
            ids = FleetGridReads(session).production_series()
            self._modelled = (position, _sensors(ids))
        return self._modelled[1]


class FleetGrids(Kept[FleetGrid]):
    """`read_grid`, kept `ttl_s` seconds (`clock`: epoch seconds). A grid
    older than `max_age_s` (nobody looked for a while) is read again before
    it is answered."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        ttl_s: float,
        max_age_s: float,
        anomaly_window_s: float,
        stale_after_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_age_s=max_age_s, clock=clock)
        self.sessions = sessions
        self.anomaly_window_s = anomaly_window_s
        self.stale_after_s = stale_after_s
        self._memo = GridMemo()

    def read(self) -> FleetGrid:
        with self.sessions() as session:
            return read_grid(
                session,
                at=self.clock(),
                anomaly_window_s=self.anomaly_window_s,
                stale_after_s=self.stale_after_s,
                memo=self._memo,
            )

    def read_at(self, figure: FleetGrid) -> float:
        return figure.at

    def prepare(self) -> None:
        """Read once to work out what reads keep (the sensors' layout, the
        modelled sensors), so that the first visitor waits for a kept read
        only; the grid itself is dropped (older than what that visitor may
        have just written). A database down now is left to that visitor."""
        try:
            self.read()
        except DependencyUnavailable as exc:
            log.warning("fleet_grid.not_prepared", reason=str(exc))
