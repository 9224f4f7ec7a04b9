"""Small ASGI helpers shared by the hot endpoint and the outer app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

from credit_assessment.api.problems import PROBLEM_MEDIA_TYPE, Problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
JSON_MEDIA_TYPE = "application/json"


_HEADERS = "credit_assessment.headers"


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` lower-case), decoded as latin-1."""
    headers = scope.get(_HEADERS)
    if headers is None:  # one dict per request; reversed, so the first of repeated headers wins
        headers = scope[_HEADERS] = dict(reversed(scope["headers"]))
    value = headers.get(name)
    return None if value is None else bytes(value).decode("latin-1")


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    media_type: str = JSON_MEDIA_TYPE,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    constant: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    """Send a whole response; returns its status. ``constant``: headers every response carries."""
    raw = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    if request_id is not None:
        raw.append((b"x-request-id", request_id.encode()))
    raw.extend(constant)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
    return status


async def send_json(
    send: Send,
    status: int,
    document: Any,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    constant: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    return await send_body(
        send, status, orjson.dumps(document), JSON_MEDIA_TYPE, headers, request_id, constant
    )


async def send_problem(
    send: Send,
    problem: Problem,
    path: str,
    request_id: str | None,
    constant: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    return await send_body(
        send,
        problem.status,
        problem.body(path, request_id),
        PROBLEM_MEDIA_TYPE,
        problem.headers,
        request_id,
        constant,
    )


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
