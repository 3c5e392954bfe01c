"""Readings as a TimescaleDB hypertable when the extension is there, else a plain
table: the decision, what the server offers, and what the table is now.

The readings' time column `ts` holds epoch seconds (double precision), which
TimescaleDB cannot partition on directly: the hypertable partitions on
`to_timestamp(ts)` through an immutable SQL function. The primary key
(series_key, ts) holds the time column, as a hypertable's unique indexes must.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, text

EXTENSION = "timescaledb"
TIME_FUNCTION = "atalaia_reading_time"
CHUNK_INTERVAL = "1 day"


class ReadingsLayout(StrEnum):
    HYPERTABLE = "hypertable"
    PLAIN = "plain table"


@dataclass(frozen=True, slots=True)
class TimescaleOffer:
    """What the PostgreSQL server offers of TimescaleDB."""

    available: bool  # the extension's files are installed on the server
    preloaded: bool  # its library is in shared_preload_libraries
    installed: bool  # CREATE EXTENSION has run in this database


@dataclass(frozen=True, slots=True)
class LayoutChoice:
    layout: ReadingsLayout
    reason: str


def choose_layout(dialect: str, offer: TimescaleOffer | None) -> LayoutChoice:
    """Whether the readings should become a hypertable, and why (or why not).

    >>> choose_layout("sqlite", None).layout
    <ReadingsLayout.PLAIN: 'plain table'>
    >>> choose_layout("postgresql", TimescaleOffer(True, True, False)).reason
    'timescaledb is available'
    """
    if dialect != "postgresql" or offer is None:
        return LayoutChoice(ReadingsLayout.PLAIN, f"{dialect} has no TimescaleDB")
    if offer.installed:
        return LayoutChoice(ReadingsLayout.HYPERTABLE, "timescaledb is installed")
    if not offer.available:
        return LayoutChoice(
            ReadingsLayout.PLAIN, "the timescaledb extension is not available"
        )
    if not offer.preloaded:
        return LayoutChoice(
            ReadingsLayout.PLAIN,
            "timescaledb is available but not in shared_preload_libraries",
        )
    return LayoutChoice(ReadingsLayout.HYPERTABLE, "timescaledb is available")


def timescale_offer(connection: Connection) -> TimescaleOffer:
    """Ask a PostgreSQL server what it offers of TimescaleDB."""
    available, installed, preload = connection.execute(
        text(
            "SELECT"
            " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = :name),"
            " EXISTS (SELECT 1 FROM pg_extension WHERE extname = :name),"
            " current_setting('shared_preload_libraries')"
        ),
        {"name": EXTENSION},
    ).one()
    libraries = {part.strip() for part in str(preload).split(",")}
    return TimescaleOffer(bool(available), EXTENSION in libraries, bool(installed))


def readings_layout(connection: Connection) -> ReadingsLayout:
    """What the readings table of this database is now."""
    if connection.dialect.name != "postgresql":
        return ReadingsLayout.PLAIN
    if not timescale_offer(connection).installed:
        return ReadingsLayout.PLAIN
    hypertable = connection.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = current_schema()"
            " AND hypertable_name = 'readings')"
        )
    )
    return ReadingsLayout.HYPERTABLE if hypertable else ReadingsLayout.PLAIN
