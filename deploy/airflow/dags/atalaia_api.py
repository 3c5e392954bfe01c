"""atalaia's public HTTP API for the DAGs beside this file: one client, retries.

The base URL and bearer token come from the Airflow Connection `atalaia_api`
(its host, with the scheme and port, and its password as the token), or else
from the environment variables ATALAIA_URL and ATALAIA_TOKEN.

A 429 is retried after its Retry-After, a 503 or a connection refused after an
exponential backoff; a 500, 502 or 504 and a timed-out read are retried only
for GET, since a POST may have been carried out. Any other 4xx, or the last
failed attempt, raises `ApiError` with the API's error body. Uses httpx, which
Airflow 2 and 3 both install.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

CONN_ID = "atalaia_api"
API = "/api/v1"
# Refused before any work: safe to send again whatever the method.
RETRY_ANY = frozenset({429, 503})
# The request may have been carried out: sent again only when reading.
RETRY_READ = frozenset({500, 502, 504})

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer that is not a success, with the API's error body
    (`{"error", "rule", "detail"}`); `status` is None when none came.

    `retryable`: sending the call again may succeed, after `retry_after` seconds
    when the API said so (0: back off).
    """

    def __init__(
        self, method: str, path: str, status: int | None, body: Any, *,
        retryable: bool = False, retry_after: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(f"{method} {path}: HTTP {status}: {body}")
        self.status = status
        self.body = body
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class AtalaiaApi:
    """Calls `/api/v1` routes of `base_url` with a bearer `token`.

    `attempts` bounds the tries of one call; the backoff doubles from
    `backoff_s`, and no wait (Retry-After included) exceeds `max_wait_s`.
    """

    base_url: str
    token: str
    attempts: int = 6
    backoff_s: float = 2.0
    max_wait_s: float = 300.0
    timeout_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.base_url.rstrip("/") + API,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=self.timeout_s,
        )

    @classmethod
    def configured(cls, conn_id: str = CONN_ID, **options: Any) -> AtalaiaApi:
        """The API of the Connection `conn_id`, or else of ATALAIA_URL/TOKEN."""
        found = _from_connection(conn_id)
        if found is None:
            url, token = os.environ.get("ATALAIA_URL"), os.environ.get("ATALAIA_TOKEN")
            if not url or not token:
                raise LookupError(
                    f"define the Airflow Connection {conn_id!r} (host and password) "
                    "or the environment variables ATALAIA_URL and ATALAIA_TOKEN"
                )
            found = url, token
        return cls(*found, **options)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def pages(self, path: str, key: str, **params: Any) -> Iterator[Any]:
        """Every item of a cursor-paged list: `key`'s items, page after page."""
        cursor = None
        while True:
            page = self.get(path, **params, **({"cursor": cursor} if cursor else {}))
            yield from page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """The JSON answer to a call of `/api/v1{path}`, retried as above."""
        attempt = 1
        while True:
            try:
                return self._once(method, path, **kw)
            except ApiError as error:
                if not error.retryable or attempt >= self.attempts:
                    raise
                backoff = self.backoff_s * 2 ** (attempt - 1)
                wait = min(error.retry_after or backoff, self.max_wait_s)
                log.warning("%s; attempt %d, again in %.1f s", error, attempt, wait)
                self.sleep(wait)
                attempt += 1

    def _once(self, method: str, path: str, **kw: Any) -> Any:
        reading = method == "GET"
        try:
            answer = self._client.request(method, path, **kw)
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            raise ApiError(
                method, path, None, repr(exc), retryable=unsent or reading
            ) from exc
        if answer.is_success:
            return answer.json() if answer.content else None
        status = answer.status_code
        raise ApiError(
            method, path, status, _body(answer),
            retryable=status in RETRY_ANY or (reading and status in RETRY_READ),
            retry_after=_retry_after(answer),
        )  # fmt: skip

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AtalaiaApi:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _body(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text[:500]


def _retry_after(answer: httpx.Response) -> float:
    """Retry-After in seconds (0 when absent or an HTTP date: back off instead)."""
    try:
        return max(float(answer.headers.get("Retry-After", 0)), 0.0)
    except ValueError:
        return 0.0


def _from_connection(conn_id: str) -> tuple[str, str] | None:
    """(base URL, token) of an Airflow Connection; None outside Airflow or when
    it is not defined."""
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        try:  # Airflow 2
            from airflow.exceptions import AirflowNotFoundException
            from airflow.hooks.base import BaseHook
        except ImportError:
            return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    host = conn.host or ""
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
    port = f":{conn.port}" if conn.port else ""
    return host.rstrip("/") + port, conn.password or ""
