"""An open-loop HTTP load generator: requests leave on a fixed schedule, whatever the server does.

Used by the performance step of every go-live and, for the whole of a rehearsal, as its
background load; so it lives beside the steps, not in the rehearsal package.

Latency is measured from each request's *scheduled* start, so a server that stalls is charged for
the requests that queued behind the stall (no coordinated omission). Connections are HTTP/1.1
keep-alive, raw asyncio streams: cheap enough that one core drives thousands of requests a second.
Only loopback targets are accepted, unless the plan says ``remote``: the performance check of a
production slot, sent with httpx (TLS, the environment's proxy and CA bundle) to the slot's URL.
Every run is bounded in rate and duration.

``LiveCounts`` is updated as answers arrive (sent, failed, by tag), for a progress display;
``BackgroundLoad`` runs a plan in a process of its own (so nothing golive does delays the
generator and is mistaken for server latency), for the whole of a rehearsal, and hands back
the ``LoadResult`` when stopped. ``slot_engine_tag`` tags each
answer with the slot the router names in ``X-Slot`` and the ``engine`` of the decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import multiprocessing
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
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
    note: str = ""  # what the plan's ``note`` kept of the answer (an assessment id, say)

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
    # Keeps a string of each answer with its outcome (the load runs in a process of its own, so a
    # callable that records into an object of the caller would record into a copy).
    note: Classifier | None = None
    # The rate rises linearly from 0 over the first ramp_s seconds, as traffic reaches a
    # long-running release: never all at once on cold caches.
    ramp_s: float = 0.0
    # Each connection is closed after this many answers and a new one opened (0: kept for the
    # whole run), as clients behind a connection limit do: behind a Service whose selector
    # changes (kube-proxy keeps a connection on the pod it chose), new connections follow.
    requests_per_connection: int = 0
    # A target that is not this machine (http or https, any host): the production slot the
    # performance check measures. Tests and the rehearsal leave it off: loopback only.
    remote: bool = False
    # Headers of request ``index`` added to ``headers``: a token of its own for each request, as
    # a fleet of clients sends (each one verified, none answered from the service's cache).
    headers_of: Callable[[int], dict[str, str]] | None = None

    def headers_for(self, index: int) -> dict[str, str]:
        """The headers request ``index`` is sent with."""
        if self.headers_of is None:
            return self.headers
        return {**self.headers, **self.headers_of(index)}

    def total(self) -> int:
        """How many requests the whole run sends."""
        ramped = self.rate_per_s * min(self.ramp_s, self.duration_s) ** 2 / (2 * self.ramp_s or 1)
        return int(ramped + self.rate_per_s * max(0.0, self.duration_s - self.ramp_s))

    def offset_s(self, index: int) -> float:
        """When request ``index`` is due, in seconds from the start of the run."""
        in_ramp = self.rate_per_s * self.ramp_s / 2  # requests sent during the ramp
        if index < in_ramp:
            return math.sqrt(2 * self.ramp_s * index / self.rate_per_s)
        return self.ramp_s + (index - in_ramp) / self.rate_per_s

    def validate(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        schemes = ("http", "https") if self.remote else ("http",)
        if parts.scheme not in schemes or not parts.hostname:
            raise LoadError(
                f"load targets must be {' or '.join(schemes)} URLs (scheme://host:port), "
                f"not {self.url!r}"
            )
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback and not self.remote:
            raise LoadError(f"load is sent only to loopback addresses, not {host}")
        if not 0 < self.rate_per_s <= MAX_RATE_PER_S:
            raise LoadError(f"rate must be in (0, {MAX_RATE_PER_S}] requests/s")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise LoadError(f"duration must be in (0, {MAX_DURATION_S}] s")
        if self.connections < 1:
            raise LoadError("connections must be at least 1")
        if self.requests_per_connection < 0:
            raise LoadError("requests_per_connection must be 0 (unlimited) or more")
        if not 0 <= self.ramp_s <= self.duration_s:
            raise LoadError("the ramp must last between 0 s and the whole duration")
        return host, parts.port or (443 if parts.scheme == "https" else 80)


def is_loopback(url: str) -> bool:
    """Whether ``url`` is plain http to this machine (the raw-socket generator's targets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http":
        return False
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def nearest_rank_ms(sorted_latencies_s: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of latencies in seconds, in milliseconds."""
    if not sorted_latencies_s:
        return math.nan
    n = len(sorted_latencies_s)
    return sorted_latencies_s[min(n - 1, max(0, math.ceil(q / 100 * n) - 1))] * 1000


@dataclass(frozen=True, slots=True)
class WindowFigures:
    requests: int
    failed: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> WindowFigures:
        latencies = sorted(o.latency_s for o in outcomes)
        return cls(
            requests=len(outcomes),
            failed=sum(1 for o in outcomes if not o.ok),
            p50_ms=nearest_rank_ms(latencies, 50),
            p99_ms=nearest_rank_ms(latencies, 99),
            max_ms=latencies[-1] * 1000 if latencies else math.nan,
        )

    def as_dict(self) -> dict[str, float | int | None]:
        def ms(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 2)

        return {
            "requests": self.requests,
            "failed": self.failed,
            "p50_ms": ms(self.p50_ms),
            "p99_ms": ms(self.p99_ms),
            "max_ms": ms(self.max_ms),
        }


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """One window of a load run: its figures overall and by tag (``slot/engine``)."""

    started_at: float  # wall clock (time.time()) of the window's start
    width_s: float
    total: WindowFigures
    by_tag: dict[str, WindowFigures]

    @classmethod
    def of(cls, started_at: float, width_s: float, outcomes: list[Outcome]) -> LoadWindow:
        tags: dict[str, list[Outcome]] = {}
        for o in outcomes:
            tags.setdefault(o.tag or "-", []).append(o)
        return cls(
            started_at,
            width_s,
            WindowFigures.of(outcomes),
            {tag: WindowFigures.of(found) for tag, found in sorted(tags.items())},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.started_at, 3),
            "width_s": self.width_s,
            **self.total.as_dict(),
            "by_tag": {tag: f.as_dict() for tag, f in self.by_tag.items()},
        }


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
        return nearest_rank_ms(
            sorted(o.latency_s for o in self.outcomes if tag is None or o.tag == tag), q
        )

    def windows(self, width_s: float) -> list[LoadWindow]:
        """Figures per window of ``width_s`` seconds of *scheduled* time, from the run's start.

        A request belongs to the window in which it was due to leave, so a stall is charged to
        the window where clients started waiting for it. Windows with no request are kept (a
        generator that sent nothing for a while is itself a finding).
        """
        if width_s <= 0:
            raise LoadError("a window must be longer than 0 s")
        count = max(1, math.ceil(self.elapsed_s / width_s))
        buckets: list[list[Outcome]] = [[] for _ in range(count)]
        for o in self.outcomes:
            buckets[min(count - 1, int(o.scheduled_s // width_s))].append(o)
        return [
            LoadWindow.of(self.started_at + i * width_s, width_s, bucket)
            for i, bucket in enumerate(buckets)
        ]

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


class _RawSender:
    """A loopback target: raw HTTP/1.1 on one asyncio stream."""

    def __init__(self, plan: LoadPlan, host: str, port: int) -> None:
        self.plan, self.host, self.port = plan, host, port
        self.conn = _Connection(host, port)

    async def send(self, index: int) -> tuple[int, dict[str, str], bytes]:
        return await self.conn.request(_raw_request(self.plan, self.host, self.port, index))

    async def aclose(self) -> None:
        self.conn.close()


class _ClientSender:
    """A remote target: httpx on one connection (TLS; proxy and CA from the environment)."""

    def __init__(self, plan: LoadPlan) -> None:
        import httpx

        self.plan = plan
        self._httpx = httpx
        self._client: Any = None

    def _open(self) -> Any:
        if self._client is None:
            limits = self._httpx.Limits(max_connections=1, max_keepalive_connections=1)
            self._client = self._httpx.AsyncClient(
                base_url=self.plan.url, limits=limits, timeout=self.plan.timeout_s
            )
        return self._client

    async def send(self, index: int) -> tuple[int, dict[str, str], bytes]:
        body = self.plan.body(index) if self.plan.body else None
        try:
            response = await self._open().request(
                self.plan.method, self.plan.path, content=body, headers=self.plan.headers_for(index)
            )
        except self._httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        return (
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            (response.content),
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _raw_request(plan: LoadPlan, host: str, port: int, index: int) -> bytes:
    body = plan.body(index) if plan.body else b""
    lines = [f"{plan.method} {plan.path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in plan.headers_for(index).items()]
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

    def add(self, outcome: Outcome, answered_at: float | None = None) -> None:
        """Count an answer; ``answered_at`` is its ``time.monotonic()`` (default: now)."""
        self.sent += 1
        if not outcome.ok:
            self.failed += 1
            self.last_error = outcome.error or f"HTTP {outcome.status}"
        self.by_tag[outcome.tag or "-"] += 1
        when = time.monotonic() if answered_at is None else answered_at
        self.samples.append((when, outcome.latency_s, outcome.ok))

    def window(self, since: float) -> tuple[int, int, float]:
        """(requests, failed, p99 ms) of the answers since a ``time.monotonic()`` instant."""
        recent = [s for s in self.samples[-200_000:] if s[0] >= since]
        if not recent:
            return 0, 0, math.nan
        latencies = sorted(s[1] for s in recent)
        return len(recent), sum(1 for s in recent if not s[2]), nearest_rank_ms(latencies, 99)


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
    total = plan.total()
    tickets: asyncio.Queue[int | None] = asyncio.Queue()
    outcomes: list[Outcome] = []
    started_at = time.time()
    start = time.perf_counter()

    async def worker() -> None:
        conn = _ClientSender(plan) if plan.remote else _RawSender(plan, host, port)
        answered = 0  # on this connection
        try:
            while (index := await tickets.get()) is not None:
                scheduled = plan.offset_s(index)
                status, error, tag, note = 0, None, "", ""
                try:
                    status, headers, body = await asyncio.wait_for(conn.send(index), plan.timeout_s)
                    if plan.classify is not None:
                        tag = plan.classify(status, headers, body)
                    if plan.note is not None:
                        note = plan.note(status, headers, body)
                    answered += 1
                    if answered == plan.requests_per_connection:
                        await conn.aclose()
                        answered = 0
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    error = type(exc).__name__
                    await conn.aclose()
                    answered = 0
                latency = time.perf_counter() - start - scheduled
                outcome = Outcome(scheduled, latency, status, error, tag, note)
                outcomes.append(outcome)
                if live is not None:
                    live.add(outcome)
        finally:
            await conn.aclose()

    workers = [asyncio.create_task(worker()) for _ in range(plan.connections)]
    for index in range(total):
        if stop is not None and stop.is_set():
            break
        delay = start + plan.offset_s(index) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tickets.put_nowait(index)
    for _ in workers:
        tickets.put_nowait(None)
    await asyncio.gather(*workers)
    return LoadResult(outcomes, time.perf_counter() - start, started_at)


class BackgroundLoad:
    """A load plan running in a process of its own until ``stop()``.

    The generator measures latency from each request's schedule, so anything that delays the
    generator itself is charged to the server. In golive's own process it shared the GIL with
    the steps, and a step that held it for half a second (reading the validation pairs) showed up
    as half a second of "server" latency. In its own process (forked, so the plan's callables need
    no pickling) it measures the server alone. Outcomes come back over a pipe in batches every
    ``BATCH_S`` and feed ``live`` (counts, by tag, windows by the time each answer arrived).
    The child stops when told, when the pipe closes (golive died), or at the plan's duration.
    """

    BATCH_S = 0.1

    def __init__(self, plan: LoadPlan) -> None:
        plan.validate()
        self.plan = plan
        self.live = LiveCounts()
        self.result: LoadResult | None = None
        self.error: str | None = None
        self._outcomes: list[Outcome] = []
        context = multiprocessing.get_context("fork")
        self._conn, child_conn = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_child_main, args=(plan, child_conn), name="background-load", daemon=True
        )
        self._child_conn = child_conn
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name="background-load", daemon=True)

    def start(self) -> BackgroundLoad:
        self._process.start()
        self._child_conn.close()
        self._reader.start()
        self._ready.wait(10)
        return self

    def _read(self) -> None:
        try:
            while True:
                kind, payload = self._conn.recv()
                if kind == "ready":
                    self._ready.set()
                elif kind == "outcomes":
                    for answered_at, outcome in payload:
                        self._outcomes.append(outcome)
                        self.live.add(outcome, answered_at)
                elif kind == "done":
                    started_at, elapsed_s = payload
                    self.result = LoadResult(self._outcomes, elapsed_s, started_at)
                    return
                elif kind == "error":
                    self.error = payload
                    return
        except (EOFError, OSError) as exc:
            self.error = self.error or f"the load process ended without its figures ({exc!r})"
        finally:
            self._ready.set()

    @property
    def running(self) -> bool:
        return self._reader.is_alive()

    def stop(self, timeout_s: float = 60.0) -> LoadResult:
        with contextlib.suppress(OSError, ValueError):
            self._conn.send("stop")
        self._reader.join(timeout_s)
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._conn.close()
        if self.error is not None:
            raise LoadError(f"the background load failed: {self.error}")
        if self.result is None:
            raise LoadError("the background load did not finish")
        return self.result


class _Forwarder(LiveCounts):
    """In the load process: outcomes batched to the parent, each with when it was answered."""

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn
        self.batch: list[tuple[float, Outcome]] = []

    def add(self, outcome: Outcome, answered_at: float | None = None) -> None:
        self.batch.append((time.monotonic() if answered_at is None else answered_at, outcome))

    def flush(self) -> None:
        if self.batch:
            batch, self.batch = self.batch, []
            self.conn.send(("outcomes", batch))


def _child_main(plan: LoadPlan, conn: Any) -> None:
    """The load process: run the plan, stream outcomes, stop on "stop" or a closed pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for golive, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    forwarder = _Forwarder(conn)

    async def main() -> LoadResult:
        stop = asyncio.Event()

        def listen() -> None:
            with contextlib.suppress(EOFError, OSError):
                conn.recv()  # "stop", or the pipe closed because golive went away
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=listen, name="stop-listener", daemon=True).start()

        async def flush() -> None:
            while not stop.is_set():
                await asyncio.sleep(BackgroundLoad.BATCH_S)
                forwarder.flush()

        flusher = asyncio.create_task(flush())
        conn.send(("ready", None))
        try:
            return await run_load(plan, stop, forwarder)
        finally:
            stop.set()
            await flusher

    try:
        result = loop.run_until_complete(main())
        forwarder.flush()
        conn.send(("done", (result.started_at, result.elapsed_s)))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent's stop()
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", repr(exc)))
    finally:
        loop.close()
        conn.close()
