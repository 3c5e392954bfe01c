"""Compressed answers: the coding the client prefers (zstd or gzip), only for
bodies worth it, on the routes that opt in (lists, plots, batch predictions),
never on the single-prediction path."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import zstandard
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from starlette.datastructures import Headers as RawHeaders

from atalaia.api.common.compression import (
    MIN_COMPRESSED_BYTES,
    CompressedRoute,
    chosen_coding,
    json_response,
)
from atalaia.embedded import create_embedded_app
from fixtures.api import Headers, SettingsFactory


def _unzstd(body: bytes) -> bytes:
    # A streaming decoder: the frame may not carry its size.
    return zstandard.ZstdDecompressor().decompressobj().decompress(body)


DECODE: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "zstd": _unzstd,
}


def _request(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept-encoding", accept.encode())]
    return Request({"type": "http", "headers": RawHeaders(raw=headers).raw})


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate, br", "gzip"),
        ("gzip, deflate, br, zstd", "zstd"),  # a browser's: zstd on a tie
        ("zstd;q=0.8, gzip;q=0.8", "zstd"),
        ("br;q=1.0, gzip;q=0.5, zstd;q=0.4", "gzip"),
        ("zstd;q=0.9, gzip;q=1", "gzip"),
        ("*", "zstd"),
        ("*;q=0.5, gzip", "gzip"),
        ("zstd;q=0, *", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("gzip;q=0", None),
        ("gzip;q=0.000, zstd;q=0", None),
        ("*;q=0", None),
        ("gzip;q=nonsense", None),
        ("identity", None),
        ("", None),
        (None, None),
    ],
)
def test_the_coding_follows_accept_encoding(accept: str | None, coding: str) -> None:
    assert chosen_coding(accept) == coding


class TestJsonResponse:
    PAYLOAD = {"ids": [f"sensor_{i:06d}" for i in range(5_000)], "x": float("nan")}

    @pytest.mark.parametrize("coding", ["zstd", "gzip"])
    def test_a_large_body_is_compressed_and_reads_back(self, coding: str) -> None:
        response = json_response(_request(coding), self.PAYLOAD)

        assert response.headers["content-encoding"] == coding
        assert response.headers["vary"] == "Accept-Encoding"
        body = orjson.loads(DECODE[coding](bytes(response.body)))
        assert body["ids"] == self.PAYLOAD["ids"]
        assert body["x"] is None
        assert len(response.body) < len(orjson.dumps(self.PAYLOAD)) / 5

    def test_a_client_taking_neither_gets_it_plain(self) -> None:
        plain = json_response(_request("br"), self.PAYLOAD)

        assert "content-encoding" not in plain.headers
        assert plain.headers["vary"] == "Accept-Encoding"
        assert orjson.loads(plain.body)["ids"][-1] == "sensor_004999"

    def test_only_bodies_of_the_threshold_or_more_are_compressed(self) -> None:
        # A JSON string of n characters is n + 2 bytes.
        below = json_response(_request("zstd"), "a" * (MIN_COMPRESSED_BYTES - 3))
        at = json_response(_request("zstd"), "a" * (MIN_COMPRESSED_BYTES - 2))

        assert len(below.body) == MIN_COMPRESSED_BYTES - 1
        assert "content-encoding" not in below.headers
        assert at.headers["content-encoding"] == "zstd"


def _opted_in_app() -> FastAPI:
    router = APIRouter(route_class=CompressedRoute)

    @router.get("/list")
    def listed(n: int) -> dict[str, list[int]]:
        return {"items": list(range(n))}

    @router.get("/png", response_class=Response)
    def png() -> Response:
        return Response(b"\x89PNG" + b"\0" * 4096, media_type="image/png")

    app = FastAPI()
    app.include_router(router)
    return app


class TestCompressedRoute:
    @pytest.fixture
    def client(self) -> Iterator[TestClient]:
        with TestClient(_opted_in_app()) as client:
            yield client

    @pytest.mark.parametrize("coding", ["zstd", "gzip"])
    def test_answers_go_compressed_in_the_coding_taken(
        self, client: TestClient, coding: str
    ) -> None:
        with client.stream(
            "GET", "/list?n=5000", headers={"Accept-Encoding": coding}
        ) as answer:
            wire = b"".join(answer.iter_raw())

        assert answer.headers["content-encoding"] == coding
        assert answer.headers["vary"] == "Accept-Encoding"
        assert int(answer.headers["content-length"]) == len(wire)
        assert orjson.loads(DECODE[coding](wire)) == {"items": list(range(5000))}

    def test_zstd_is_chosen_when_both_are_taken(self, client: TestClient) -> None:
        answer = client.get("/list?n=5000", headers={"Accept-Encoding": "gzip, zstd"})

        assert answer.headers["content-encoding"] == "zstd"
        assert answer.json() == {"items": list(range(5000))}  # httpx decodes it

    def test_refused_with_q_0_small_or_binary_go_as_they_are(
        self, client: TestClient
    ) -> None:
        refused = client.get("/list?n=5000", headers={"Accept-Encoding": "zstd;q=0"})
        small = client.get("/list?n=3", headers={"Accept-Encoding": "zstd"})
        png = client.get("/png", headers={"Accept-Encoding": "zstd"})

        for plain in (refused, small, png):
            assert "content-encoding" not in plain.headers
        assert refused.headers["vary"] == small.headers["vary"] == "Accept-Encoding"
        assert png.content.startswith(b"\x89PNG")


@pytest.fixture
def embedded(make_settings: SettingsFactory, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(f"sqlite:///{tmp_path}/a.db")
    with TestClient(create_embedded_app(settings)) as client:
        yield client


class TestPredictions:
    BATCH = {
        "series_id": [f"sensor_{i:05d}_radial" for i in range(2_000)],
        "timestamp": [1_733_700_000.0 + i for i in range(2_000)],
        "value": [0.3] * 2_000,
    }

    def test_a_batch_answer_goes_compressed(
        self, embedded: TestClient, viewer: Headers
    ) -> None:
        asked = viewer | {"Accept-Encoding": "gzip, zstd"}
        with embedded.stream(
            "POST", "/api/v1/predict/batch", json=self.BATCH, headers=asked
        ) as zipped:
            wire = b"".join(zipped.iter_raw())
        plain = embedded.post(
            "/api/v1/predict/batch",
            json=self.BATCH,
            headers=viewer | {"Accept-Encoding": "identity"},
        )

        assert zipped.status_code == plain.status_code == 200
        assert zipped.headers["content-encoding"] == "zstd"
        assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
        assert "content-encoding" not in plain.headers
        assert DECODE["zstd"](wire) == plain.content
        assert len(wire) < len(plain.content) / 5

    def test_a_single_prediction_never_is(
        self, embedded: TestClient, viewer: Headers
    ) -> None:
        answer = embedded.post(
            "/api/v1/predict/sensor_00001_radial",
            json={"timestamp": 1_733_700_000.0, "value": 0.3},
            headers=viewer | {"Accept-Encoding": "gzip, zstd"},
        )

        assert answer.status_code == 200
        assert "content-encoding" not in answer.headers
        assert "vary" not in answer.headers

    def test_a_list_route_opts_in(self, embedded: TestClient, viewer: Headers) -> None:
        answer = embedded.get(
            "/api/v1/models", headers=viewer | {"Accept-Encoding": "zstd"}
        )

        assert answer.status_code == 200
        assert answer.headers["vary"] == "Accept-Encoding"
