"""A throwaway PostgreSQL cluster archiving its WAL through pgBackRest into a
posix repository of its own: the PITR drill (`tests/adapters/test_pitr.py`)
and `python -m bench pitr`.

Everything lives in one temporary folder (data directory, socket, repository,
pgBackRest's config, spool and logs) owned by `postgres`: run as root (CI),
the server and pgBackRest run as that user through `runuser`; otherwise as
the current user. The server listens on a free loopback port, trust auth.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from atalaia.cli.demo import free_port

STANZA = "atalaia"
SERVER_BINARIES = Path("/usr/lib/postgresql")
RUN_TIMEOUT_S = 300.0
INSTALL = "apt-get install pgbackrest postgresql"


def server_binaries() -> Path:
    """The newest PostgreSQL server's bin folder (initdb, pg_ctl), pgBackRest on
    PATH; FileNotFoundError naming the package otherwise."""
    found = sorted(SERVER_BINARIES.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found or shutil.which("pgbackrest") is None:
        raise FileNotFoundError(f"pgbackrest or initdb is missing ({INSTALL})")
    return found[-1].parent


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass(frozen=True, slots=True)
class ArchivingCluster:
    """A cluster in `root` on `port`, archiving through pgBackRest's stanza
    `atalaia` (`archive-async`, zstd) with `archive_timeout_s` (0: off)."""

    root: Path
    port: int
    bin: Path
    archive_timeout_s: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def config(self) -> Path:
        return self.root / "pgbackrest.conf"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *argv: str | Path) -> str:
        """Run `argv` as the cluster's owner; its stdout (RuntimeError with its
        output on failure)."""
        done = subprocess.run(
            _as_postgres([str(a) for a in argv]),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        if done.returncode != 0:
            said = (done.stdout + done.stderr).strip()
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({done.returncode}): {said}"
            )
        return done.stdout

    def pgbackrest(self, *args: str) -> str:
        return self.run(
            "pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args
        )

    def init(self) -> None:
        """initdb, archiving settings, pgBackRest's config (not started)."""
        self.run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust")
        push = f"pgbackrest --config={self.config} --stanza={STANZA} archive-push %p"
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": f"'{push}'",
            "archive_timeout": str(self.archive_timeout_s),
            "max_wal_senders": "0",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.repo}\nrepo1-retention-full=1\n"
            f"log-path={self.root}/log\nlock-path={self.root}/lock\n"
            f"spool-path={self.root}/spool\narchive-async=y\n"
            "compress-type=zst\nprocess-max=2\nstart-fast=y\n"
            "log-level-console=warn\nlog-level-file=off\n"
            f"[{STANZA}]\npg1-path={self.data}\npg1-port={self.port}\n"
            f"pg1-socket-path={self.root}\n"
        )

    def start(self) -> None:
        log = self.root / "server.log"
        self.run(self.bin / "pg_ctl", "-D", self.data, "-l", log, "-w", "start")

    def stop(self) -> None:
        self.run(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def full_backup(self) -> None:
        """Create the stanza and take a full backup (what every restore starts from)."""
        self.pgbackrest("stanza-create")
        self.pgbackrest("--type=full", "backup")

    def restore(self, *, target_type: str, target: str) -> None:
        """Wipe the data directory and restore it from the latest backup to
        `target` (a restore point's name, or a time), promoted once reached
        (the server stopped)."""
        # The latest backup, named: by itself pgBackRest picks one whose stop
        # time, in whole seconds, is before the target's (none, within its
        # last second).
        [stanza] = json.loads(self.pgbackrest("--output=json", "info"))
        shutil.rmtree(self.data)
        self.pgbackrest(
            f"--set={stanza['backup'][-1]['label']}", f"--type={target_type}",
            f"--target={target}", "--target-action=promote", "restore",
        )  # fmt: skip

    def wait_archived(self, segment: str, *, timeout_s: float = 120.0) -> None:
        """Wait until WAL segment `segment` is in the repository."""
        deadline = time.monotonic() + timeout_s
        while not self.archived(segment):
            if time.monotonic() > deadline:
                raise TimeoutError(f"WAL segment {segment} not archived")
            time.sleep(0.05)

    def archived(self, segment: str) -> bool:
        """Whether WAL segment `segment` is in the repository (pgBackRest files
        it as `<segment>-<sha1>.zst` in a folder of its first 16 characters)."""
        folder = self.repo / "archive" / STANZA
        return any(folder.glob(f"*/{segment[:16]}/{segment}-*"))

    def wait_promoted(self, *, timeout_s: float = 120.0) -> None:
        """Wait until recovery has ended and the server takes writes."""
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(self.url, autocommit=True) as conn:
            while conn.execute("SELECT pg_is_in_recovery()").fetchone() != (False,):
                if time.monotonic() > deadline:
                    raise TimeoutError("the restored cluster is still recovering")
                time.sleep(0.05)


@contextmanager
def archiving_cluster(*, archive_timeout_s: int = 0) -> Iterator[ArchivingCluster]:
    """A started cluster with a full backup in its repository, removed after."""
    bin_dir = server_binaries()
    root = Path(tempfile.mkdtemp(prefix="atalaia-pitr-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = ArchivingCluster(root, free_port(), bin_dir, archive_timeout_s)
    try:
        cluster.init()
        cluster.start()
        cluster.full_backup()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.stop()
        shutil.rmtree(root)
