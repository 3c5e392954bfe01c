"""Readings from a message's payload, as sensors and gateways publish them.

A payload is one of:

- a plain number (`0.315`): the reading, stamped with the time it was received
  when stamping on receipt is on, refused otherwise (a reading's time is the
  time it was measured: a queue drained late would misdate it);
- a JSON object `{"value": 0.315, "timestamp": 1733587200}`, or its short form
  `{"v": .., "t": ..}` (`ts` too); without a time, as a plain number;
- a JSON list of such objects.

Times are epoch seconds, milliseconds (Sparkplug's), microseconds or
nanoseconds, told apart by magnitude (`TimeRange.seconds_of`), or ISO 8601
strings (UTC when they carry no offset). Anything else is refused with
InvalidInput naming its rule; nothing half-read is returned.

>>> decode_readings(b'{"v": 1.5, "t": 1733587200000}', received_at=0.0)
[(1733587200.0, 1.5)]
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from atalaia.core.series import TimeRange, check_value
from atalaia.errors import InvalidInput

Reading = tuple[float, float]  # (epoch seconds, value)
VALUE_KEYS = ("value", "v")
TIME_KEYS = ("timestamp", "t", "ts")
_NO_TIME = (
    "a reading without a time is refused unless stamping on receipt is on; "
    "send {'value': .., 'timestamp': ..}"
)


def decode_readings(
    payload: bytes,
    *,
    received_at: float,
    span: TimeRange = TimeRange(),
    stamp_on_receipt: bool = False,
) -> list[Reading]:
    """The payload's readings (see the module); `received_at` in epoch seconds."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            f"payload {payload[:60]!r} is neither a number nor JSON",
            rule="payload_format",
        ) from None
    stamp = received_at if stamp_on_receipt else None
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise InvalidInput("payload is an empty list", rule="payload_format")
    return [_reading(item, stamp, span) for item in items]


def _reading(item: object, stamp: float | None, span: TimeRange) -> Reading:
    if isinstance(item, dict):
        value = _first(item, VALUE_KEYS)
        if value is None:
            raise InvalidInput(
                f"object has no {' or '.join(VALUE_KEYS)}", rule="payload_fields"
            )
        time = _first(item, TIME_KEYS)
    else:
        value, time = item, None
    number = _number(value)
    if time is None:
        if stamp is None:
            raise InvalidInput(_NO_TIME, rule="payload_timestamp")
        time = stamp
    return _seconds(time, span), number


def _first(item: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in item:
            return item[key]
    return None


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"value {value!r:.60} is not a number", rule="payload_value_type"
        )
    check_value(float(value))  # NaN and ±Inf fail it too
    return float(value)


def _seconds(time: object, span: TimeRange) -> float:
    if isinstance(time, str):
        try:
            moment = datetime.fromisoformat(time)
        except ValueError:
            raise InvalidInput(
                f"timestamp {time!r:.60} is not ISO 8601", rule="payload_timestamp"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        time = moment.timestamp()
    if isinstance(time, bool) or not isinstance(time, int | float):
        raise InvalidInput(
            f"timestamp {time!r:.60} is not a number", rule="payload_timestamp"
        )
    return span.seconds_of(float(time))
