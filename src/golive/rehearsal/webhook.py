"""The rehearsal's stand-in for the on-call channel and the status page: a webhook receiver on
loopback that writes every notification it gets as a JSON line to
``<state_dir>/local/notifications.jsonl``.

It runs in golive's own process (threads of its own; a few small POSTs a run) while
``golive rehearse`` runs, and hands its URLs to the rehearsal plan's ``notify`` targets through
the variables they name (``url_env``), so the plan carries no port: Apprise posts JSON to
``json://127.0.0.1:PORT/oncall``, the status page target to ``http://127.0.0.1:PORT/status``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from golive.journal import now_iso

ONCALL_ENV = "GOLIVE_REHEARSAL_WEBHOOK_URL"
STATUS_ENV = "GOLIVE_REHEARSAL_STATUS_URL"


def inbox(state_dir: Path) -> Path:
    return state_dir / "local" / "notifications.jsonl"


def received(state_dir: Path) -> list[dict[str, Any]]:
    path = inbox(state_dir)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _handler(path: Path, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"raw": raw.decode("utf-8", "replace")}
            line = json.dumps({"at": now_iso(), "path": self.path, "body": body})
            with lock, path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def receiving(state_dir: Path) -> Iterator[Path]:
    """Serve the receiver and export its URLs while the block runs; the inbox's path."""
    path = inbox(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(path, threading.Lock()))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="rehearsal-webhook", daemon=True)
    thread.start()
    port = server.server_address[1]
    previous = {name: os.environ.get(name) for name in (ONCALL_ENV, STATUS_ENV)}
    os.environ[ONCALL_ENV] = f"json://127.0.0.1:{port}/oncall"
    os.environ[STATUS_ENV] = f"http://127.0.0.1:{port}/status"
    try:
        yield path
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
