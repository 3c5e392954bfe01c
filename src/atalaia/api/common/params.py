"""Types of the values requests carry, bounded to what the database stores.

A number past its column's range would fail in the driver (500): refuse it at
the edge with the rule in the 422 (`request_schema`) and in OpenAPI. Strings
are refused with a rule of their own (`NAMED_RULES`), which the 422 names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic.config import JsonDict
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from atalaia.core.series import MAX_ABS_VALUE, SERIES_ID_PATTERN, check_series_id
from atalaia.errors import InvalidInput

MAX_VERSION = 2**31 - 1  # model versions are 32-bit integer columns (PostgreSQL)
# The longest free text a request carries (a feedback note). Far below what
# SQLite takes as a LIKE pattern (50,000 bytes: a prefix past it was a 503).
MAX_TEXT_LENGTH = 1000


def _whole(value: object) -> object:
    """75.0 is an integer to JSON Schema: let strict bodies take it as 75."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A model version, in a path, a query or a body.
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION), BeforeValidator(_whole)]

# A row's id (a rollout's): what a BIGINT holds.
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
# A list's cursor that is a row's id.
IdCursor = Annotated[str, Field(pattern=r"^[0-9]{1,18}$")]

# Epoch seconds of a reading: the app's OpenAPI document gives them the bounds
# of its settings (`timestamp_min`, `timestamp_max`), which the routes check.
EPOCH_SECONDS: JsonDict = {"x-epoch-seconds": True}
EpochSeconds = Annotated[float, Field(json_schema_extra=EPOCH_SECONDS)]

# A reading's value: its bounds documented; the routes check them and name the
# rule (`value_range`), which a pydantic bound would not.
ReadingValue = Annotated[
    float,
    Field(json_schema_extra={"minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE}),
]

# A moment: epoch seconds, else ISO 8601. A number is read as a number first:
# pydantic's datetime would read one past 2e10 as milliseconds, unlike every
# other timestamp, which `TimeRange` checks (and tells milliseconds from seconds).
Moment = Annotated[float | datetime, Field(union_mode="left_to_right")]

# Control characters (Unicode Cc) but tab, line feed and carriage return, which
# a multi-line note may hold. PostgreSQL text cannot store U+0000 at all; the
# others mean nothing in an id, a prefix or a name, and rewrite terminals and
# log viewers that print them (ESC sequences).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The same, for OpenAPI (ECMA-262 regular expressions).
_CONTROL_CLASS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
_NO_CONTROL_PATTERN = f"^[^{_CONTROL_CLASS}]*$"
# The characters `str.strip` removes that text may hold, as the body of an
# OpenAPI character class (ECMA's `\s` differs from Python's by U+FEFF).
SPACE_CLASS = r"\t\n\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text with something but spaces in it (`str.strip` leaves some), for OpenAPI.
NOT_BLANK_PATTERN = (
    f"^[^{_CONTROL_CLASS}]*[^{_CONTROL_CLASS}{SPACE_CLASS}][^{_CONTROL_CLASS}]*$"
)


def check_text(text: str) -> str:
    """Return `text` unchanged, or raise InvalidInput (`no_control_characters`)."""
    found = _CONTROL.search(text)
    if found:
        raise InvalidInput(
            f"control character U+{ord(found[0]):04X} at index {found.start()}; "
            "text may hold any character but U+0000–U+001F (tab, line feed and "
            "carriage return allowed) and U+007F–U+009F",
            rule="no_control_characters",
        )
    return text


def _as_rule(check: Callable[[str], str]) -> AfterValidator:
    """Run `check` as a pydantic validator whose error type is the rule it names."""

    def validate(text: str) -> str:
        try:
            return check(text)
        except InvalidInput as broken:
            raise PydanticCustomError(broken.rule, broken.detail) from None

    return AfterValidator(validate)


# The rules these types report as a 422's `rule` (instead of `request_schema`).
NAMED_RULES = frozenset({"no_control_characters", "series_id_format"})

# Any free string a request carries: a cursor, a prefix, a note, a name, a key.
# Bounded, pydantic refuses half a surrogate pair (a lone JSON `\ud800`), which
# no UTF-8 text can hold (request_schema).
Text = Annotated[
    str,
    StringConstraints(max_length=MAX_TEXT_LENGTH),
    _as_rule(check_text),
    Field(json_schema_extra={"pattern": _NO_CONTROL_PATTERN}),
]

# A series id, in a path, a query or a body (`core.series.SERIES_ID_PATTERN`):
# documented as OpenAPI's `pattern`, enforced by the core's check, which answers
# 422 `series_id_format` like every other route.
SERIES_ID_SCHEMA: JsonDict = {"pattern": f"^{SERIES_ID_PATTERN.pattern}$"}
SeriesId = Annotated[
    str,
    _as_rule(check_series_id),
    WithJsonSchema({"type": "string", **SERIES_ID_SCHEMA}),
]


def id_cursor(first: str) -> Any:
    """The `after` query of a list paged by id: the `next_cursor` of the page
    before; without it, `first`."""
    return Query(
        description=f"`next_cursor` of the previous page; none: {first}",
        json_schema_extra={"pattern": r"^[0-9]{1,18}$"},
    )
