"""The Alembic migrations and the ORM tables agree, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from atalaia.adapters.db.engine import make_session_factory
from atalaia.adapters.db.migrate import alembic_config, upgrade_database
from atalaia.adapters.db.repositories import ReadingStore
from atalaia.adapters.db.tables import Base, UtcDateTime, utcnow
from atalaia.core.series import Readings

APP_TABLES = set(Base.metadata.tables)

# Time zones and JSONB exist only in PostgreSQL's column types.
postgresql_only = pytest.mark.parametrize(
    "blank_database_url",
    [pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)


def differences(
    connection: Connection, metadata: MetaData = Base.metadata
) -> list[Any]:
    """What autogenerate would write to bring the database to `metadata`."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def schema_differences(engine: Engine, metadata: MetaData = Base.metadata) -> list[Any]:
    with engine.connect() as connection:
        return differences(connection, metadata)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


class TestUpgrade:
    def test_creates_every_table_at_the_head_revision(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)
        assert tables(engine) == APP_TABLES | {"alembic_version"}
        assert current_revision(engine) == head_revision(blank_database_url)

    def test_matches_the_orm_tables(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)
        assert schema_differences(engine) == []

    def test_is_a_no_op_when_already_at_head(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)
        upgrade_database(blank_database_url)
        assert schema_differences(engine) == []

    @postgresql_only
    def test_stores_timezone_aware_timestamps_and_jsonb(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)
        inspector = inspect(engine)
        aware, jsonb = set(), set()
        for name in APP_TABLES:
            for column in inspector.get_columns(name):
                kind = column["type"]
                if isinstance(kind, DateTime) and kind.timezone:
                    aware.add(f"{name}.{column['name']}")
                if isinstance(kind, JSONB):
                    jsonb.add(f"{name}.{column['name']}")
        assert aware == columns_of(UtcDateTime)
        assert jsonb == columns_of(JSON)
        assert "training_jobs.created_at" in aware
        assert "model_versions.lineage" in jsonb


