"""The keep-alive client to the legacy system, against real sockets on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from credit_assessment.routing.http1 import Http1Pool, HttpError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return await reader.readexactly(length)


async def test_keeps_connections_and_reads_both_body_framings() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        body = await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        body = await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        await writer.drain()

    server, url = await serve(handler)
    pool = Http1Pool(url, {"Authorization": "Bearer t"})
    first = await pool.post_json("/x", b'{"a": 1}')
    second = await pool.post_json("/x", b"{}")
    assert (first.status, first.body) == (200, b'{"a": 1}')
    assert (second.status, second.body) == (200, b"abc")
    assert connections == 1
    await pool.close()
    server.close()


async def test_a_stale_idle_connection_is_retried_once_on_a_fresh_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # the server drops the connection the client keeps idle

    server, url = await serve(handler)
    pool = Http1Pool(url, {})
    assert (await pool.post_json("/x", b"{}")).body == b"ok"
    await asyncio.sleep(0.05)
    assert (await pool.post_json("/x", b"{}")).body == b"ok"
    await pool.close()
    server.close()


async def test_an_unreachable_peer_is_an_http_error() -> None:
    server, url = await serve(lambda r, w: asyncio.sleep(0))
    server.close()
    await server.wait_closed()
    with pytest.raises(HttpError):
        await Http1Pool(url, {}).post_json("/x", b"{}")


def test_only_plain_http_base_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        Http1Pool("https://legacy.example", {})
