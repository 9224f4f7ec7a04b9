"""Replay: bounded retries, counted failures, never a silent drop — against the MockTransport
fake, and against a real slow HTTP server on 127.0.0.1 through the stream transport; and the
command's exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from golive.errors import GoLiveError, ReplayRefused, ValidationFailed
from golive.validation import add_validate_command
from golive.validation.config import Replay
from golive.validation.export import REQUIRED
from golive.validation.records import SCALE_LEGACY, Application, Side, Stored
from golive.validation.replay import backoff_delay, replay
from golive.validation.transport import HttpxTransport, make_transport

SLOW_ONCE = "00000000-0000-0000-0000-00000000000a"  # the first answer comes too late
ALWAYS_SLOW = "00000000-0000-0000-0000-00000000000b"  # never answers in time
FLAKY = "00000000-0000-0000-0000-00000000000c"  # 503 twice, then answers
UNKNOWN = "00000000-0000-0000-0000-00000000000d"  # 422


def client(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def stored(client_id: str, ref: str) -> Stored:
    at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    return Stored(
        Application(ref, client_id, 20_000.0, 24, at, False),
        Side("APPROVED", 700, "B", frozenset(), SCALE_LEGACY),
    )


def answer(body: dict[str, object]) -> dict[str, object]:
    return {
        "clientId": body["clientId"],
        "loanAmount": body["loanAmount"],
        "loanTerm": body["loanTerm"],
        "decision": "APPROVED",
        "score": 560,
        "riskGrade": "B",
        "reasons": [],
        "engine": "new",
        "modelVersion": "scorecard-test",
        "policyVersion": "p",
        "offerAmount": None,
        "monthlyInstalment": 100.0,
    }


def test_replay_retries_within_bounds_and_counts_the_unanswered():
    calls: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        cid = body["clientId"]
        calls[cid] += 1
        if cid == ALWAYS_SLOW:
            raise httpx.ReadTimeout("slow", request=request)
        if cid == FLAKY and calls[cid] <= 2:
            return httpx.Response(503)
        if cid == UNKNOWN:
            return httpx.Response(422, json={"title": "Unknown client"})
        return httpx.Response(200, json=answer(body))

    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    rows = [stored(client(i), f"r{i}") for i in range(20)]
    rows += [stored(ALWAYS_SLOW, "slow"), stored(FLAKY, "flaky"), stored(UNKNOWN, "unknown")]
    transport = HttpxTransport(
        "http://service",
        "/api/v1/assessment/evaluate",
        {},
        1.0,
        transport=httpx.MockTransport(handler),
    )
    settings = Replay(concurrency=4, attempts=3, backoff_s=0.1, backoff_max_s=1.0)
    outcome = asyncio.run(replay(rows, transport, settings, sleep=sleep))
    assert len(outcome.pairs) == 21  # 20 + the flaky one
    unanswered = {row.application.ref: (cause, tries) for row, cause, tries in outcome.unanswered}
    assert unanswered == {"slow": ("timeout", 3), "unknown": ("HTTP 422 (unknown client)", 1)}
    assert calls[ALWAYS_SLOW] == 3 and calls[FLAKY] == 3 and calls[UNKNOWN] == 1
    assert outcome.retries == 4  # 2 for the slow one, 2 for the flaky one
    assert len(delays) == 4 and all(0.05 <= d <= 0.2 for d in delays)
    assert len(outcome.pairs) + len(outcome.unanswered) == len(rows)  # nothing dropped


def test_backoff_doubles_and_is_capped():
    import random

    settings = Replay(backoff_s=0.2, backoff_max_s=1.0)
    rng = random.Random(1)
    for attempt, cap in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (8, 1.0)):
        delay = backoff_delay(attempt, settings, rng)
        assert cap / 2 <= delay <= cap


def test_a_refused_token_stops_the_replay():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(401)

    transport = HttpxTransport("http://s", "/e", {}, 1.0, transport=httpx.MockTransport(handler))
    rows = [stored(client(i), f"r{i}") for i in range(100)]
    with pytest.raises(ReplayRefused, match="401"):
        asyncio.run(replay(rows, transport, Replay(concurrency=2)))
    assert len(seen) <= 4


class _SlowService(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls: ClassVar[Counter[str]] = Counter()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cid = body["clientId"]
        type(self).calls[cid] += 1
        if cid == ALWAYS_SLOW or (cid == SLOW_ONCE and self.calls[cid] == 1):
            time.sleep(1.5)
        if cid == FLAKY and self.calls[cid] <= 2:
            self._send(503, b'{"title":"busy"}')
            return
        self._send(200, json.dumps(answer(body)).encode())

    def _send(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up on this request (timed out)

    def log_message(self, format: str, *args: object) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops the connects of a burst


@pytest.fixture
def slow_service() -> Iterator[str]:
    _SlowService.calls = Counter()
    server = _Server(("127.0.0.1", 0), _SlowService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_replay_against_a_slow_server_over_real_sockets(slow_service: str):
    rows = [stored(client(i), f"r{i}") for i in range(30)]
    rows += [stored(SLOW_ONCE, "slow-once"), stored(ALWAYS_SLOW, "slow"), stored(FLAKY, "flaky")]
    settings = Replay(concurrency=8, timeout_s=0.5, attempts=3, backoff_s=0.01)
    transport = make_transport(slow_service, settings.path, "t0ken", 0.5, 8)
    outcome = asyncio.run(replay(rows, transport, settings))
    answered = {p.application.ref for p in outcome.pairs}
    assert {"slow-once", "flaky"} <= answered
    assert len(answered) == 32
    assert [(r.application.ref, cause, n) for r, cause, n in outcome.unanswered] == [
        ("slow", "timeout", 3)
    ]
    assert _SlowService.calls[ALWAYS_SLOW] == 3
    assert outcome.retries >= 1 + 2 + 2


def _main(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="golive")
    add_validate_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except GoLiveError as exc:
        return exc.exit_code, f"{exc.message}\nhint: {exc.hint}"
    return 0, ""


def _export(tmp_path: Path, clients: list[str]) -> Path:
    lines = [",".join(REQUIRED)]
    lines += [
        f"A-{i},{cid},20000,24,APPROVE,700,B,,2026-03-01T09:{i % 60:02d}:00Z"
        for i, cid in enumerate(clients)
    ]
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_command_exit_codes(tmp_path: Path, slow_service: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("API_TOKEN", "t0ken")
    config = tmp_path / "validation.yaml"
    config.write_text("replay: {timeout_s: 0.5, attempts: 2, backoff_s: 0.01}\n")
    export = _export(tmp_path, [client(i) for i in range(40)])
    out = tmp_path / "out"
    code, _ = _main(
        [
            "validate",
            "--export",
            str(export),
            "--service",
            slow_service,
            "--config",
            str(config),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads((out / "validation.json").read_text())["pairs"] == 40
    assert "## Legacy-vs-new validation" in (out / "validation.md").read_text()

    # one of 41 never answers: above the default 0.1% unanswered limit -> exit 16, files written
    export = _export(tmp_path, [client(i) for i in range(40)] + [ALWAYS_SLOW])
    code, message = _main(
        [
            "validate",
            "--export",
            str(export),
            "--service",
            slow_service,
            "--config",
            str(config),
            "--out",
            str(out),
        ]
    )
    assert code == ValidationFailed.exit_code == 16
    assert "1 of 41 applications unanswered" in message
    assert (
        json.loads((out / "validation.json").read_text())["source"]["unanswered"][0]["cause"]
        == "timeout"
    )

    bad = tmp_path / "bad.csv"
    bad.write_text(
        ",".join(REQUIRED) + f"\nA-1,{client(1)},100,12,PERHAPS,1,B,,2026-03-01T09:00:00Z\n"
    )
    code, message = _main(["validate", "--export", str(bad), "--service", slow_service])
    assert code == 2
    assert "bad.csv:2: decision: unknown decision 'PERHAPS'" in message

    code, message = _main(["validate", "--export", str(export)])
    assert code == 2 and "--service" in message
    monkeypatch.delenv("API_TOKEN")
    code, message = _main(["validate", "--export", str(export), "--service", slow_service])
    assert code == 2 and "API_TOKEN is not set" in message
