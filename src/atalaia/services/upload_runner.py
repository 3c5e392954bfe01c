"""The runner of uploads (`services.uploads`): a thread of the training
service, or driven a chunk at a time with `step` (as `services.operation_runner`
runs fleet operations).

It claims an unfinished upload (`UploadStore.claim`: a lease of LEASE_S) —
reading the file where it was spooled, or, on another host, a copy fetched
from the artifact store into its own spool folder — then ingests the file a
chunk at a time, each chunk in one transaction with the upload's progress
(`chunks_done`). A runner that dies leaves its lease to run out; another one
then reads the file again from the chunk after the last one recorded.
Readings are stored idempotently, so a chunk stored just before a crash is
not stored twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from atalaia.adapters.db.repositories import UploadStore
from atalaia.adapters.uploads import Chunk, chunks
from atalaia.core.ports import ArtifactStore
from atalaia.core.series import TimeRange
from atalaia.core.uploads import Upload, UploadStatus
from atalaia.errors import DependencyUnavailable, InvalidInput, NotFound
from atalaia.files import make_private_dir
from atalaia.services.leased_runner import LeasedRunner
from atalaia.services.operations import utcnow
from atalaia.services.registry import committed
from atalaia.services.training_chunk import SessionFactory
from atalaia.services.uploads import (
    forget_spool,
    ingest_chunk,
    read_plan,
    stored_key,
)

log = structlog.get_logger()

LEASE_S = 60.0  # a runner silent this long has died: another takes over
IDLE_S = 0.5  # a runner with nothing to run looks again after this long

Clock = Callable[[], datetime]


class UploadRunner(LeasedRunner):
    """Claims unfinished uploads from the database and ingests them a chunk at
    a time (`step`), on a thread of its own between `start` and `stop`."""

    kind = "uploads"

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        artifacts: ArtifactStore,
        spool_dir: Path,
        time_range: TimeRange,
        clock: Clock = utcnow,
        lease_s: float = LEASE_S,
        idle_s: float = IDLE_S,
    ) -> None:
        super().__init__(idle_s=idle_s)
        self.sessions = sessions
        self.artifacts = artifacts
        self.spool_dir = spool_dir
        self.time_range = time_range
        self.clock = clock
        self.lease = timedelta(seconds=lease_s)
        # The file being read: (upload, its spool, chunks read, the chunks to come).
        self._reading: tuple[str, str, int, Iterator[Chunk]] | None = None

    def claim(self) -> str | None:
        """Take the oldest unfinished upload no live runner holds whose file
        this host can read."""
        now = self.clock()
        with self.sessions() as session:
            store = UploadStore(session)
            for upload_id, spool in store.claimable(now=now):
                if self._local(spool) is None:
                    continue  # its file cannot be read from here (yet)
                taken = store.claim(
                    upload_id, runner=self.name, now=now, lease_until=now + self.lease
                )
                session.commit()
                if taken:
                    log.info("uploads.claimed", upload_id=upload_id)
                    self.held = upload_id
                    return upload_id
        return None

    def step(self) -> bool:
        """Ingest a chunk of the upload held, or of one claimed now; False when
        there is none to run."""
        upload_id = self.held or self.claim()
        if upload_id is None:
            return False
        try:
            more = self.run_chunk(upload_id)
        except InvalidInput as exc:  # the file stopped reading midway
            self.fail(upload_id, exc.detail)
            return True
        if not more:
            self._ended(upload_id)
        return True

    def run_chunk(self, upload_id: str) -> bool:
        """Ingest the next chunk of an upload this runner holds; False once the
        upload has ended, or when another runner took it over."""
        with self.sessions() as session:
            return committed(
                session, lambda: self._chunk(session, upload_id),
                what=f"chunk of upload {upload_id}",
            )  # fmt: skip

    def _chunk(self, session: Session, upload_id: str) -> bool:
        store = UploadStore(session)
        now = self.clock()
        upload = store.hold(upload_id, runner=self.name, lease_until=now + self.lease)
        if upload is None:
            return False
        spool = self._local(store.spool_path(upload_id))
        if spool is None:
            raise InvalidInput(
                f"the file of upload {upload_id!r} is gone", rule="upload_file_kept"
            )
        chunk = self._next_chunk(upload, spool)
        if chunk is None:
            store.finish(upload_id, status=UploadStatus.DONE, at=now, error=None)
            return False
        ingest_chunk(
            session=session, upload=upload, chunk=chunk, time_range=self.time_range
        )
        return True

    def _next_chunk(self, upload: Upload, spool: str) -> Chunk | None:
        """The chunk after the last one recorded: from the file being read, or
        from the file opened again (a chunk whose transaction failed, an
        upload taken over)."""
        reading = self._reading
        if reading is None or reading[:3] != (upload.id, spool, upload.chunks_done):
            file_format, layout, dialect = read_plan(upload)
            columns = [layout.timestamp, *([layout.series] if layout.series else [])]
            columns += layout.value_columns
            rest = chunks(Path(spool), file_format, columns, dialect)
            reading = (upload.id, spool, upload.chunks_done, rest)
            for _ in islice(rest, upload.chunks_done):
                pass
        upload_id, path, read, rest = reading
        chunk = next(rest, None)
        self._reading = (upload_id, path, read + 1, rest)
        return chunk

    def fail(self, upload_id: str, error: str) -> None:
        """End an upload this runner holds as failed (`error`: why)."""
        with self.sessions() as session:
            store = UploadStore(session)
            now = self.clock()
            if store.hold(upload_id, runner=self.name, lease_until=now + self.lease):
                store.finish(upload_id, status=UploadStatus.FAILED, at=now, error=error)
            session.commit()
        self._ended(upload_id)

    def _ended(self, upload_id: str) -> None:
        with self.sessions() as session:
            upload = UploadStore(session).get(upload_id)
            spool = UploadStore(session).spool_path(upload_id)
        self.held, self._reading = None, None
        if upload.status.terminal:
            forget_spool(spool)
            forget_spool(str(self.spool_dir / Path(spool).name))
            log.info(
                "uploads.ended", upload_id=upload_id, status=upload.status,
                stored=upload.readings_stored, invalid=upload.invalid,
            )  # fmt: skip

    def _local(self, spool: str) -> str | None:
        """An upload's file on this host: where it was spooled, or a copy
        fetched from the artifact store (None: neither can be read now)."""
        if Path(spool).exists():
            return spool
        copy = self.spool_dir / Path(spool).name
        if not copy.exists():
            try:
                make_private_dir(self.spool_dir)
                self.artifacts.get_file(stored_key(spool), copy)
            except (NotFound, DependencyUnavailable):
                return None
        return str(copy)

    def release(self, held: str) -> None:
        with self.sessions() as session:
            UploadStore(session).release(held, runner=self.name)
            session.commit()
