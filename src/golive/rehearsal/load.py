"""An open-loop HTTP load generator: requests leave on a fixed schedule, whatever the server does.

Latency is measured from each request's *scheduled* start, so a server that stalls is charged for
the requests that queued behind the stall (no coordinated omission). Connections are HTTP/1.1
keep-alive, raw asyncio streams: cheap enough that one core drives thousands of requests a second.
Only loopback targets are accepted, and every run is bounded in rate and duration.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_RATE_PER_S = 20_000
MAX_DURATION_S = 3_600


class LoadError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    scheduled_s: float  # offset from the start of the run
    latency_s: float
    status: int  # 0 when no HTTP answer arrived
    error: str | None = None
    tag: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


Classifier = Callable[[int, dict[str, str], bytes], str]


@dataclass(frozen=True, slots=True)
class LoadPlan:
    url: str  # scheme://host:port
    path: str
    rate_per_s: float
    duration_s: float
    method: str = "GET"
    body: Callable[[int], bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 32
    timeout_s: float = 10.0
    classify: Classifier | None = None

    def validate(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise LoadError(f"load targets must be http://host:port URLs, not {self.url!r}")
        host = parts.hostname
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise LoadError(f"load is sent only to loopback addresses, not {host}")
        if not 0 < self.rate_per_s <= MAX_RATE_PER_S:
            raise LoadError(f"rate must be in (0, {MAX_RATE_PER_S}] requests/s")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise LoadError(f"duration must be in (0, {MAX_DURATION_S}] s")
        if self.connections < 1:
            raise LoadError("connections must be at least 1")
        return host, parts.port or 80


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    elapsed_s: float

    @property
    def count(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok)

    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes)

    def percentile_ms(self, q: float, tag: str | None = None) -> float:
        values = sorted(o.latency_s for o in self.outcomes if tag is None or o.tag == tag)
        if not values:
            return math.nan
        index = min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))
        return values[index] * 1000

    def throughput(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, float | int]:
        return {
            "requests": self.count,
            "failed": self.failed,
            "rps": round(self.throughput(), 1),
            "p50_ms": round(self.percentile_ms(50), 2),
            "p99_ms": round(self.percentile_ms(99), 2),
        }


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await self.reader.readexactly(length) if length else b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _raw_request(plan: LoadPlan, host: str, port: int, index: int) -> bytes:
    body = plan.body(index) if plan.body else b""
    lines = [f"{plan.method} {plan.path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in plan.headers.items()]
    if body or plan.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def run_load(plan: LoadPlan, stop: asyncio.Event | None = None) -> LoadResult:
    """Send ``rate_per_s`` requests a second for ``duration_s`` (or until ``stop`` is set)."""
    host, port = plan.validate()
    total = int(plan.rate_per_s * plan.duration_s)
    interval = 1.0 / plan.rate_per_s
    tickets: asyncio.Queue[int | None] = asyncio.Queue()
    outcomes: list[Outcome] = []
    start = time.perf_counter()

    async def worker() -> None:
        conn = _Connection(host, port)
        try:
            while (index := await tickets.get()) is not None:
                scheduled = index * interval
                raw = _raw_request(plan, host, port, index)
                status, error, tag = 0, None, ""
                try:
                    status, headers, body = await asyncio.wait_for(
                        conn.request(raw), plan.timeout_s
                    )
                    if plan.classify is not None:
                        tag = plan.classify(status, headers, body)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    error = type(exc).__name__
                    conn.close()
                latency = time.perf_counter() - start - scheduled
                outcomes.append(Outcome(scheduled, latency, status, error, tag))
        finally:
            conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(plan.connections)]
    for index in range(total):
        if stop is not None and stop.is_set():
            break
        delay = start + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tickets.put_nowait(index)
    for _ in workers:
        tickets.put_nowait(None)
    await asyncio.gather(*workers)
    return LoadResult(outcomes, time.perf_counter() - start)
