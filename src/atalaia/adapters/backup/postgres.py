"""PostgreSQL backups with pg_dump's custom format and pg_restore.

The dump reads a snapshot exported by a transaction of ours, which reads the
dump's counts and referenced blobs in that same snapshot: what the backup
copies afterwards is checked against exactly what the dump holds. pg_restore
loads in one transaction: a failed restore leaves the database as it was.
The password goes to the client programs by `PGPASSWORD`, never their
command line (which `ps` shows).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from atalaia.adapters.backup._dumped import Dumped, read_dumped
from atalaia.core.backup import RestoreTargetNotEmpty
from atalaia.errors import DependencyUnavailable

CONNECT_TIMEOUT_S = 5
SNAPSHOT_FIELD = "lineage->>'data_snapshot'"
TABLES_SQL = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"


class PostgresBackup:
    kind = "postgresql"
    file_name = "database.dump"

    def __init__(self, url: str) -> None:
        self.url_text = url
        self.url = make_url(url).set(drivername="postgresql")
        self.database = str(self.url.database)

    def dump(self, target: Path) -> Dumped:
        try:
            with self._connect() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                (snapshot,) = conn.execute("SELECT pg_export_snapshot()").fetchall()
                dumped = read_dumped(conn.cursor(), snapshot_field=SNAPSHOT_FIELD)
                self._run(
                    "pg_dump", "--format=custom", f"--snapshot={snapshot[0]}",
                    f"--file={target}", self._dsn(),
                )  # fmt: skip
                conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise DependencyUnavailable("database", str(exc).strip()) from exc
        return dumped

    def is_empty(self) -> bool:
        try:
            with self._connect() as conn:
                (row,) = conn.execute(TABLES_SQL).fetchall()
        except psycopg.OperationalError as exc:
            if "does not exist" in str(exc):
                return True
            raise DependencyUnavailable("database", str(exc).strip()) from exc
        return row[0] == 0

    def restore(self, dump: Path, *, force: bool) -> None:
        try:
            self._create_if_missing()
        except psycopg.Error as exc:
            raise DependencyUnavailable("database", str(exc).strip()) from exc
        if not self.is_empty():
            if not force:
                raise RestoreTargetNotEmpty(
                    f"the database {self.database} holds tables: restore into an "
                    "empty one, or pass --force to wipe it"
                )
            self._wipe()
        self._run(
            "pg_restore", "--single-transaction", "--exit-on-error", "--no-owner",
            "--no-privileges", f"--dbname={self._dsn()}", str(dump),
        )  # fmt: skip

    def _wipe(self) -> None:
        with self._connect() as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def _create_if_missing(self) -> None:
        admin = self.url.set(database="postgres")
        with psycopg.connect(
            _libpq(admin), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        ) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if found is None:
                name = sql.Identifier(self.database)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(name))

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            _libpq(self.url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )

    def _dsn(self) -> str:
        return _libpq(self.url.set(password=None))

    def _run(self, program: str, *args: str) -> None:
        env = dict(os.environ)
        if self.url.password is not None:
            env["PGPASSWORD"] = str(self.url.password)
        env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_S))
        done = subprocess.run(
            [program, *args], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise DependencyUnavailable(
                "database", f"{program} failed: {done.stderr.strip()[-500:]}"
            )


def _libpq(url: URL) -> str:
    return url.render_as_string(hide_password=False)
