"""Bulk reads as columns, without one SQLAlchemy Row object per row.

At hundreds of thousands of rows, building Row objects costs more than the query.
The driver's own tuples, read a chunk at a time and picked apart by C-level
iterators, cost a fraction of it, and only a chunk of them is alive at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import Executable
from sqlalchemy.orm import Session

CHUNK_ROWS = 20_000
Kind = type[str] | type[bytes] | type[np.generic]


def fetch_columns(
    session: Session, stmt: Executable, kinds: Sequence[Kind]
) -> list[Any]:
    """Each column of `stmt`'s rows: a list for `str` and `bytes` (None kept),
    else an array of that type.

    No result processing is applied: only for columns the driver already gives
    as Python values (numbers, strings), not JSON or UtcDateTime columns.
    """
    columns: list[list[Any]] = [[] for _ in kinds]
    result = session.connection().execute(stmt)
    try:
        while rows := result.cursor.fetchmany(CHUNK_ROWS):
            for i, (kind, column) in enumerate(zip(kinds, columns, strict=True)):
                values = map(itemgetter(i), rows)
                if issubclass(kind, str | bytes):
                    column.extend(values)
                else:
                    column.append(np.fromiter(values, kind, len(rows)))
    finally:
        result.close()
    return [
        column
        if issubclass(kind, str | bytes)
        else np.concatenate([np.empty(0, kind), *column])
        for kind, column in zip(kinds, columns, strict=True)
    ]
