"""Replaying stored applications through the new engine's evaluate endpoint.

The endpoint decides and stores nothing, so a replay has no side effects. At most
``concurrency`` requests are in flight. Each application is tried up to ``attempts`` times:
a timeout, a refused or reset connection, 429 or a 5xx is retried after an exponential backoff
with jitter (``backoff_s`` doubling, capped at ``backoff_max_s``); 422 (unknown client) and other
4xx are final. An application that got no decision is *unanswered*, with its cause and the
attempts spent — never dropped. 401, 403, 404 and 405 stop the whole replay (bad token or wrong
URL: every other request would fail the same way).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from golive.errors import ReplayRefused
from golive.validation.config import Replay
from golive.validation.records import SCALE_NEW, Pair, Side, Stored, normal_decision, normal_grade
from golive.validation.transport import Transport, TransportFailure

FATAL = {401: "unauthorised", 403: "forbidden", 404: "not found", 405: "method not allowed"}
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class ReplayOutcome:
    pairs: list[Pair] = field(default_factory=list)
    unanswered: list[tuple[Stored, str, int]] = field(default_factory=list)  # row, cause, tries
    retries: int = 0
    elapsed_s: float = 0.0


def request_body(row: Stored) -> bytes:
    app = row.application
    return orjson.dumps(
        {"clientId": app.client_id, "loanAmount": app.loan_amount, "loanTerm": app.loan_term}
    )


def parse_answer(data: bytes) -> Side:
    """The new engine's side from an evaluate answer; ValueError when it is not one."""
    doc = orjson.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    decision = normal_decision(str(doc.get("decision") or ""))
    if decision is None:
        raise ValueError(f"unknown decision {doc.get('decision')!r}")
    score = doc.get("score")
    reasons = doc.get("reasons") or []
    return Side(
        decision,
        int(score) if isinstance(score, int | float) else None,
        normal_grade(doc.get("riskGrade")),
        frozenset(str(r.get("code")) for r in reasons if isinstance(r, dict)),
        SCALE_NEW,
        doc.get("modelVersion"),
    )


def backoff_delay(attempt: int, settings: Replay, rng: random.Random) -> float:
    """Before attempt ``attempt + 1``: half the capped exponential delay plus jitter up to it."""
    delay = min(settings.backoff_max_s, settings.backoff_s * 2 ** (attempt - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


class _Run:
    def __init__(self, transport: Transport, settings: Replay, sleep: Sleep, seed: int) -> None:
        self.transport, self.settings, self.sleep = transport, settings, sleep
        self.rng = random.Random(seed)
        self.outcome = ReplayOutcome()
        self.refused: ReplayRefused | None = None

    async def one(self, row: Stored) -> None:
        body = request_body(row)
        cause = "no attempt"
        for attempt in range(1, self.settings.attempts + 1):
            if attempt > 1:
                self.outcome.retries += 1
                await self.sleep(backoff_delay(attempt - 1, self.settings, self.rng))
            try:
                status, data = await self.transport.post(body)
            except TransportFailure as failure:
                cause = failure.cause
                continue
            if status == 200:
                try:
                    self.outcome.pairs.append(Pair(row.application, row.legacy, parse_answer(data)))
                except ValueError as exc:
                    self.outcome.unanswered.append((row, f"invalid answer: {exc}", attempt))
                return
            if status in FATAL:
                self.refused = ReplayRefused(f"the service answered {status} ({FATAL[status]})")
                return
            if status == 429 or status >= 500:
                cause = f"HTTP {status}"
                continue
            word = "unknown client" if status == 422 else "rejected"
            self.outcome.unanswered.append((row, f"HTTP {status} ({word})", attempt))
            return
        self.outcome.unanswered.append((row, cause, self.settings.attempts))

    async def worker(self, queue: list[Stored]) -> None:
        while queue and self.refused is None:
            await self.one(queue.pop())


async def replay(
    rows: Sequence[Stored],
    transport: Transport,
    settings: Replay,
    *,
    sleep: Sleep = asyncio.sleep,
    seed: int = 0,
) -> ReplayOutcome:
    """Send every row; at most ``settings.concurrency`` in flight."""
    run = _Run(transport, settings, sleep, seed)
    queue = list(reversed(rows))  # popped from the end: oldest first
    started = time.perf_counter()
    try:
        workers = min(settings.concurrency, len(rows)) or 1
        await asyncio.gather(*(run.worker(queue) for _ in range(workers)))
    finally:
        await transport.aclose()
    run.outcome.elapsed_s = time.perf_counter() - started
    if run.refused is not None:
        raise run.refused
    return run.outcome
