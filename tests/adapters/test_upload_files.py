"""Uploaded files read a chunk at a time, and their columns converted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pytest

from atalaia.adapters.uploads import (
    FileFormat,
    TimeEncoding,
    column_names,
    files,
    sniff_format,
)
from atalaia.adapters.uploads.columns import series_codes, timestamps_of, values_of
from atalaia.core.series import TimeRange
from atalaia.core.uploads import ValueState
from atalaia.errors import InvalidInput

T0 = 1_733_011_200.0
RANGE = TimeRange()


def times(
    cells: list[object], timezone: str = "UTC"
) -> tuple[list[float], TimeEncoding]:
    seconds, encoding = timestamps_of(
        pa.array(cells), encoding=None, timezone=timezone, time_range=RANGE
    )
    return seconds.tolist(), encoding


class TestSniffFormat:
    def test_tells_each_format_by_its_head(self, tmp_path: Path) -> None:
        csv, parquet, book = tmp_path / "a", tmp_path / "b", tmp_path / "c"
        csv.write_text("timestamp,value\n")
        parquet.write_bytes(b"PAR1....")
        with zipfile.ZipFile(book, "w") as archive:
            archive.writestr("xl/workbook.xml", "<workbook/>")

        found = [sniff_format(p) for p in (csv, parquet, book)]

        assert found == [FileFormat.CSV, FileFormat.PARQUET, FileFormat.EXCEL]

    @pytest.mark.parametrize(
        ("head", "rule"),
        [(b"", "file_not_empty"), (b"\x89PNG\r\n\x1a\n\x00", "file_format")],
    )
    def test_refuses_what_it_cannot_read(
        self, tmp_path: Path, head: bytes, rule: str
    ) -> None:
        path = tmp_path / "f"
        path.write_bytes(head)

        with pytest.raises(InvalidInput) as refused:
            sniff_format(path)

        assert refused.value.rule == rule

    def test_a_workbook_broken_inside_is_refused(self, tmp_path: Path) -> None:
        book, saved = openpyxl.Workbook(), io.BytesIO()
        book.save(saved)
        path = tmp_path / "broken.xlsx"
        with zipfile.ZipFile(saved) as whole, zipfile.ZipFile(path, "w") as broken:
            for name in whole.namelist():
                data = whole.read(name)
                broken.writestr(name, b"<not xml" if "workbook.xml" in name else data)

        with pytest.raises(InvalidInput) as refused:
            column_names(path, sniff_format(path))

        assert refused.value.rule == "file_readable"


class TestCsvDialect:
    @pytest.mark.parametrize(
        ("text", "dialect"),
        [
            ("a,b,c\n1,2.5,3\n", files.CsvDialect(",", False)),
            ("a;b;c\n1;2,5;3\n", files.CsvDialect(";", True)),
            ("a;b;c\n1;2.5;3\n", files.CsvDialect(";", False)),
            ("a\tb\n1\t2,5\n", files.CsvDialect("\t", True)),
            ("a|b\n1|2\n", files.CsvDialect("|", False)),
            ("timestamp\n1\n", files.CsvDialect(",", False)),  # one column
            ('"a, b",c\n"1,5",2\n', files.CsvDialect(",", False)),  # quoted
        ],
    )
    def test_the_delimiter_and_decimal_mark_are_told_by_the_first_lines(
        self, tmp_path: Path, text: str, dialect: files.CsvDialect
    ) -> None:
        path = tmp_path / "f.csv"
        path.write_text(text)

        assert files.sniff_dialect(path) == dialect

    def test_decimal_commas_read_as_points_in_every_column(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "f.csv"
        path.write_text("t;v\n2024-12-01 00:00:00,5;-1,25\n")
        dialect = files.CsvDialect(";", True)

        (chunk,) = files.chunks(path, files.FileFormat.CSV, ["t", "v"], dialect)

        assert chunk.columns["v"].to_pylist() == ["-1.25"]
        assert chunk.columns["t"].to_pylist() == ["2024-12-01 00:00:00.5"]


class TestTimestamps:
    def test_offsets_and_naive_times_mixed_read_cell_by_cell(self) -> None:
        seconds, encoding = times(
            ["2024-12-01T01:00:00+01:00", "2024-12-01T00:00:01", "soon", None]
        )

        assert seconds[:2] == [T0, T0 + 1]
        assert np.isnan(seconds[2:]).all()
        assert encoding.describe() == {"encoding": "iso8601", "naive_times_in": "UTC"}

    def test_numbers_as_text_with_a_bad_cell_stay_epoch_numbers(self) -> None:
        seconds, encoding = times([str(T0 * 1000), "x", str((T0 + 2) * 1000)])

        assert seconds[0] == T0
        assert np.isnan(seconds[1])
        assert encoding.unit == "ms"

    def test_a_naive_datetime_column_is_read_in_the_given_zone(self) -> None:
        cells = pa.array(np.array(["2024-07-01T01:00:00"], "datetime64[s]"))

        seconds, encoding = timestamps_of(
            cells, encoding=None, timezone="Europe/Lisbon", time_range=RANGE
        )

        assert seconds.tolist() == [1_719_792_000.0]
        assert encoding.kind == "datetime"

    def test_the_first_chunks_unit_holds_for_the_next(self) -> None:
        given = TimeEncoding("epoch", "ms", detected=True)

        seconds, encoding = timestamps_of(
            pa.array([5_000.0]), encoding=given, timezone="UTC", time_range=RANGE
        )

        assert seconds.tolist() == [5.0]
        assert encoding == given


class TestValues:
    def test_each_cell_that_is_no_number_is_marked(self) -> None:
        values, states = values_of(pa.array(["1.5", "x", None, "nan", " 2 "]))

        assert values[0] == 1.5
        assert values[4] == 2.0
        assert states.tolist() == [
            ValueState.OK, ValueState.UNPARSEABLE, ValueState.MISSING,
            ValueState.OK, ValueState.OK,
        ]  # fmt: skip

    def test_series_ids_become_codes_into_the_distinct_ids(self) -> None:
        codes, ids = series_codes(pa.array(["b", "a", None, "b"]))

        assert [ids[c] if c >= 0 else None for c in codes] == ["b", "a", None, "b"]