class TestComparison:
    """The agreement check above is only worth something if it sees real drift."""

    def test_reports_a_table_the_migrations_lack(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)
        metadata = copy_of(Base.metadata)
        metadata.tables["feedback"].to_metadata(metadata, name="feedback_copy")
        kinds = [diff[0] for diff in flatten(schema_differences(engine, metadata))]
        assert "add_table" in kinds

    def test_reports_a_changed_column_type(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url)
        metadata = copy_of(Base.metadata)
        metadata.tables["training_jobs"].c.status.type = String(32)
        changed = [
            (diff[2], diff[3])
            for diff in flatten(schema_differences(engine, metadata))
            if diff[0] == "modify_type"
        ]
        assert changed == [("training_jobs", "status")]

    @postgresql_only
    def test_reports_a_lost_time_zone(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        # UtcDateTime wraps DateTime(timezone=True); the comparison sees through it.
        # SQLite column types carry no time zone, so only PostgreSQL can tell.
        upgrade_database(blank_database_url)
        metadata = copy_of(Base.metadata)
        metadata.tables["registry_events"].c.at.type = DateTime(timezone=False)
        changed = [
            (diff[2], diff[3])
            for diff in flatten(schema_differences(engine, metadata))
            if diff[0] == "modify_type"
        ]
        assert changed == [("registry_events", "at")]


class TestDowngrade:
    def test_removes_every_table_and_upgrades_again(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        config = alembic_config(blank_database_url)
        upgrade_database(blank_database_url)
        command.downgrade(config, "base")
        assert tables(engine) <= {"alembic_version"}
        assert current_revision(engine) is None
        upgrade_database(blank_database_url)
        assert tables(engine) == APP_TABLES | {"alembic_version"}
        assert schema_differences(engine) == []


class TestTypedModelParams:
    """0003 moves each version's params JSON into typed columns, and back."""

    PARAMS = {"center": 0.1, "scale": 1 / 3, "threshold": 3}

    def test_moves_params_to_columns_and_back(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url, "0002")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO training_jobs (job_id, series_id, status, algorithm,"
                    " hyperparameters, submitted_by, created_at, attempts)"
                    " VALUES ('j1', 's', 'succeeded', 'zscore', '{}', 't', :at, 1)"
                ),
                {"at": utcnow()},
            )
            connection.execute(
                text(
                    "INSERT INTO model_versions (series_id, version, stage, algorithm,"
                    " params, metrics, reference, lineage, job_id, created_at)"
                    " VALUES ('s', 1, 'production', 'zscore', :params, '{}', '{}',"
                    " '{}', 'j1', :at)"
                ),
                {"params": json.dumps(self.PARAMS), "at": utcnow()},
            )

        upgrade_database(blank_database_url)
        with engine.connect() as connection:
            typed = connection.execute(
                text("SELECT center, scale, threshold FROM model_versions")
            ).one()
        command.downgrade(alembic_config(blank_database_url), "0002")
        with engine.connect() as connection:
            params = connection.scalar(text("SELECT params FROM model_versions"))

        assert tuple(typed) == (0.1, 1 / 3, 3.0)
        loaded = json.loads(params) if isinstance(params, str) else params
        assert loaded == self.PARAMS


class TestReadingsSeriesKey:
    """0005 keys the readings by a number per series, and back."""

    READINGS = [("b_x", 2.0, 0.5), ("a_x", 1.0, 0.25), ("a_x", 2.0, 0.75)]

    def test_keeps_every_reading_and_numbers_new_series_after(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url, "0004")
        with engine.begin() as connection:
            for series_id in ("a_x", "b_x"):
                connection.execute(
                    text(
                        "INSERT INTO series (series_id, sensor_id, axis, tags,"
                        " created_at, n_points, mean, m2)"
                        " VALUES (:s, :s, 'x', '{}', :at, 0, 0, 0)"
                    ),
                    {"s": series_id, "at": utcnow()},
                )
            connection.execute(
                text("INSERT INTO readings VALUES (:s, :t, :v)"),
                [{"s": s, "t": t, "v": v} for s, t, v in self.READINGS],
            )

        upgrade_database(blank_database_url)
        keyed = readings_by_id(engine, "r.series_key = s.key")
        sessions = make_session_factory(engine)
        with sessions() as session:
            ReadingStore(session).append("c_x", Readings.of(np.arange(3.0), [1, 2, 3]))
            session.commit()
            rows = session.execute(text("SELECT series_id, key FROM series"))
            keys = {str(series_id): int(key) for series_id, key in rows}
        command.downgrade(alembic_config(blank_database_url), "0004")
        by_id = readings_by_id(engine, "r.series_id = s.series_id")

        assert keyed == sorted(self.READINGS)
        assert keys == {"a_x": 1, "b_x": 2, "c_x": 3}
        assert by_id == sorted([*self.READINGS, *(("c_x", t, t + 1) for t in range(3))])

    def test_stops_before_any_change_at_a_reading_without_its_series(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url, "0004")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO readings VALUES ('ghost', 1, 2)"))

        with pytest.raises(RuntimeError, match="ghost"):
            upgrade_database(blank_database_url)

        assert current_revision(engine) == "0004"
        with engine.connect() as connection:
            row = connection.execute(text("SELECT * FROM readings")).one()
        assert tuple(row) == ("ghost", 1.0, 2.0)


class TestStuckGuard:
    """0009 gives every version a stuck guard's limit, 0 (none) for those before."""

    def test_versions_before_it_have_no_guard(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url, "0008")
        add_one_version(engine)

        upgrade_database(blank_database_url)
        with engine.connect() as connection:
            limit = connection.scalar(text("SELECT stuck_after FROM model_versions"))
        command.downgrade(alembic_config(blank_database_url), "0008")
        with engine.connect() as connection:
            kept = connection.scalar(text("SELECT version FROM model_versions"))

        assert limit == 0
        assert kept == 1
        assert "stuck_after" not in version_columns(engine)


class TestStreamState:
    """0011 gives every version a place for a streaming model's packed params and
    state, NULL (not a streaming model) for those before."""

    def test_versions_before_it_have_none_and_bytes_round_trip(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url, "0010")
        add_one_version(engine)
        packed = bytes(range(256)) * 2  # every byte value, a few hundred bytes

        upgrade_database(blank_database_url)
        with engine.begin() as connection:
            before = connection.scalar(text("SELECT stream FROM model_versions"))
            connection.execute(
                text("UPDATE model_versions SET stream = :packed"), {"packed": packed}
            )
            stored = connection.scalar(text("SELECT stream FROM model_versions"))
        command.downgrade(alembic_config(blank_database_url), "0010")
        with engine.connect() as connection:
            kept = connection.scalar(text("SELECT version FROM model_versions"))

        assert before is None
        assert bytes(stored) == packed
        assert kept == 1
        assert "stream" not in version_columns(engine)


def add_one_version(engine: Engine) -> None:
    """A production version of series 's', trained by job 'j1'."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO training_jobs (job_id, series_id, status, algorithm,"
                " hyperparameters, submitted_by, created_at, attempts)"
                " VALUES ('j1', 's', 'succeeded', 'auto', '{}', 't', :at, 1)"
            ),
            {"at": utcnow()},
        )
        connection.execute(
            text(
                "INSERT INTO model_versions (series_id, version, stage, algorithm,"
                " center, scale, threshold, metrics, reference, lineage, job_id,"
                " created_at) VALUES ('s', 1, 'production', 'zscore', 0, 1, 3,"
                " '{}', '{}', '{}', 'j1', :at)"
            ),
            {"at": utcnow()},
        )


def version_columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("model_versions")}


def readings_by_id(engine: Engine, join: str) -> list[tuple[str, float, float]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT s.series_id, r.ts, r.value FROM readings AS r"
                f" JOIN series AS s ON {join} ORDER BY s.series_id, r.ts"
            )
        )
        return [(s, float(t), float(v)) for s, t, v in rows]


def columns_of(kind: type[TypeEngine[Any]]) -> set[str]:
    """`table.column` names of the ORM columns of type `kind`."""
    return {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, kind)
    }


def copy_of(metadata: MetaData) -> MetaData:
    copy = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


def flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    """Column changes come grouped in lists; table changes come alone."""
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


class TestTrainingClaims:
    """0006 gives each series the claim of its newest job that was not cancelled."""

    def test_keeps_the_interval_of_every_series(
        self, blank_database_url: str, engine: Engine
    ) -> None:
        upgrade_database(blank_database_url, "0005")
        jobs = [
            ("j1", "s1", "succeeded"),
            ("j2", "s1", "cancelled"),
            ("j3", "s2", "queued"),
        ]
        with engine.begin() as connection:
            for job_id, series_id, status in jobs:
                connection.execute(
                    text(
                        "INSERT INTO training_jobs (job_id, series_id, status,"
                        " algorithm, hyperparameters, submitted_by, created_at,"
                        " attempts) VALUES (:j, :s, :status, 'zscore', '{}', 't',"
                        " :at, 0)"
                    ),
                    {"j": job_id, "s": series_id, "status": status, "at": utcnow()},
                )

        upgrade_database(blank_database_url)
        with engine.connect() as connection:
            claims = connection.execute(
                text("SELECT series_id, job_id FROM training_claims")
            ).all()

        assert sorted(map(tuple, claims)) == [("s1", "j1"), ("s2", "j3")]
