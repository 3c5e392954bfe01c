"""Uploads in the core: layouts, epoch units, and a chunk's cells sorted out
(held equal to a plain row-by-row reference)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atalaia.core.series import TimeRange
from atalaia.core.uploads import (
    Cells,
    Form,
    Layout,
    LayoutRequest,
    Reason,
    Tally,
    ValueState,
    epoch_unit,
    resolve_layout,
    sort_out,
)
from atalaia.errors import InvalidInput, InvalidSeriesId

T0 = 1_733_011_200.0
RANGE = TimeRange()


class TestResolveLayout:
    def test_long_form_when_its_three_columns_exist(self) -> None:
        layout = resolve_layout(["value", "timestamp", "series_id"], LayoutRequest())

        assert layout == Layout(Form.LONG, "timestamp", "series_id", "value")

    def test_wide_form_names_each_other_column_a_series(self) -> None:
        layout = resolve_layout(["timestamp", "a", "b"], LayoutRequest())

        assert layout.form is Form.WIDE
        assert layout.wide == {"a": "a", "b": "b"}

    def test_a_sensor_names_its_axes(self) -> None:
        layout = resolve_layout(["timestamp", "x"], LayoutRequest(sensor="pump7"))

        assert layout.wide == {"x": "pump7_x"}

    def test_a_mapping_picks_and_names_columns(self) -> None:
        request = LayoutRequest(mapping={"b": "pump8_temp"})

        layout = resolve_layout(["timestamp", "a", "b"], request)

        assert layout.wide == {"b": "pump8_temp"}

    @pytest.mark.parametrize(
        ("columns", "roles"),
        [
            (["Time", "TagName", "Value"], ("Time", "TagName", "Value")),
            (["Date Time", "Tag-Name", "VAL"], ("Date Time", "Tag-Name", "VAL")),
            (["timestamp", "series", "reading"], ("timestamp", "series", "reading")),
        ],
    )
    def test_columns_of_known_names_take_the_default_roles(
        self, columns: list[str], roles: tuple[str, str, str]
    ) -> None:
        layout = resolve_layout(columns, LayoutRequest())

        assert (layout.timestamp, layout.series, layout.value) == roles

    def test_a_column_named_in_the_request_wins_over_a_known_name(self) -> None:
        request = LayoutRequest(timestamp_column="utc")

        layout = resolve_layout(["time", "utc", "a"], request)

        assert (layout.timestamp, layout.wide) == ("utc", {"time": "time", "a": "a"})

    def test_a_layout_reads_back_from_its_description(self) -> None:
        for columns in (["timestamp", "series_id", "value"], ["timestamp", "a"]):
            layout = resolve_layout(columns, LayoutRequest())

            assert Layout.of(layout.describe()) == layout

    @pytest.mark.parametrize(
        ("columns", "request_", "rule"),
        [
            (["when", "value"], LayoutRequest(), "timestamp_column"),
            (["timestamp"], LayoutRequest(), "series_columns"),
            (["timestamp", "a"], LayoutRequest(form=Form.LONG), "long_form_columns"),
            (["timestamp", "a"], LayoutRequest(mapping={"z": "s"}), "mapping_columns"),
        ],
    )
    def test_a_file_that_does_not_fit_is_refused_with_the_rule(
        self, columns: list[str], request_: LayoutRequest, rule: str
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            resolve_layout(columns, request_)

        assert refused.value.rule == rule

    def test_a_mapped_series_id_must_be_valid(self) -> None:
        with pytest.raises(InvalidSeriesId):
            resolve_layout(["timestamp", "a"], LayoutRequest(mapping={"a": "bad id"}))


class TestEpochUnit:
    @pytest.mark.parametrize(
        ("scale", "unit"), [(1.0, "s"), (1e3, "ms"), (1e6, "us"), (1e9, "ns")]
    )
    def test_the_unit_is_told_by_magnitude(self, scale: float, unit: str) -> None:
        raw = (T0 + np.arange(5.0)) * scale

        assert epoch_unit(raw, RANGE) == unit

    def test_seconds_when_no_unit_fits(self) -> None:
        assert epoch_unit(np.array([5.0, np.nan]), RANGE) == "s"


def cells(rows: list[tuple[int, float, float, int]], series: list[str]) -> Cells:
    """Cells of (series code, timestamp, value, value state) rows, lines 2…"""
    codes, ts, vs, states = (np.array(c) for c in zip(*rows, strict=True))
    n = len(rows)
    return Cells(
        lines=np.arange(2, n + 2, dtype=np.int64),
        columns=np.zeros(n, dtype=np.int64),
        codes=codes.astype(np.int64),
        series=series,
        timestamps=ts.astype(np.float64),
        values=vs.astype(np.float64),
        value_states=states.astype(np.int8),
    )


Rows = list[tuple[int, float, float, int]]
Kept = dict[str, list[tuple[float, float]]]


def reference(rows: Rows, series: list[str]) -> tuple[Kept, list[tuple[int, str]]]:
    """Row by row: the readings kept per series and (line, reason) of the rest."""
    kept: dict[str, dict[float, float]] = {}
    invalid = []
    for line, (code, t, v, state) in enumerate(rows, start=2):
        sid = series[code] if code >= 0 else None
        reason = None
        if sid is None or sid == "bad id":
            reason = Reason.SERIES_ID_FORMAT
        elif not np.isfinite(t):
            reason = Reason.TIMESTAMP_UNPARSEABLE
        elif not RANGE.low <= t <= RANGE.high:
            reason = Reason.TIMESTAMP_RANGE
        elif state == ValueState.MISSING:
            reason = Reason.VALUE_MISSING
        elif state == ValueState.UNPARSEABLE:
            reason = Reason.VALUE_UNPARSEABLE
        elif not np.isfinite(v):
            reason = Reason.VALUE_NOT_FINITE
        elif abs(v) > 1e100:
            reason = Reason.VALUE_RANGE
        elif t in kept.get(sid, {}):
            reason = Reason.DUPLICATE_IN_FILE
        if reason is None:
            assert sid is not None
            kept.setdefault(sid, {})[t] = v
        else:
            invalid.append((line, reason.value))
    return {s: sorted(k.items()) for s, k in kept.items()}, invalid


SERIES = ["a", "b", "bad id"]
ROW = st.tuples(
    st.integers(-1, 2),
    st.sampled_from([T0, T0 + 1, T0 + 2, np.nan, 5.0]),
    st.sampled_from([0.5, -1.0, np.nan, np.inf, 1e200]),
    st.sampled_from([0, 0, 0, 1, 2]),
)


class TestSortOut:
    @given(st.lists(ROW, min_size=1, max_size=40))
    def test_equals_the_row_by_row_reference(
        self, rows: list[tuple[int, float, float, int]]
    ) -> None:
        kept, invalid = reference(rows, SERIES)

        found = sort_out(cells(rows, SERIES), RANGE)

        got = {
            sid: list(zip(r.timestamps.tolist(), r.values.tolist(), strict=True))
            for sid, r in found.readings.items()
        }
        reasons = [list(Reason)[int(r)].value for r in found.invalid.reasons]
        assert got == kept
        assert list(zip(found.invalid.lines.tolist(), reasons, strict=True)) == invalid

    def test_a_tally_counts_every_reason_and_details_the_first_rows(self) -> None:
        rows = [(0, T0, np.nan, 2)] * 150 + [(0, np.nan, 1.0, 0)]
        chunk = cells(rows, SERIES)
        tally = Tally()

        tally.add(sort_out(chunk, RANGE).invalid, chunk, ["value"])

        assert tally.by_reason == {
            "value_unparseable": 150, "timestamp_unparseable": 1
        }  # fmt: skip
        assert len(tally.shown) == 100
        assert tally.shown[0] == {
            "line": 2, "column": "value", "series_id": "a",
            "reason": "value_unparseable",
        }  # fmt: skip
