"""Uploaded files read a chunk at a time: CSV (pyarrow's streaming reader),
Parquet (a row group's batches at a time) and Excel (openpyxl, read-only).
No file is loaded whole.

Every column of a CSV file is read as text, converted by `columns` with a
reason for each cell that does not convert; a row that does not split into the
header's columns is reported (its line when the parser knows it). Blank lines
are skipped, so line numbers after one are one short.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import ParseError

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from atalaia.errors import InvalidInput

CSV_BLOCK_BYTES = 8 << 20  # a CSV chunk: ~8 MB of text
PARQUET_BATCH_ROWS = 262_144
EXCEL_BATCH_ROWS = 50_000
_SNIFF_BYTES = 4096
_UNREADABLE = (
    pa.ArrowInvalid, OSError, KeyError, ValueError, zipfile.BadZipFile, ParseError,
)  # fmt: skip


class FileFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    EXCEL = "xlsx"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A chunk of a file's rows, as arrow columns by name; `first_line` is the
    file line of its first row (the header is line 1), `progress` the share of
    the file read once it is handled (0…1)."""

    columns: dict[str, pa.Array]
    rows: int
    first_line: int
    progress: float
    malformed: list[int | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CsvDialect:
    """How a CSV file writes its cells: the delimiter, and whether numbers
    take a decimal comma (`0,31`: exports of European spreadsheets and
    historians, with `;` between cells)."""

    delimiter: str = ","
    decimal_comma: bool = False

    @classmethod
    def of(cls, described: Mapping[str, Any] | None) -> CsvDialect:
        return cls(**described) if described else cls()

    def describe(self) -> dict[str, Any]:
        return {"delimiter": self.delimiter, "decimal_comma": self.decimal_comma}


_DELIMITERS = ",;\t|"
_DECIMAL_COMMA = re.compile(r"(?:^|[;\t|])\s*-?\d+,\d+\s*(?:$|[;\t|])", re.MULTILINE)


def sniff_dialect(path: Path) -> CsvDialect:
    """The delimiter of a CSV file's first lines (`,` `;` tab `|`; `,` when
    they tell none), and a decimal comma when cells between other delimiters
    hold numbers like `0,31`."""
    with path.open("rb") as file:
        head = file.read(_SNIFF_BYTES * 16).decode("utf-8", errors="ignore")
    lines = head.splitlines()[:50]
    if len(lines) > 1 and not head.endswith(("\n", "\r")):
        lines = lines[:-1]  # cut at the sample's end
    sample = "\n".join(lines)
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    body = "\n".join(lines[1:])
    return CsvDialect(delimiter, delimiter != "," and bool(_DECIMAL_COMMA.search(body)))


def sniff_format(path: Path) -> FileFormat:
    """The file's format from its first bytes; InvalidInput (rule `file_format`)
    for anything but CSV text, Parquet or an xlsx workbook, or an empty file."""
    with path.open("rb") as file:
        head = file.read(_SNIFF_BYTES)
    if not head:
        raise InvalidInput("the file is empty", rule="file_not_empty")
    if head.startswith(b"PAR1"):
        return FileFormat.PARQUET
    if head.startswith(b"PK\x03\x04") and _is_workbook(path):
        return FileFormat.EXCEL
    if b"\x00" not in head and _is_text(head):
        return FileFormat.CSV
    raise InvalidInput(
        "the file is not CSV (UTF-8 text), Parquet or Excel (xlsx)", rule="file_format"
    )


def _is_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the sample's end is fine
        return exc.start >= len(head) - 3
    return True


def column_names(
    path: Path, file_format: FileFormat, dialect: CsvDialect = CsvDialect()
) -> list[str]:
    """The file's columns, from its head (InvalidInput when it has no rows of
    a table)."""
    try:
        if file_format is FileFormat.PARQUET:
            return list(pq.ParquetFile(path).schema_arrow.names)
        if file_format is FileFormat.EXCEL:
            return _excel_header(path)
        skip = pacsv.ParseOptions(
            delimiter=dialect.delimiter, invalid_row_handler=lambda _: "skip"
        )
        with pacsv.open_csv(
            path, read_options=_csv_read_options(), parse_options=skip
        ) as reader:
            return list(reader.schema.names)
    except _UNREADABLE as exc:
        raise InvalidInput(
            f"the {file_format.name} file cannot be read: {str(exc)[:300]}",
            rule="file_readable",
        ) from exc


def chunks(
    path: Path,
    file_format: FileFormat,
    columns: list[str],
    dialect: CsvDialect = CsvDialect(),
) -> Iterator[Chunk]:
    """The file's rows a chunk at a time, only the `columns` named; a file
    that stops reading midway raises InvalidInput (rule `file_readable`)."""
    readers: dict[FileFormat, Callable[[Path, list[str]], Iterator[Chunk]]] = {
        FileFormat.PARQUET: _parquet_chunks,
        FileFormat.EXCEL: _excel_chunks,
        FileFormat.CSV: partial(_csv_chunks, dialect=dialect),
    }
    read = readers[file_format]
    try:
        yield from read(path, columns)
    except _UNREADABLE as exc:
        raise InvalidInput(
            f"the {file_format.name} file stops reading: {str(exc)[:300]}",
            rule="file_readable",
        ) from exc


def _csv_read_options() -> pacsv.ReadOptions:
    return pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)


