from __future__ import annotations

import pytest

from atalaia.core.reading_payloads import decode_readings
from atalaia.core.series import TimeRange
from atalaia.errors import InvalidInput

T = 1733587200  # 2024-12-07T16:00:00Z
NOW = 1733590800.5


def decoded(payload: bytes, *, stamp: bool = False) -> list[tuple[float, float]]:
    return decode_readings(payload, received_at=NOW, stamp_on_receipt=stamp)


def refused(payload: bytes, *, stamp: bool = False) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        decoded(payload, stamp=stamp)
    return caught.value


class TestFormats:
    @pytest.mark.parametrize(
        "payload",
        [
            b'{"value": 0.5, "timestamp": 1733587200}',
            b'{"v": 0.5, "t": 1733587200}',
            b'{"v": 0.5, "ts": 1733587200}',
            b'{"value": 0.5, "timestamp": 1733587200, "quality": "good"}',
            b'[{"v": 0.5, "t": 1733587200}]',
        ],
    )
    def test_reads_an_object_or_a_list_of_them(self, payload: bytes) -> None:
        assert decoded(payload) == [(T, 0.5)]

    def test_reads_every_reading_of_a_list_in_order(self) -> None:
        payload = b'[{"v": 1, "t": 1733587201}, {"v": 2, "t": 1733587200}]'
        assert decoded(payload) == [(T + 1, 1.0), (T, 2.0)]

    def test_stamps_a_plain_number_on_receipt_when_told_to(self) -> None:
        assert decoded(b"0.315", stamp=True) == [(NOW, 0.315)]

    def test_stamps_an_object_without_time_on_receipt_when_told_to(self) -> None:
        assert decoded(b'{"value": 3}', stamp=True) == [(NOW, 3.0)]

    def test_keeps_the_readings_time_over_the_receipt(self) -> None:
        assert decoded(b'{"v": 3, "t": 1733587200}', stamp=True) == [(T, 3.0)]


class TestTimes:
    @pytest.mark.parametrize(
        ("time", "seconds"),
        [
            ("1733587200", T),
            ("1733587200.25", T + 0.25),
            ("1733587200250", T + 0.25),  # Sparkplug's milliseconds
            ("1733587200250000", T + 0.25),  # microseconds
            ("1733587200250000000", T + 0.25),  # nanoseconds
            ('"2024-12-07T16:00:00Z"', T),
            ('"2024-12-07T17:00:00+01:00"', T),
            ('"2024-12-07T16:00:00"', T),  # no offset: UTC
        ],
    )
    def test_reads_any_unit_or_iso_8601(self, time: str, seconds: float) -> None:
        [(timestamp, _)] = decoded(b'{"v": 1, "t": %s}' % time.encode())
        assert timestamp == pytest.approx(seconds, abs=1e-6)

    def test_refuses_a_time_in_no_unit_within_the_range(self) -> None:
        error = refused(b'{"v": 1, "t": 12345}')
        assert error.rule == "timestamp_range"

    def test_follows_the_configured_range(self) -> None:
        span = TimeRange(0.0, 10.0)
        assert decode_readings(b'{"v": 1, "t": 5}', received_at=NOW, span=span) == [
            (5.0, 1.0)
        ]


class TestRefused:
    @pytest.mark.parametrize(
        ("payload", "rule"),
        [
            (b"", "payload_format"),
            (b"not json", "payload_format"),
            (b"\xff\xfe", "payload_format"),
            (b"[]", "payload_format"),
            (b"0.315", "payload_timestamp"),  # no time, stamping off
            (b'{"v": 1}', "payload_timestamp"),
            (b'{"t": 1733587200}', "payload_fields"),
            (b'{"v": "1.0", "t": 1733587200}', "payload_value_type"),
            (b'{"v": true, "t": 1733587200}', "payload_value_type"),
            (b'{"v": null, "t": 1733587200}', "payload_fields"),
            (b'{"v": NaN, "t": 1733587200}', "value_range"),
            (b'{"v": Infinity, "t": 1733587200}', "value_range"),
            (b'{"v": 1e101, "t": 1733587200}', "value_range"),
            (b'{"v": 1, "t": "yesterday"}', "payload_timestamp"),
            (b'{"v": 1, "t": true}', "payload_timestamp"),
            (b'{"v": 1, "t": NaN}', "timestamp_range"),
            (b'"text"', "payload_value_type"),
            (b'[{"v": 1, "t": 1733587200}, {"v": 1}]', "payload_timestamp"),
        ],
    )
    def test_refuses_a_bad_payload_naming_the_rule(
        self, payload: bytes, rule: str
    ) -> None:
        assert refused(payload).rule == rule
