"""One write per response: the coalescing transport keeps order and loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from credit_assessment.http_protocol import CoalescingTransport


class RecordingTransport:
    """Stands in for the event loop's socket transport: records what is sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name, default)


async def _coalescing() -> tuple[RecordingTransport, CoalescingTransport]:
    inner = RecordingTransport()
    return inner, CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_head_and_body_written_in_one_pass_leave_as_one_write_in_order() -> None:
    inner, transport = await _coalescing()
    transport.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert inner.sent == []  # held until the end of this pass of the loop
    assert transport.get_write_buffer_size() == 45
    await asyncio.sleep(0)
    assert inner.sent == [b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"]


async def test_responses_in_later_passes_are_written_separately() -> None:
    inner, transport = await _coalescing()
    transport.write(b"first")
    await asyncio.sleep(0)
    transport.write(b"second")
    await asyncio.sleep(0)
    assert inner.sent == [b"first", b"second"]


async def test_close_and_eof_send_what_is_held_first() -> None:
    inner, transport = await _coalescing()
    transport.write(b"last words")
    transport.close()
    assert inner.sent == [b"last words"] and inner.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing more to send
    assert inner.sent == [b"last words"]

    inner, transport = await _coalescing()
    transport.write(b"before eof")
    transport.write_eof()
    assert inner.sent == [b"before eof"] and inner.eof


async def test_nothing_is_written_to_a_transport_already_closing() -> None:
    inner, transport = await _coalescing()
    transport.write(b"too late")
    inner.closed = True  # the peer went away in the meantime
    await asyncio.sleep(0)
    assert inner.sent == []


async def test_everything_else_is_the_transports_own() -> None:
    _, transport = await _coalescing()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5000)
    assert transport.is_closing() is False
