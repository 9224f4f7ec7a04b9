"""Small real HTTP servers on 127.0.0.1 for the traffic tests, stopped at teardown."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Recorded], tuple[int, str, bytes]]


@dataclass
class StubServer:
    """A real HTTP server; ``handle`` answers (status, content type, body) for each request."""

    handle: Handler
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        stub = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                recorded = Recorded(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                stub.requests.append(recorded)
                status, content_type, body = stub.handle(recorded)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def json_answer(status: int, document: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(document).encode()


@pytest.fixture
def stub_server() -> Iterator[Callable[[Handler], StubServer]]:
    started: list[StubServer] = []

    def start(handle: Handler) -> StubServer:
        server = StubServer(handle)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
