"""The background load runs in a process of its own: what golive does cannot pass for latency.

The generator charges every delay from a request's schedule to the server. When it ran in a
thread of golive, a step that held the GIL (reading 16,000 validation pairs) showed up as half a
second of server latency. Here a real HTTP server runs as its own process, and golive's process
holds the GIL for over a second in one C call while the load runs.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from golive.load import BackgroundLoad, LoadError, LoadPlan
from tests.conftest import free_port

SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b'{"engine": "new"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Slot", "green")
        self.send_header("X-Peer", str(self.client_address[1]))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER, encoding="utf-8")
    process = subprocess.Popen([sys.executable, str(script), str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        process.kill()
        process.wait(5)


def _plan(url: str) -> LoadPlan:
    from golive.load import slot_engine_tag

    return LoadPlan(
        url, "/", rate_per_s=200, duration_s=60, connections=8, classify=slot_engine_tag
    )


def test_a_step_holding_the_gil_is_not_counted_as_server_latency(server: str) -> None:
    load = BackgroundLoad(_plan(server)).start()
    time.sleep(0.5)
    numbers = list(range(3_000_000, 0, -1))
    held = time.perf_counter()
    for _ in range(3):
        numbers.sort(key=lambda n: -n)  # one C call each; the GIL is held throughout
        numbers.sort()
    held_s = time.perf_counter() - held
    time.sleep(0.5)
    result = load.stop()
    assert held_s > 0.5, "the machine sorted too fast for the test to mean anything"
    assert result.failed == 0
    assert result.count > 150
    assert result.percentile_ms(100) < held_s * 1000 / 2, (held_s, result.summary())
    # What the parent saw arrive is what the load process measured.
    assert load.live.sent == result.count
    assert load.live.by_tag == {"green/new": result.count}
    requests, failed, p99 = load.live.window(time.monotonic() - 60)
    assert (requests, failed) == (result.count, 0)
    assert p99 == pytest.approx(result.percentile_ms(99), rel=0.01)


def test_what_the_plan_notes_of_each_answer_comes_back_with_it(server: str) -> None:
    """A callable of the caller runs in the load process: a note is how it hands results back."""
    seen: list[str] = []

    def note(status: int, headers: dict[str, str], body: bytes) -> str:
        seen.append("in the load process")  # a copy: the parent's list stays empty
        return f"{status}:{headers.get('x-slot')}"

    plan = LoadPlan(server, "/", rate_per_s=100, duration_s=60, connections=4, note=note)
    load = BackgroundLoad(plan).start()
    time.sleep(0.5)
    result = load.stop()
    assert result.count > 0
    assert {o.note for o in result.outcomes} == {"200:green"}
    assert seen == []


def test_connections_are_renewed_after_their_quota_of_answers(server: str) -> None:
    """Behind a Service whose selector changes, only new connections reach the new pods."""

    def peer(status: int, headers: dict[str, str], body: bytes) -> str:
        return headers.get("x-peer", "")

    kept = LoadPlan(server, "/", rate_per_s=100, duration_s=60, connections=2, note=peer)
    renewed = dataclasses.replace(kept, requests_per_connection=5)
    for plan in (kept, renewed):
        load = BackgroundLoad(plan).start()
        time.sleep(1.0)
        result = load.stop()
        assert result.failed == 0 and result.count >= 40
        peers = {o.note for o in result.outcomes}
        if plan is kept:
            assert len(peers) <= 2, peers
        else:
            assert len(peers) >= result.count // 5 - 2, (len(peers), result.count)


def test_a_load_that_cannot_connect_is_counted_as_failed_not_lost() -> None:
    plan = LoadPlan(f"http://127.0.0.1:{free_port()}", "/", rate_per_s=50, duration_s=60)
    load = BackgroundLoad(plan).start()
    time.sleep(0.5)
    result = load.stop()
    assert result.count > 0
    assert result.failed == result.count
    assert load.live.last_error == "ConnectionRefusedError"


def test_a_load_process_that_dies_is_an_error_not_silence(server: str) -> None:
    load = BackgroundLoad(_plan(server)).start()
    time.sleep(0.3)
    load._process.kill()
    load._process.join(5)
    deadline = time.monotonic() + 5
    while load.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not load.running
    with pytest.raises(LoadError, match="ended without its figures"):
        load.stop()


def test_a_remote_plan_goes_through_httpx_and_measures_the_same(server: str) -> None:
    """The production performance check: httpx (TLS, proxy, CA bundle from the environment)."""
    import asyncio

    from golive.load import run_load, slot_engine_tag

    plan = LoadPlan(
        server,
        "/",
        rate_per_s=100,
        duration_s=1.0,
        connections=4,
        classify=slot_engine_tag,
        remote=True,
    )
    result = asyncio.run(run_load(plan))
    assert result.count == plan.total() and result.failed == 0
    assert {o.tag for o in result.outcomes} == {"green/new"}
    dead = dataclasses.replace(plan, url=f"http://127.0.0.1:{free_port()}")
    failed = asyncio.run(run_load(dead))
    assert failed.failed == failed.count > 0
