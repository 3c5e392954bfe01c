"""Types of the numbers requests carry, bounded to what the database stores.

A number past its column's range would fail in the driver (500): refuse it at
the edge with the rule in the 422 (`request_schema`) and in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_VERSION = 2**31 - 1  # model versions are 32-bit integer columns (PostgreSQL)

# A model version, in a path, a query or a body.
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION)]
