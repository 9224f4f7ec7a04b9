"""A small HTTP/1.1 keep-alive client for the hot path to the legacy system.

The legacy call sits on every legacy-decided request, so its client cost is the routing cost.
General-purpose async clients spend far more CPU per request than forwarding one small JSON
body needs; this one keeps a pool of open connections and parses only what the answer needs
(status line, Content-Length body). A request that fails on a reused connection before any
answer arrived is retried once on a fresh one (the peer may have closed an idle connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit


class HttpError(OSError):
    pass


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # the end of the (empty) trailer section
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class Http1Pool:
    def __init__(self, base_url: str, headers: dict[str, str], max_idle: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// base URLs are supported here, not {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._idle: list[_Conn] = []
        self._max_idle = max_idle

    async def post_json(self, path: str, body: bytes) -> Answer:
        head = (
            f"POST {self._prefix}{path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{self._fixed}\r\n"
        ).encode("latin-1")
        reused = bool(self._idle)
        conn = self._idle.pop() if reused else await self._open()
        try:
            answer, keep = await self._exchange(conn, head + body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            conn.close()
            if not reused:
                raise HttpError(f"request failed: {type(exc).__name__}") from exc
            conn = await self._open()  # the idle connection had gone stale: once more, fresh
            try:
                answer, keep = await self._exchange(conn, head + body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as again:
                conn.close()
                raise HttpError(f"request failed: {type(again).__name__}") from again
        except BaseException:  # cancelled (timeout): the connection is in an unknown state
            conn.close()
            raise
        if keep and len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    async def _open(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        except OSError as exc:
            raise HttpError(f"cannot connect: {type(exc).__name__}") from exc
        return _Conn(reader, writer)

    @staticmethod
    async def _exchange(conn: _Conn, raw: bytes) -> tuple[Answer, bool]:
        conn.writer.write(raw)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        chunked = False
        keep = True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
        if chunked:
            body = await _read_chunked(conn.reader)
        elif length is None:
            body = await conn.reader.read()
            keep = False
        else:
            body = await conn.reader.readexactly(length)
        return Answer(status, body), keep

    async def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            with contextlib.suppress(Exception):
                conn.close()
