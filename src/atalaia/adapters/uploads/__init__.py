"""Uploaded files of readings: their formats, read a chunk at a time, and
their columns converted to the core's cells."""

from atalaia.adapters.uploads.columns import TimeEncoding, cells_of
from atalaia.adapters.uploads.files import (
    Chunk,
    CsvDialect,
    FileFormat,
    chunks,
    column_names,
    sniff_dialect,
    sniff_format,
)

__all__ = [
    "Chunk",
    "CsvDialect",
    "FileFormat",
    "TimeEncoding",
    "cells_of",
    "chunks",
    "column_names",
    "sniff_dialect",
    "sniff_format",
]
