"""An open-loop HTTP load generator: requests leave on a fixed schedule, whatever the server does.

Latency is measured from each request's *scheduled* start, so a server that stalls is charged for
the requests that queued behind the stall (no coordinated omission). Connections are HTTP/1.1
keep-alive, raw asyncio streams: cheap enough that one core drives thousands of requests a second.
Only loopback targets are accepted, and every run is bounded in rate and duration.

``LiveCounts`` is updated as answers arrive (sent, failed, by tag), for a progress display;
``BackgroundLoad`` runs a plan on its own event loop in a thread, for the whole of a
rehearsal, and hands back the ``LoadResult`` when stopped. ``slot_engine_tag`` tags each
answer with the slot the router names in ``X-Slot`` and the ``engine`` of the decision.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import threading
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
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
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
    started_at: float = 0.0  # wall clock (time.time()) at offset 0

    def between(self, start: float, end: float) -> list[Outcome]:
        """Outcomes scheduled between two wall-clock instants."""
        lo, hi = start - self.started_at, end - self.started_at
        return [o for o in self.outcomes if lo <= o.scheduled_s < hi]

    def by_tag(self) -> dict[str, dict[str, int]]:
        tags: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            entry = tags.setdefault(o.tag or "-", {"requests": 0, "failed": 0})
            entry["requests"] += 1
            entry["failed"] += 0 if o.ok else 1
        return dict(sorted(tags.items()))

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


class LiveCounts:
    """Counts updated as answers arrive; read from any thread."""

    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.by_tag: Counter[str] = Counter()
        self.last_error: str | None = None
        # (monotonic time answered, latency in seconds, ok): for windows of live figures.
        self.samples: list[tuple[float, float, bool]] = []

    def add(self, outcome: Outcome) -> None:
        self.sent += 1
        if not outcome.ok:
            self.failed += 1
            self.last_error = outcome.error or f"HTTP {outcome.status}"
        self.by_tag[outcome.tag or "-"] += 1
        self.samples.append((time.monotonic(), outcome.latency_s, outcome.ok))

    def window(self, since: float) -> tuple[int, int, float]:
        """(requests, failed, p99 ms) of the answers since a ``time.monotonic()`` instant."""
        recent = [s for s in self.samples[-200_000:] if s[0] >= since]
        if not recent:
            return 0, 0, math.nan
        latencies = sorted(s[1] for s in recent)
        index = min(len(latencies) - 1, max(0, math.ceil(0.99 * len(latencies)) - 1))
        return len(recent), sum(1 for s in recent if not s[2]), latencies[index] * 1000


_ENGINE = re.compile(rb'"engine"\s*:\s*"([a-z_-]+)"')


def slot_engine_tag(status: int, headers: dict[str, str], body: bytes) -> str:
    """``<slot>/<engine>``: the router's X-Slot header and the decision's engine."""
    match = _ENGINE.search(body)
    return f"{headers.get('x-slot', '?')}/{match.group(1).decode() if match else '?'}"


async def run_load(
    plan: LoadPlan, stop: asyncio.Event | None = None, live: LiveCounts | None = None
) -> LoadResult:
    """Send ``rate_per_s`` requests a second for ``duration_s`` (or until ``stop`` is set)."""
    host, port = plan.validate()
    total = int(plan.rate_per_s * plan.duration_s)
    interval = 1.0 / plan.rate_per_s
    tickets: asyncio.Queue[int | None] = asyncio.Queue()
    outcomes: list[Outcome] = []
    started_at = time.time()
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
                outcome = Outcome(scheduled, latency, status, error, tag)
                outcomes.append(outcome)
                if live is not None:
                    live.add(outcome)
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
    return LoadResult(outcomes, time.perf_counter() - start, started_at)


class BackgroundLoad:
    """A load plan running on its own event loop in a thread until ``stop()``."""

    def __init__(self, plan: LoadPlan) -> None:
        plan.validate()
        self.plan = plan
        self.live = LiveCounts()
        self.result: LoadResult | None = None
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="background-load", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> LoadResult:
            self._stop = asyncio.Event()
            self._ready.set()
            return await run_load(self.plan, self._stop, self.live)

        try:
            self.result = self._loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of stop()
            self.error = exc
        finally:
            self._ready.set()
            self._loop.close()

    def start(self) -> BackgroundLoad:
        self._thread.start()
        self._ready.wait(10)
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 60.0) -> LoadResult:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
        if self.error is not None:
            raise LoadError(f"the background load failed: {self.error!r}") from self.error
        if self.result is None:
            raise LoadError("the background load did not finish")
        return self.result
