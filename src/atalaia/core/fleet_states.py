"""A sensor's state on the fleet's grid: the worst of what is wrong with it.

States, from best to worst (`SensorState`; a sensor shows the worst that holds):

- `ok`: nothing below;
- `no_model`: none of its series has a Production version;
- `stale`: it has readings, but none for longer than a threshold;
- `drift`: the data of a series of it drifted from its Production model's;
- `anomalous`: an anomaly lately (within the incident gap), no live incident;
- `minor`, `major`, `critical`: the severity of its worst live incident.

The grid lists sensors by group (`core.incidents.sensor_group`), then by id:
each group is one run of the list (`grid_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import repeat

import numpy as np
import numpy.typing as npt

from atalaia.core.incidents import SEVERITIES, sensor_group

Flags = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.uint8]
Positions = npt.NDArray[np.intp]


class SensorState(IntEnum):
    """A sensor's state; a larger value is worse."""

    OK = 0
    NO_MODEL = 1
    STALE = 2
    DRIFT = 3
    ANOMALOUS = 4
    MINOR = 5
    MAJOR = 6
    CRITICAL = 7


LEGEND: tuple[str, ...] = tuple(state.name.lower() for state in SensorState)
# The state of each incident severity, by `core.incidents.severity_rank`.
_BY_SEVERITY = np.array([SensorState[s.upper()] for s in SEVERITIES], np.uint8)
NO_INCIDENT = -1


@dataclass(frozen=True, slots=True)
class SensorFacts:
    """What makes the sensors' states: one entry per sensor in each column.
    `severity` is the `severity_rank` of a sensor's worst live incident, or
    NO_INCIDENT."""

    modelled: Flags
    stale: Flags
    drift: Flags
    anomalous: Flags
    severity: npt.NDArray[np.int8]


def rank_states(facts: SensorFacts) -> Codes:
    """Each sensor's state (a `SensorState` value): the worst that holds.

    >>> no, yes = False, True
    >>> facts = SensorFacts(
    ...     modelled=np.array([yes, no, no, yes, yes]),
    ...     stale=np.array([no, no, yes, yes, no]),
    ...     drift=np.array([no, no, no, yes, yes]),
    ...     anomalous=np.array([no, no, no, no, yes]),
    ...     severity=np.array([-1, -1, -1, -1, 1], np.int8))
    >>> [LEGEND[s] for s in rank_states(facts)]
    ['ok', 'no_model', 'stale', 'drift', 'major']
    """
    states = np.where(facts.modelled, SensorState.OK, SensorState.NO_MODEL)
    for state, holds in (
        (SensorState.STALE, facts.stale),
        (SensorState.DRIFT, facts.drift),
        (SensorState.ANOMALOUS, facts.anomalous),
    ):  # from better to worse: a later one wins
        states = np.where(holds, state, states)
    live = facts.severity != NO_INCIDENT
    states = np.where(live, _BY_SEVERITY[np.where(live, facts.severity, 0)], states)
    return states.astype(np.uint8)


@dataclass(frozen=True, slots=True)
class GroupRun:
    """A sensor group's run of the grid: `count` sensors from index `start`."""

    name: str
    start: int
    count: int


def grid_order(sensors: Sequence[str]) -> tuple[Positions, list[GroupRun]]:
    """The grid's order of `sensors` (by group, then id) as positions in it,
    and the runs of its groups in that order.

    >>> order, runs = grid_order(["pump_2", "fan_1", "pump_1", "press.l2.m07"])
    >>> order.tolist()
    [1, 3, 2, 0]
    >>> [(r.name, r.start, r.count) for r in runs]
    [('fan', 0, 1), ('press.l2', 1, 1), ('pump', 2, 2)]
    """
    groups = [sensor_group(s) for s in sensors]
    keys = list(zip(groups, sensors, strict=True))
    order = np.asarray(sorted(range(len(sensors)), key=keys.__getitem__), np.intp)
    listed = [groups[i] for i in order.tolist()]
    starts = [p for p in range(len(listed)) if p == 0 or listed[p] != listed[p - 1]]
    ends = [*starts[1:], len(listed)] if listed else []
    runs = [GroupRun(listed[s], s, e - s) for s, e in zip(starts, ends, strict=True)]
    return order, runs


def prefix_mask(sensors: Sequence[str], prefix: str) -> Flags:
    """For each sensor, whether a series of it (its id, or its id, `_` and an
    axis) may begin with `prefix`; in loops of C (95,000 sensors in a few ms).

    >>> prefix_mask(["pu", "pump1", "pump10", "pump2"], "pump1_ra").tolist()
    [False, True, False, False]
    >>> prefix_mask(["pu", "pump1", "pump10", "pump2"], "pump1").tolist()
    [False, True, True, False]
    """
    n = len(sensors)
    mask = np.fromiter(map(str.startswith, sensors, repeat(prefix)), bool, n)
    # Or the sensor's id and `_` begin the prefix: it is one of these heads.
    heads = {prefix[:i] for i, c in enumerate(prefix) if c == "_"}
    if heads:
        mask |= np.fromiter(map(heads.__contains__, sensors), bool, n)
    return mask
