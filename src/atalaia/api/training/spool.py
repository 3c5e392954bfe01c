"""An upload's body written to a spool file as it arrives, never held whole:
a raw body (a file's bytes, `Content-Type` text/csv, Parquet or xlsx) or a
multipart form (its file part written as python-multipart parses the stream;
its text fields kept, a few KB at most)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from atalaia.errors import InvalidInput
from atalaia.files import PRIVATE_FILE, make_private_dir

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 64 * 1024  # a form's text field (a mapping of many columns)
MAX_FIELDS = 32


async def spool_body(request: Request, path: Path) -> tuple[str | None, dict[str, str]]:
    """Write the request's file to `path` (0600); its name when the body says
    it, and a multipart form's text fields. The spool is deleted when the body
    cannot be read whole."""
    make_private_dir(path.parent)
    content_type = request.headers.get("content-type", "")
    try:
        with path.open("xb") as spool:
            path.chmod(PRIVATE_FILE)
            if content_type.startswith("multipart/form-data"):
                return await _spool_multipart(request, content_type, spool)
            async for piece in request.stream():
                spool.write(piece)  # the page cache takes it: no thread hop
            return _named_file(request.headers.get("content-disposition")), {}
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _named_file(disposition: str | None) -> str | None:
    """The file name a raw body's Content-Disposition gives, if any."""
    _, options = parse_options_header(disposition)
    name = options.get(b"filename")
    return name.decode("utf-8", "replace") if name else None


async def _spool_multipart(
    request: Request, content_type: str, spool: IO[bytes]
) -> tuple[str | None, dict[str, str]]:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("a multipart body needs a boundary", rule="multipart_body")
    form = _FormParts(spool)
    parser = MultipartParser(boundary, form.callbacks())
    try:
        async for piece in request.stream():
            parser.write(piece)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInput(
            f"the multipart body cannot be parsed: {exc}", rule="multipart_body"
        ) from exc
    if form.file_name is None:
        raise InvalidInput(
            "the multipart body has no file part (a part with a filename)",
            rule="upload_file",
        )
    return form.file_name, form.fields


class _FormParts:
    """The parts of a multipart form as python-multipart finds them: the first
    file part goes to the spool, text fields are kept."""

    def __init__(self, spool: IO[bytes]) -> None:
        self.spool = spool
        self.file_name: str | None = None
        self.fields: dict[str, str] = {}
        self._header = b""
        self._headers: dict[bytes, bytes] = {}
        self._value = b""
        self._field: bytes = b""
        self._name: str | None = None
        self._into_file = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._field, self._name, self._into_file = {}, b"", None, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        name, file_name = options.get(b"name"), options.get(b"filename")
        if file_name is not None and self.file_name is None:
            self.file_name = file_name.decode("utf-8", "replace")
            self._into_file = True
        elif file_name is None and name is not None:
            self._name = name.decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._into_file:
            self.spool.write(data[start:end])
        elif self._name is not None:
            self._field += data[start:end]
            if len(self._field) > MAX_FIELD_BYTES:
                raise InvalidInput(
                    f"form field {self._name!r} is over {MAX_FIELD_BYTES} bytes",
                    rule="form_field_size",
                )

    def _end(self) -> None:
        if self._name is not None and len(self.fields) < MAX_FIELDS:
            self.fields[self._name] = self._field.decode("utf-8", "replace")