class _CountingFile(io.RawIOBase):
    """A file that counts the bytes read from it (the CSV reader's progress)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.file.readinto(buffer)  # type: ignore[attr-defined]
        self.read_bytes += n or 0
        return int(n or 0)


def _csv_chunks(path: Path, columns: list[str], dialect: CsvDialect) -> Iterator[Chunk]:
    size = max(path.stat().st_size, 1)
    malformed: list[int | None] = []

    def skip_malformed(row: pacsv.InvalidRow) -> str:
        malformed.append(row.number)
        return "skip"

    parse = pacsv.ParseOptions(
        delimiter=dialect.delimiter, invalid_row_handler=skip_malformed
    )
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in columns},
        include_columns=columns,
        strings_can_be_null=True,
        null_values=[""],  # "NaN" is a value that is not finite, not a blank
    )
    line = 2
    with path.open("rb") as raw, _CountingFile(raw) as counted:
        reader = pacsv.open_csv(
            counted,
            read_options=_csv_read_options(),
            parse_options=parse,
            convert_options=convert,
        )
        for batch in reader:
            named = _named(batch)
            if dialect.decimal_comma:  # ISO times take a decimal comma too
                named = {k: pc.replace_substring(v, ",", ".") for k, v in named.items()}
            yield Chunk(
                named,
                batch.num_rows,
                line,
                min(counted.read_bytes / size, 1.0),
                malformed.copy(),
            )
            malformed.clear()
            line += batch.num_rows


def _named(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    return dict(zip(batch.schema.names, batch.columns, strict=True))


def _parquet_chunks(path: Path, columns: list[str]) -> Iterator[Chunk]:
    file = pq.ParquetFile(path)
    total = max(file.metadata.num_rows, 1)
    line = 2
    for batch in file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
        done = line - 2 + batch.num_rows
        yield Chunk(_named(batch), batch.num_rows, line, min(done / total, 1.0))
        line += batch.num_rows


def _excel_header(path: Path) -> list[str]:
    rows = _excel_rows(path)
    header = next(rows, None)
    if header is None:
        raise InvalidInput("the workbook's first sheet is empty", rule="file_not_empty")
    return [str(name) for name in header]


def _excel_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    import openpyxl  # noqa: PLC0415  # a few MB of import, for Excel files only

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        yield from book.worksheets[0].iter_rows(values_only=True)
    finally:
        book.close()


def _excel_chunks(path: Path, columns: list[str]) -> Iterator[Chunk]:
    rows = _excel_rows(path)
    header = [str(name) for name in next(rows, ())]
    wanted = [header.index(name) for name in columns]
    line, buffered = 2, []
    total = _excel_row_count(path)
    for row in rows:
        buffered.append(row)
        if len(buffered) == EXCEL_BATCH_ROWS:
            yield _excel_chunk(buffered, columns, wanted, line, total)
            line += len(buffered)
            buffered = []
    if buffered:
        yield _excel_chunk(buffered, columns, wanted, line, total)


def _excel_row_count(path: Path) -> int:
    import openpyxl  # noqa: PLC0415

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return max((book.worksheets[0].max_row or 1) - 1, 1)
    finally:
        book.close()


def _excel_chunk(
    rows: list[tuple[Any, ...]],
    columns: list[str],
    wanted: list[int],
    line: int,
    total: int,
) -> Chunk:
    named = {
        name: _excel_column([row[i] if i < len(row) else None for row in rows])
        for name, i in zip(columns, wanted, strict=True)
    }
    done = line - 2 + len(rows)
    return Chunk(named, len(rows), line, min(done / total, 1.0))


def _excel_column(cells: list[Any]) -> pa.Array:
    """A sheet column as one arrow type; cells of mixed types as text."""
    try:
        return pa.array(cells)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if c is None else str(c) for c in cells], pa.string())
