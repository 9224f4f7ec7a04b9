"""Rate limiting per token subject on the assessment endpoints.

A fixed window per subject: at most ``RATE_LIMIT_REQUESTS`` requests in each
``RATE_LIMIT_WINDOW_S`` (windows aligned on the wall clock, so every pod counts the same window).
The request over the limit is answered ``429`` with ``Retry-After`` (the seconds until the
window ends, at least 1) and a problem+json body, and counted in
``credit_assessment_rate_limited_total``. ``/health``, ``/ready`` and ``/metrics`` are never
limited (only the assessment endpoints ask).

With ``REDIS_URL`` the counts are shared by every worker and pod (``INCR`` and ``PEXPIRE`` of
``credit-assessment:rate:v1:<subject>:<window>``, in one transaction), so the limit holds across
the service; without it each process counts its own. When Redis fails, the process falls back
to its own counts for ``retry_after_s`` (a limit held per process beats refusing every request).
``RATE_LIMIT_REQUESTS=0`` (the default) turns limiting off.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from credit_assessment.api.problems import Problem
from credit_assessment.sources.report_cache import redis_client

log = structlog.get_logger()
REDIS_KEY_PREFIX = "credit-assessment:rate:v1:"


class RateLimiter(Protocol):
    async def hit(self, subject: str) -> float | None:
        """Count one request of ``subject``; the seconds to wait when it is over the limit."""
        ...

    async def aclose(self) -> None: ...


def _window(now: float, window_s: float) -> tuple[int, float]:
    """The window ``now`` falls in, and the seconds until it ends."""
    index = math.floor(now / window_s)
    return index, (index + 1) * window_s - now


class LocalRateLimiter:
    """Counts of this process only."""

    def __init__(
        self, requests: int, window_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.requests = requests
        self.window_s = window_s
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, subject: str) -> float | None:
        return self.hit_now(subject)

    def hit_now(self, subject: str) -> float | None:
        index, left = _window(self._clock(), self.window_s)
        seen_index, count = self._counts.get(subject, (index, 0))
        count = count + 1 if seen_index == index else 1
        if len(self._counts) > 100_000:  # subjects of past windows
            self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        self._counts[subject] = (index, count)
        return left if count > self.requests else None

    async def aclose(self) -> None:
        return None


class RedisRateLimiter:
    """Counts shared through Redis by every worker and pod."""

    def __init__(
        self,
        url: str,
        requests: int,
        window_s: float,
        *,
        socket_timeout_s: float = 0.25,
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        client: Any = None,
    ) -> None:
        self._redis = client if client is not None else redis_client(url, socket_timeout_s)
        self.requests = requests
        self.window_s = window_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._local = LocalRateLimiter(requests, window_s, clock)
        self._down_until: float | None = None

    async def hit(self, subject: str) -> float | None:
        now = self._clock()
        if self._down_until is not None and now < self._down_until:
            return self._local.hit_now(subject)
        index, left = _window(now, self.window_s)
        # The subject is hashed: the key names no identity.
        who = hashlib.blake2b(subject.encode(), digest_size=12).hexdigest()
        key = f"{REDIS_KEY_PREFIX}{who}:{index}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpire(key, max(1, int((left + self.window_s) * 1000)))
                count, _ = await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis down: count in this process meanwhile
            if self._down_until is None:
                log.warning("rate_limit_store_unavailable", error=type(exc).__name__)
            self._down_until = now + self.retry_after_s
            return self._local.hit_now(subject)
        if self._down_until is not None:
            log.info("rate_limit_store_recovered")
            self._down_until = None
        return left if int(count) > self.requests else None

    async def aclose(self) -> None:
        try:
            await self._redis.aclose()
        except Exception as exc:  # noqa: BLE001 - closing a broken connection is not a failure
            log.debug("rate_limit_store_close_failed", error=type(exc).__name__)


def too_many(retry_after_s: float, requests: int, window_s: float) -> Problem:
    wait = max(1, math.ceil(retry_after_s))
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        f"At most {requests} requests per {window_s:g} s for this client; retry in {wait} s",
        headers={"retry-after": str(wait)},
    )


def rate_limiter(requests: int, window_s: float, redis_url: str | None) -> RateLimiter | None:
    """The limiter the settings ask for (None: no limit)."""
    if requests <= 0:
        return None
    if redis_url:
        return RedisRateLimiter(redis_url, requests, window_s)
    return LocalRateLimiter(requests, window_s)
