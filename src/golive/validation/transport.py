"""How the replay reaches the evaluate endpoint: a ``Transport`` posts one JSON body and hands
back (status, body), or raises :class:`TransportFailure` (timeout, refused, reset).

- ``StreamTransport``: plain HTTP/1.1 keep-alive over asyncio streams, for ``http://`` URLs.
  A replay of 100,000 applications is bounded by the client's own CPU with a general-purpose
  client (measured: ~420 requests/s with httpx against ~5,000/s with this one, same service);
- ``HttpxTransport``: httpx, for ``https://`` URLs — and, with ``httpx.MockTransport``, the
  fake the unit tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from golive.errors import ReplayRefused


class TransportFailure(Exception):
    """No HTTP answer: the cause is a short word (timeout, ConnectionRefusedError, ...)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class Transport(Protocol):
    async def post(self, body: bytes) -> tuple[int, bytes]: ...
    async def aclose(self) -> None: ...


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are expected
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class StreamTransport:
    """HTTP/1.1 POSTs over a pool of keep-alive connections (one per concurrent request)."""

    def __init__(
        self, base_url: str, path: str, headers: Mapping[str, str], timeout_s: float
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ReplayRefused(f"StreamTransport needs an http://host:port URL, not {base_url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._timeout_s = timeout_s
        self._idle: list[_Connection] = []

    async def post(self, body: bytes) -> tuple[int, bytes]:
        conn = self._idle.pop() if self._idle else None
        try:
            return await self._post(conn, body)
        except TransportFailure as failure:
            if conn is None or failure.cause == "timeout":
                raise
            # A kept-alive connection the server had closed: once more on a fresh one.
            return await self._post(None, body)

    async def _post(self, conn: _Connection | None, body: bytes) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self._timeout_s):
                if conn is None:
                    conn = _Connection(*await asyncio.open_connection(self._host, self._port))
                status, data, keep = await self._exchange(conn, body)
        except TimeoutError as exc:
            if conn is not None:
                conn.close()
            raise TransportFailure("timeout") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            if conn is not None:
                conn.close()
            raise TransportFailure(type(exc).__name__) from exc
        if keep:
            self._idle.append(conn)
        else:
            conn.close()
        return status, data

    async def _exchange(self, conn: _Connection, body: bytes) -> tuple[int, bytes, bool]:
        conn.writer.write(self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version, status_text = lines[0].split(b" ", 2)[:2]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        keep = headers.get(b"connection") != b"close" and version == b"HTTP/1.1"
        if headers.get(b"transfer-encoding") == b"chunked":
            data = await _read_chunked(conn.reader)
        elif b"content-length" in headers:
            data = await conn.reader.readexactly(int(headers[b"content-length"]))
        else:
            data, keep = await conn.reader.read(), False
        return int(status_text), data, keep

    async def aclose(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            conn.close()
            with contextlib.suppress(OSError):
                await conn.writer.wait_closed()


class HttpxTransport:
    def __init__(
        self,
        base_url: str,
        path: str,
        headers: Mapping[str, str],
        timeout_s: float,
        connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._path = path
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=connections),
            transport=transport,
        )

    async def post(self, body: bytes) -> tuple[int, bytes]:
        try:
            response = await self._client.post(self._path, content=body)
        except httpx.TimeoutException as exc:
            raise TransportFailure("timeout") from exc
        except httpx.HTTPError as exc:
            raise TransportFailure(type(exc).__name__) from exc
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


def make_transport(
    service_url: str, path: str, token: str | None, timeout_s: float, connections: int
) -> Transport:
    """StreamTransport for http://, HttpxTransport for https://."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    scheme = urlsplit(service_url).scheme
    if scheme == "http":
        return StreamTransport(service_url, path, headers, timeout_s)
    if scheme == "https":
        return HttpxTransport(service_url, path, headers, timeout_s, connections)
    raise ReplayRefused(
        f"--service must be an http:// or https:// URL, not {service_url!r}",
        hint="e.g. --service http://127.0.0.1:8080",
    )
