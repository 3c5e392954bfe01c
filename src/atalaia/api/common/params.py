"""Types of the numbers requests carry, bounded to what the database stores.

A number past its column's range would fail in the driver (500): refuse it at
the edge with the rule in the 422 (`request_schema`) and in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic.config import JsonDict

MAX_VERSION = 2**31 - 1  # model versions are 32-bit integer columns (PostgreSQL)


def _whole(value: object) -> object:
    """75.0 is an integer to JSON Schema: let strict bodies take it as 75."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A model version, in a path, a query or a body.
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION), BeforeValidator(_whole)]

# Epoch seconds of a reading: the app's OpenAPI document gives them the bounds
# of its settings (`timestamp_min`, `timestamp_max`), which the routes check.
EPOCH_SECONDS: JsonDict = {"x-epoch-seconds": True}
EpochSeconds = Annotated[float, Field(json_schema_extra=EPOCH_SECONDS)]
