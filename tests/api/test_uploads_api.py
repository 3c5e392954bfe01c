"""POST /uploads and its progress, over HTTP on the embedded server (its
upload runner thread ingests the files), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from atalaia.adapters.uploads import files
from atalaia.settings import Settings
from conftest import SettingsFactory
from fixtures.api import Headers, refused, wait_for

UPLOADS = "/api/v1/uploads"
T0 = 1_733_011_200  # 2024-12-01T00:00:00Z
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def settings(database_url: str, make_settings: SettingsFactory) -> Settings:
    return make_settings(database_url)


def send(
    client: TestClient,
    headers: Headers,
    body: bytes,
    content_type: str = "text/csv",
    **params: str,
) -> dict[str, Any]:
    response = client.post(
        UPLOADS,
        content=body,
        params=params,
        headers={**headers, "Content-Type": content_type},
    )
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    assert accepted["created_at"] is not None
    return accepted


def ended(client: TestClient, headers: Headers, upload_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found: dict[str, Any] = client.get(
            f"{UPLOADS}/{upload_id}", headers=headers
        ).json()
        return found if found["status"] in ("done", "failed") else None

    return wait_for(probe, attempts=600)


def ingested(
    client: TestClient, headers: Headers, body: bytes, **params: str
) -> dict[str, Any]:
    content_type = params.pop("content_type", "text/csv")
    accepted = send(client, headers, body, content_type, **params)
    return ended(client, headers, accepted["upload_id"])


def points(client: TestClient, headers: Headers, series_id: str) -> list[list[float]]:
    response = client.get(f"/api/v1/series/{series_id}/points", headers=headers)
    if response.status_code == 404:
        return []
    page = response.json()
    return [[t, v] for t, v in zip(page["timestamps"], page["values"], strict=True)]


def long_csv(rows: list[str]) -> bytes:
    return ("series_id,timestamp,value\n" + "\n".join(rows) + "\n").encode()


class TestLongCsv:
    def test_readings_are_stored_per_series(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = long_csv([f"pump7_temp,{T0 + i},{i * 0.5}" for i in range(5)])

        upload = ingested(client, scientist, body)

        assert upload["status"] == "done"
        assert upload["readings_stored"] == 5
        assert upload["detected"]["form"] == "long"
        assert upload["detected"]["timestamps"] == {
            "encoding": "epoch", "unit": "s", "unit_was": "detected by magnitude"
        }  # fmt: skip
        stored = points(client, viewer, "pump7_temp")
        assert stored == [[T0 + i, i * 0.5] for i in range(5)]

    def test_epoch_milliseconds_are_detected_and_stated(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = long_csv([f"a,{(T0 + i) * 1000 + 250},{i}" for i in range(3)])

        upload = ingested(client, scientist, body)

        assert upload["detected"]["timestamps"]["unit"] == "ms"
        assert [t for t, _ in points(client, viewer, "a")] == [
            T0 + 0.25, T0 + 1.25, T0 + 2.25
        ]  # fmt: skip

    def test_bad_lines_are_reported_with_numbers_and_the_rest_stored(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = long_csv(
            [
                f"a,{T0},1.0",  # line 2
                f"a,{T0 + 1},oops",  # 3: value_unparseable
                f"a,{T0 + 2},",  # 4: value_missing
                f"bad id,{T0},1",  # 5: series_id_format
                f"a,{T0},9",  # 6: duplicate_in_file
                "a,yesterday,1",  # 7: timestamp_unparseable
                f"a,{T0 + 3},nan",  # 8: value_not_finite
                "a,100,1",  # 9: timestamp_range
                f"a,{T0 + 4},1e300",  # 10: value_range
                f"b,{T0},2.0",  # 11
            ]
        )

        upload = ingested(client, scientist, body)

        assert upload["status"] == "done"
        assert upload["readings_stored"] == 2
        assert upload["invalid"] == 8
        reported = {(r["line"], r["reason"]) for r in upload["invalid_rows"]}
        assert reported == {
            (3, "value_unparseable"), (4, "value_missing"), (5, "series_id_format"),
            (6, "duplicate_in_file"), (7, "timestamp_unparseable"),
            (8, "value_not_finite"), (9, "timestamp_range"), (10, "value_range"),
        }  # fmt: skip
        assert sum(upload["invalid_by_reason"].values()) == 8
        assert points(client, viewer, "a") == [[T0, 1.0]]
        assert points(client, viewer, "b") == [[T0, 2.0]]

    def test_a_second_upload_of_the_file_stores_nothing_twice(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = long_csv([f"a,{T0 + i},{i}" for i in range(10)])
        ingested(client, scientist, body)

        again = ingested(client, scientist, body)

        assert again["readings_stored"] == 0
        assert again["readings_already_stored"] == 10
        assert len(points(client, viewer, "a")) == 10

    def test_columns_are_named_by_parameters(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = b"sensor,time,reading\nx1,2024-12-01T00:00:00Z,4.5\n"

        upload = ingested(
            client, scientist, body, series_column="sensor",
            timestamp_column="time", value_column="reading",
        )  # fmt: skip

        assert upload["readings_stored"] == 1
        assert points(client, viewer, "x1") == [[T0, 4.5]]


class TestHistorianExports:
    def test_semicolons_decimal_commas_and_tag_columns_are_recognised(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = (
            b"TagName;Time;Value;Status\n"
            b"pump7_temp;2024-12-01 00:00:00;21,5;Good\n"
            b"pump7_temp;2024-12-01 00:00:01,500;21,75;Good\n"  # 3: ms by comma
            b"pump7_temp;2024-12-01 00:00:02;I/O Timeout;Bad\n"  # 4: unparseable
            b"pump7_temp;2024-12-01 00:00:03;;Bad\n"  # 5: missing
            b"pump7_temp;2024-12-01 00:00:00;22,0;Good\n"  # 6: duplicate
            b"pump8_flow;2024-12-01 00:00:00;-3,25;Good\n"
        )

        upload = ingested(client, scientist, body)

        assert upload["detected"]["csv"] == {"delimiter": ";", "decimal_comma": True}
        assert upload["detected"]["columns"] == {
            "series_id": "TagName", "value": "Value"
        }  # fmt: skip
        assert upload["detected"]["timestamp"] == "Time"
        assert upload["readings_stored"] == 3
        reported = {(r["line"], r["reason"]) for r in upload["invalid_rows"]}
        assert reported == {
            (4, "value_unparseable"), (5, "value_missing"), (6, "duplicate_in_file")
        }  # fmt: skip
        assert points(client, viewer, "pump7_temp") == [[T0, 21.5], [T0 + 1.5, 21.75]]
        assert points(client, viewer, "pump8_flow") == [[T0, -3.25]]

    def test_a_tab_separated_wide_export_is_read_by_its_time_column(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = f"Date Time\tpump7_temp\tpump8_flow\n{T0}\t1.5\t2.5\n".encode()

        upload = ingested(client, scientist, body)

        assert upload["detected"]["csv"] == {"delimiter": "\t", "decimal_comma": False}
        assert upload["detected"]["form"] == "wide"
        assert points(client, viewer, "pump8_flow") == [[T0, 2.5]]


class TestIsoTimes:
    def test_offsets_are_honoured_and_naive_times_read_in_the_given_zone(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = long_csv(
            [
                "a,2024-12-01T02:00:00+02:00,1",
                "a,2024-12-01T00:00:01Z,2",
                "a,2024-12-01 01:00:02,3",  # naive, Europe/Lisbon is UTC+1? no: +0
                "b,2024-07-01T01:00:00,4",  # naive in summer: UTC+1
            ]
        )

        upload = ingested(client, scientist, body, timezone="Europe/Lisbon")

        assert upload["detected"]["timestamps"] == {
            "encoding": "iso8601", "naive_times_in": "Europe/Lisbon"
        }  # fmt: skip
        assert [t for t, _ in points(client, viewer, "a")] == [
            T0, T0 + 1, T0 + 3602
        ]  # fmt: skip
        assert points(client, viewer, "b") == [[1_719_792_000.0, 4.0]]

    def test_an_unknown_time_zone_is_refused(
        self, client: TestClient, scientist: Headers
    ) -> None:
        response = client.post(
            UPLOADS, content=long_csv([f"a,{T0},1"]), headers={**scientist, **CSV},
            params={"timezone": "Mars/Olympus"},
        )  # fmt: skip

        refused(response, "timezone_known")


class TestWideCsv:
    def test_a_mapping_names_the_series_of_each_column(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = f"timestamp,t1,t2\n{T0},1,10\n{T0 + 1},2,\n".encode()
        mapping = json.dumps({"t1": "pump7_temp", "t2": "pump8_temp"})

        upload = ingested(client, scientist, body, mapping=mapping)

        assert upload["detected"]["form"] == "wide"
        assert upload["detected"]["columns"] == {
            "t1": "pump7_temp", "t2": "pump8_temp"
        }  # fmt: skip
        assert upload["invalid_rows"] == [
            {"line": 3, "column": "t2", "series_id": "pump8_temp",
             "reason": "value_missing"}
        ]  # fmt: skip
        assert points(client, viewer, "pump7_temp") == [[T0, 1.0], [T0 + 1, 2.0]]
        assert points(client, viewer, "pump8_temp") == [[T0, 10.0]]

    def test_a_sensor_names_its_axes_series(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = f"timestamp,radial,axial\n{T0},1,2\n".encode()

        upload = ingested(client, scientist, body, sensor="sensor_001")

        assert upload["readings_stored"] == 2
        assert points(client, viewer, "sensor_001_axial") == [[T0, 2.0]]
        series = client.get(
            f"{UPLOADS}/{upload['upload_id']}/series", headers=viewer
        ).json()["series"]
        assert [s["series_id"] for s in series] == [
            "sensor_001_axial", "sensor_001_radial"
        ]  # fmt: skip
        assert series[0] == {
            "series_id": "sensor_001_axial", "readings": 1, "stored": 1,
            "first_ts": T0, "last_ts": T0,
        }  # fmt: skip


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


class TestParquet:
    def test_long_form_with_datetime_column(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        times = pa.array(
            np.array([T0, T0 + 60], dtype="datetime64[s]"), pa.timestamp("s", "UTC")
        )
        table = pa.table(
            {"series_id": ["a", "b"], "timestamp": times, "value": [1.0, 2.0]}
        )

        upload = ingested(
            client, scientist, parquet_bytes(table),
            content_type="application/vnd.apache.parquet",
        )  # fmt: skip

        assert upload["file_format"] == "parquet"
        assert upload["detected"]["timestamps"]["encoding"] == "datetime"
        assert points(client, viewer, "b") == [[T0 + 60, 2.0]]

    def test_wide_form_with_epoch_microseconds(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        table = pa.table(
            {
                "timestamp": [T0 * 1_000_000, (T0 + 1) * 1_000_000],
                "s1": [1.0, None],
                "s2": [3.0, 4.0],
            }
        )

        upload = ingested(
            client, scientist, parquet_bytes(table),
            content_type="application/vnd.apache.parquet",
        )  # fmt: skip

        assert upload["detected"]["timestamps"]["unit"] == "us"
        assert upload["readings_stored"] == 3
        assert upload["invalid_by_reason"] == {"value_missing": 1}
        assert points(client, viewer, "s2") == [[T0, 3.0], [T0 + 1, 4.0]]


class TestExcel:
    def test_a_workbook_in_long_form_is_read_as_a_multipart_file(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["series_id", "timestamp", "value"])
        sheet.append(["a", T0, 1.5])
        sheet.append(["a", "not a time", 2.5])
        sheet.append(["a", T0 + 1, 3.5])
        buffer = io.BytesIO()
        book.save(buffer)

        response = client.post(
            UPLOADS,
            files={"file": ("readings.xlsx", buffer.getvalue())},
            data={"timestamp_unit": "s"},
            headers=scientist,
        )
        assert response.status_code == 202, response.text
        upload = ended(client, scientist, response.json()["upload_id"])

        assert upload["file_name"] == "readings.xlsx"
        assert upload["file_format"] == "xlsx"
        assert upload["detected"]["timestamps"]["unit_was"] == "given"
        assert upload["invalid_rows"] == [
            {"line": 3, "column": "value", "series_id": "a",
             "reason": "timestamp_unparseable"}
        ]  # fmt: skip
        assert points(client, viewer, "a") == [[T0, 1.5], [T0 + 1, 3.5]]


class TestRefused:
    @pytest.mark.parametrize(
        ("body", "rule"),
        [
            (b"", "file_not_empty"),
            (b"\x00\x01\x02binary", "file_format"),
            (b"series_id,when,value\na,1,2\n", "timestamp_column"),
            (b"timestamp\n1733011200\n", "series_columns"),
        ],
    )
    def test_a_file_that_is_no_table_of_readings_is_refused_at_submit(
        self, client: TestClient, scientist: Headers, body: bytes, rule: str
    ) -> None:
        response = client.post(UPLOADS, content=body, headers={**scientist, **CSV})

        refused(response, rule)

    def test_a_viewer_may_not_upload(self, client: TestClient, viewer: Headers) -> None:
        response = client.post(
            UPLOADS, content=long_csv([f"a,{T0},1"]), headers={**viewer, **CSV}
        )

        assert response.status_code == 403

    def test_an_unknown_upload_is_not_found(
        self, client: TestClient, viewer: Headers
    ) -> None:
        response = client.get(f"{UPLOADS}/nope", headers=viewer)

        assert response.status_code == 404


class TestStreamed:
    def test_a_body_sent_in_pieces_is_ingested_in_many_chunks(
        self,
        client: TestClient,
        scientist: Headers,
        viewer: Headers,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 64 * 1024)
        rows = 40_000
        body = long_csv([f"s{i % 10},{T0 + i // 10},{i % 7}" for i in range(rows)])
        pieces = (body[i : i + 65_536] for i in range(0, len(body), 65_536))

        accepted = client.post(
            UPLOADS, content=pieces, headers={**scientist, **CSV}
        ).json()
        upload = ended(client, viewer, accepted["upload_id"])

        assert upload["chunks_done"] >= 10  # ~680 KB in chunks of 64 KB
        assert upload["rows_read"] == upload["readings_stored"] == rows
        assert len(points(client, viewer, "s3")) == rows // 10

    def test_a_multipart_form_carries_the_settings_beside_the_file(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        body = f"time,T1,T2\n{T0},1,2\n".encode()
        form = {"timestamp_column": "time", "mapping": json.dumps({"T2": "oven"})}

        response = client.post(
            UPLOADS, files={"file": ("oven.csv", body)}, data=form, headers=scientist
        )
        upload = ended(client, viewer, response.json()["upload_id"])

        assert upload["detected"]["columns"] == {"T2": "oven"}
        assert points(client, viewer, "oven") == [[T0, 2.0]]


class TestQuality:
    def test_each_series_uploaded_is_judged_fit_to_train_or_not(
        self, client: TestClient, scientist: Headers, viewer: Headers
    ) -> None:
        rng = np.random.default_rng(7)
        n = 12_000
        healthy = rng.normal(0.3, 0.05, n)
        stuck = healthy.copy()
        stuck[2_000:5_000] = 0.25  # 25 % of the readings hold one value
        rows = [
            f"{sid},{T0 + 60 * i},{v:.6f}"
            for sid, values in (("pump7_temp", healthy), ("pump8_temp", stuck))
            for i, v in enumerate(values)
        ]
        upload = ingested(client, scientist, long_csv(rows))

        judged = client.get(f"{UPLOADS}/{upload['upload_id']}/quality", headers=viewer)
        unknown = client.get(f"{UPLOADS}/nope/quality", headers=viewer)

        assert judged.status_code == 200, judged.text
        found = judged.json()
        assert (found["fit"], found["unfit"]) == (1, 1)
        verdicts = {s["series_id"]: s for s in found["series"]}
        assert verdicts["pump7_temp"]["fit_to_train"] is True
        assert verdicts["pump7_temp"]["report"]["count"] == n
        assert [f["rule"] for f in verdicts["pump8_temp"]["report"]["findings"]] == [
            "stuck"
        ]
        assert verdicts["pump8_temp"]["start"] == T0
        assert unknown.status_code == 404
