"""The on-disk snapshot of the table and of the sensor models: written after
each full load from the registry, read at start when the registry is
unreachable. The sensors' file lies beside the table's (`-sensors.npz`), and
so does the series' stream state (`-streams.npz`), written now and then and
at shutdown, read back at every start."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import structlog

from atalaia.core.sensors import StoredSensor
from atalaia.core.serving import ServedSensor
from atalaia.files import write_private_npz
from atalaia.services.inference.sensors import SensorModels
from atalaia.services.inference.served import LoadState, ServedTable
from atalaia.services.inference.streams import SeriesStreams, StreamsUnreadable
from atalaia.services.model_table import ModelTable, SnapshotUnreadable

SENSORS_LAYOUT = "atalaia.sensors.1"

log = structlog.get_logger()


class Snapshot:
    """Writes the served table to `path`, atomically, and reads it back.

    Written by the change feed's thread after each full load (serving does not
    wait for the disk) and at shutdown; `_written` (the generation of the table
    written last) is only touched under the table's lock.
    """

    def __init__(
        self,
        served: ServedTable,
        sensors: SensorModels,
        streams: SeriesStreams,
        path: Path,
    ) -> None:
        self.served = served
        self.sensors = sensors
        self.streams = streams
        self.path = path
        self.sensors_path = path.with_name(f"{path.stem}-sensors.npz")
        self.streams_path = path.with_name(f"{path.stem}-streams.npz")
        self._written = served.table.generation
        self._streams_written = 0  # `streams.calls` at the last write

    def restore_streams(self) -> None:
        """Take the stream state last written, if any can be read."""
        if not self.streams_path.exists():
            return
        try:
            series = self.streams.restore(self.streams_path)
        except StreamsUnreadable as exc:
            log.warning("inference.snapshot_unreadable", error=str(exc))
            return
        log.info("inference.streams_restored", series=series)

    def save_streams(self) -> None:
        """Write the stream state, unless it read no reading since the last
        write (an idle service does not rewrite the same file)."""
        calls = self.streams.calls
        if calls == self._streams_written:
            return
        try:
            self.streams.save(self.streams_path)
        except OSError as exc:
            log.warning("inference.snapshot_failed", error=str(exc))
            return
        self._streams_written = calls

    def read(self) -> ModelTable | None:
        """The table last written, or None when there is none (or it is one
        this release cannot read: an older release's)."""
        if not self.path.exists():
            return None
        try:
            return ModelTable.load(self.path)
        except SnapshotUnreadable as exc:
            log.warning("inference.snapshot_unreadable", error=str(exc))
            return None

    def read_sensors(self) -> list[ServedSensor]:
        """The sensor models last written; none when there are none (or they
        are unreadable)."""
        if not self.sensors_path.exists():
            return []
        try:
            return _load_sensors(self.sensors_path)
        except (OSError, KeyError, ValueError) as exc:
            log.warning("inference.snapshot_unreadable", error=str(exc))
            return []

    def save_if_due(self) -> None:
        """Write the table if it was loaded from the registry since the last write."""
        served = self.served
        if (
            served.loaded_from is LoadState.DATABASE
            and served.table.generation != self._written
        ):
            self.save()

    def save(self) -> None:
        """Write the table now: the fallback at the next start."""
        with self.served.lock:  # no reload writes rows while they are copied
            table = self.served.table
            self._written = table.generation
            sensors = self.sensors.served()
            try:
                table.save(self.path)
                _save_sensors(sensors, self.sensors_path)
            except OSError as exc:
                log.warning("inference.snapshot_failed", error=str(exc))
        self.save_streams()


def _save_sensors(sensors: Sequence[ServedSensor], path: Path) -> None:
    """Write sensor models to `path` atomically: ids, versions, and each
    model's stored bytes one after the other."""
    blobs = [s.model.to_bytes() for s in sensors]
    write_private_npz(
        path,
        layout=np.array(SENSORS_LAYOUT),
        ids=np.array([s.sensor_id for s in sensors], dtype=np.str_),
        versions=np.array([s.version for s in sensors], np.int64),
        ends=np.cumsum([len(b) for b in blobs], dtype=np.int64),
        models=np.frombuffer(b"".join(blobs), np.uint8),
    )


def _load_sensors(path: Path) -> list[ServedSensor]:
    with np.load(path, allow_pickle=False) as data:
        if str(data["layout"]) != SENSORS_LAYOUT:
            raise ValueError(f"{path} is not a {SENSORS_LAYOUT}")
        ids, versions = data["ids"].tolist(), data["versions"].tolist()
        ends, models = data["ends"].tolist(), data["models"].tobytes()
    starts = [0, *ends[:-1]]
    return [
        ServedSensor(sensor_id, version, StoredSensor.from_bytes(models[a:b]))
        for sensor_id, version, a, b in zip(ids, versions, starts, ends, strict=True)
    ]
