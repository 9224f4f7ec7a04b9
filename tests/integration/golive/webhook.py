"""A real webhook receiver on 127.0.0.1 for the notification tests: it records every POST (its
JSON body, when it came, when it was answered) and answers as the test tells it: 500 for the
first N requests, or for the first N seconds after it started, or slowly."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    body: dict[str, Any]
    path: str
    received: float  # time.time()
    status: int
    answered: float | None = None


@dataclass
class Receiver:
    fail_first: int = 0
    fail_for_s: float = 0.0  # 500 to every request that comes this soon after start()
    delay_s: float = 0.0
    # Hold the answer to the first request whose body contains this text (0: none).
    hold_matching: str = ""
    hold_s: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    requests: int = 0
    held: bool = False
    started: float = 0.0  # time.time() at start()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def http_url(self, path: str = "status") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                with receiver.lock:
                    receiver.requests += 1
                    early = time.time() - receiver.started < receiver.fail_for_s
                    failing = receiver.requests <= receiver.fail_first or early
                    status = 500 if failing else 200
                    hold = receiver.delay_s
                    wanted = receiver.hold_matching
                    if wanted and not receiver.held and wanted in json.dumps(body):
                        receiver.held, hold = True, receiver.hold_s
                    delivery = Delivery(body, self.path, time.time(), status)
                    receiver.deliveries.append(delivery)
                if hold:
                    time.sleep(hold)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                delivery.answered = time.time()

            def log_message(self, *_: Any) -> None:
                pass

        self.started = time.time()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.status == 200]

    def titles(self) -> list[str]:
        return [str(d.body.get("title", d.body.get("message", ""))) for d in self.accepted()]

    def wait_for(self, count: int, timeout_s: float = 60) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.accepted()) >= count:
                return self.accepted()
            time.sleep(0.05)
        raise AssertionError(f"{count} deliveries expected, got {self.titles()}")
