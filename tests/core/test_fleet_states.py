"""A sensor's state on the fleet's grid: the worst that holds; the grid's order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.fleet_states import (
    LEGEND,
    NO_INCIDENT,
    SensorFacts,
    SensorState,
    grid_order,
    prefix_mask,
    rank_states,
)
from atalaia.core.incidents import SEVERITIES, sensor_group

Facts = tuple[
    bool, bool, bool, bool, int
]  # modelled, stale, drift, anomalous, severity


def reference(
    modelled: bool, stale: bool, drift: bool, anomalous: bool, severity: int
) -> str:
    """The state of one sensor, written out rule by rule."""
    if severity != NO_INCIDENT:
        return SEVERITIES[severity]
    if anomalous:
        return "anomalous"
    if drift:
        return "drift"
    if stale:
        return "stale"
    return "ok" if modelled else "no_model"


def ranked(facts: list[Facts]) -> list[str]:
    columns = list(zip(*facts, strict=True)) or [()] * 5
    return [
        LEGEND[s]
        for s in rank_states(
            SensorFacts(
                modelled=np.array(columns[0], bool),
                stale=np.array(columns[1], bool),
                drift=np.array(columns[2], bool),
                anomalous=np.array(columns[3], bool),
                severity=np.array(columns[4], np.int8),
            )
        )
    ]


class TestRankStates:
    def test_the_legend_runs_from_best_to_worst(self) -> None:
        assert LEGEND == (
            "ok", "no_model", "stale", "drift", "anomalous", "minor", "major",
            "critical",
        )  # fmt: skip
        assert [LEGEND.index(s) for s in SEVERITIES] == [5, 6, 7]

    @pytest.mark.parametrize(
        ("facts", "state"),
        [
            ((True, False, False, False, NO_INCIDENT), "ok"),
            ((False, False, False, False, NO_INCIDENT), "no_model"),
            ((False, True, False, False, NO_INCIDENT), "stale"),
            ((True, True, True, False, NO_INCIDENT), "drift"),
            ((True, True, True, True, NO_INCIDENT), "anomalous"),
            ((True, False, False, True, 0), "minor"),
            ((False, True, True, True, 1), "major"),
            ((True, False, False, False, 2), "critical"),
        ],
    )
    def test_a_sensor_shows_the_worst_that_holds(
        self, facts: Facts, state: str
    ) -> None:
        assert ranked([facts]) == [state]

    @given(
        st.lists(
            st.tuples(
                st.booleans(), st.booleans(), st.booleans(), st.booleans(),
                st.sampled_from([NO_INCIDENT, 0, 1, 2]),
            ),
            max_size=50,
        )
    )  # fmt: skip
    def test_equals_the_rules_one_sensor_at_a_time(self, facts: list[Facts]) -> None:
        assert ranked(facts) == [reference(*f) for f in facts]

    def test_gives_one_byte_a_sensor(self) -> None:
        none = np.zeros(3, bool)
        facts = SensorFacts(none, none, none, none, np.full(3, 2, np.int8))

        states = rank_states(facts)

        assert states.dtype == np.uint8
        assert states.tolist() == [SensorState.CRITICAL] * 3


class TestGridOrder:
    @given(
        st.lists(
            st.from_regex(r"[a-c]{1,2}([_.:-][a-c0-9]{1,2}){0,2}", fullmatch=True),
            unique=True,
            max_size=40,
        )
    )
    def test_lists_by_group_then_id_in_runs(self, sensors: list[str]) -> None:
        order, runs = grid_order(sensors)

        listed = [sensors[i] for i in order]
        assert sorted(order.tolist()) == list(range(len(sensors)))
        assert listed == sorted(sensors, key=lambda s: (sensor_group(s), s))
        assert [r.start for r in runs] == [
            sum(r.count for r in runs[:k]) for k in range(len(runs))
        ]
        assert sum(r.count for r in runs) == len(sensors)
        for run in runs:
            members = listed[run.start : run.start + run.count]
            assert {sensor_group(s) for s in members} == {run.name}
        assert len({r.name for r in runs}) == len(runs)

    def test_an_empty_fleet_has_no_run(self) -> None:
        order, runs = grid_order([])

        assert (order.tolist(), runs) == ([], [])


def of_prefix(sensor: str, prefix: str) -> bool:
    """The rule, one sensor at a time."""
    return sensor.startswith(prefix) or prefix.startswith(sensor + "_")


@pytest.mark.parametrize(
    ("sensor", "prefix", "kept"),
    [
        ("sensor_001", "sensor_0", True),
        ("sensor_001", "sensor_001", True),
        ("sensor_001", "sensor_001_", True),
        ("sensor_001", "sensor_001_radial", True),
        ("sensor_001", "sensor_0010", False),
        ("sensor_001", "sensor_002", False),
        ("sensor", "sensor_001_radial", True),  # a sensor of its own, `sensor`
        ("press.l2.m07", "press.l2", True),
        ("press.l2.m07", "press.l3", False),
        ("pump7", "", True),
    ],
)
def test_a_prefix_keeps_the_sensors_a_series_of_which_may_begin_with_it(
    sensor: str, prefix: str, kept: bool
) -> None:
    assert prefix_mask([sensor], prefix).tolist() == [kept]


@given(
    st.lists(st.from_regex(r"[ab_]{0,5}", fullmatch=True), max_size=30),
    st.from_regex(r"[ab_]{0,7}", fullmatch=True),
)
def test_a_prefix_mask_follows_the_rule(sensors: list[str], prefix: str) -> None:
    assert prefix_mask(sensors, prefix).tolist() == [
        of_prefix(s, prefix) for s in sensors
    ]
