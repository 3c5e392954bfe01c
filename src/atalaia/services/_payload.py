"""Inline training data kept as an artifact between a job's submission and its run."""

from __future__ import annotations

import io

import numpy as np

from atalaia.core.series import Readings


def payload_key(job_id: str) -> str:
    return f"jobs/{job_id}/readings.npy"


def encode_payload(readings: Readings) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.stack([readings.timestamps, readings.values]))
    return buffer.getvalue()


def decode_payload(data: bytes) -> Readings:
    pair = np.load(io.BytesIO(data))
    return Readings(pair[0], pair[1])
