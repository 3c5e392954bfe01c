"""Readings as a hypertable when the server offers TimescaleDB, a plain indexed
table otherwise: the decision, and migration 0004 on the real servers."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from typer.testing import CliRunner

from atalaia.adapters.db.migrate import alembic_config, upgrade_database
from atalaia.adapters.db.timescale import (
    ReadingsLayout,
    TimescaleOffer,
    choose_layout,
    readings_layout,
    timescale_offer,
)
from atalaia.cli import app

HYPERTABLE, PLAIN = ReadingsLayout.HYPERTABLE, ReadingsLayout.PLAIN


class TestChooseLayout:
    @pytest.mark.parametrize(
        ("offer", "layout", "reason"),
        [
            (TimescaleOffer(False, False, False), PLAIN, "not available"),
            (TimescaleOffer(True, False, False), PLAIN, "not in shared_preload"),
            (TimescaleOffer(True, True, False), HYPERTABLE, "is available"),
            (TimescaleOffer(True, True, True), HYPERTABLE, "is installed"),
        ],
    )
    def test_on_postgresql_follows_what_the_server_offers(
        self, offer: TimescaleOffer, layout: ReadingsLayout, reason: str
    ) -> None:
        choice = choose_layout("postgresql", offer)

        assert choice.layout is layout
        assert reason in choice.reason

    def test_sqlite_keeps_a_plain_table(self) -> None:
        assert choose_layout("sqlite", None) == choose_layout(
            "sqlite", TimescaleOffer(True, True, True)
        )
        assert choose_layout("sqlite", None).layout is PLAIN


def expected_layout(engine: Engine) -> ReadingsLayout:
    """What 0004 should make of the readings on this server."""
    with engine.connect() as connection:
        dialect = connection.dialect.name
        offer = timescale_offer(connection) if dialect == "postgresql" else None
    return choose_layout(dialect, offer).layout


class TestMigration:
    def test_leaves_a_plain_table_indexed_by_series_and_time_without_timescale(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        if expected_layout(engine) is HYPERTABLE:
            pytest.skip("this PostgreSQL offers TimescaleDB: the readings are chunked")

        upgrade_database(blank_database_url)

        with engine.connect() as connection:
            assert readings_layout(connection) is PLAIN
        key = inspect(engine).get_pk_constraint("readings")
        assert (key["name"], key["constrained_columns"]) == (
            "pk_readings", ["series_key", "ts"],
        )  # fmt: skip

    def test_follows_what_the_server_offers(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)

        with engine.connect() as connection:
            assert readings_layout(connection) is expected_layout(engine)

    def test_downgrades_to_the_layout_before_and_back(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)
        command.downgrade(alembic_config(blank_database_url), "0003")
        with engine.connect() as connection:
            assert readings_layout(connection) is PLAIN

        upgrade_database(blank_database_url)

        with engine.connect() as connection:
            assert readings_layout(connection) is expected_layout(engine)


class TestReported:
    def test_db_upgrade_and_db_info_say_how_readings_are_stored(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        runner, env = CliRunner(), {"ATALAIA_DATABASE_URL": blank_database_url}
        layout = expected_layout(engine)

        upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
        described = runner.invoke(app, ["db", "info"], env=env)

        assert upgraded.exit_code == 0, upgraded.output
        assert upgraded.output.splitlines()[-1] == f"readings: {layout}"
        assert described.exit_code == 0, described.output
        head = ScriptDirectory.from_config(alembic_config(blank_database_url))
        assert described.output.splitlines()[1:] == [
            f"revision: {head.get_current_head()}",
            f"readings: {layout}",
        ]

    def test_db_info_on_a_database_without_schema(
        self, blank_database_url: str
    ) -> None:
        env = {"ATALAIA_DATABASE_URL": blank_database_url}

        described = CliRunner().invoke(app, ["db", "info"], env=env)

        assert described.output.splitlines()[1:] == [
            "revision: (none)",
            "readings: (no schema yet)",
        ]
