"""Where recent bureau reports are kept, so one is reused within the stale period.

A cache is a convenience, never a dependency: every implementation answers ``None`` (a miss)
rather than raise, so a broken cache costs a bureau call, not an assessment.

* ``InProcessReportCache`` -- bounded (least recently used goes first), each entry lives ``ttl_s``.
* ``RedisReportCache`` -- shared by every worker and replica (``REDIS_URL``); Redis expires the
  keys. When Redis fails, the cache stands aside for ``retry_after_s`` and the service runs
  without it, logging ``bureau_cache_unavailable`` once per outage.
* ``NoReportCache`` -- the stale period is 0: every lookup goes to the bureau.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

import structlog

from credit_assessment.domain.types import BureauReport

log = structlog.get_logger()

REDIS_KEY_PREFIX = "credit-assessment:bureau-report:v1:"


class ReportCache(Protocol):
    async def get(self, client_id: UUID) -> BureauReport | None: ...

    async def put(self, report: BureauReport) -> None: ...

    async def aclose(self) -> None: ...


class NoReportCache:
    async def get(self, client_id: UUID) -> BureauReport | None:
        return None

    async def put(self, report: BureauReport) -> None:
        return None

    async def aclose(self) -> None:
        return None


class InProcessReportCache:
    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[UUID, tuple[float, BureauReport]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, client_id: UUID) -> BureauReport | None:
        entry = self._entries.get(client_id)
        if entry is None:
            return None
        expires_at, report = entry
        if self._clock() >= expires_at:
            del self._entries[client_id]
            return None
        self._entries.move_to_end(client_id)
        return report

    async def put(self, report: BureauReport) -> None:
        self._entries[report.client_id] = (self._clock() + self.ttl_s, report)
        self._entries.move_to_end(report.client_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()


def report_to_json(report: BureauReport) -> str:
    return json.dumps(
        {
            "client_id": str(report.client_id),
            "has_delinquency": report.has_delinquency,
            "recent_inquiries": report.recent_inquiries,
            "open_accounts": report.open_accounts,
        },
        separators=(",", ":"),
    )


def report_from_json(text: str | bytes, client_id: UUID) -> BureauReport | None:
    """The report stored for ``client_id``, or None when the entry is not one (or not theirs)."""
    try:
        doc = json.loads(text)
        report = BureauReport(
            client_id=UUID(doc["client_id"]),
            has_delinquency=doc["has_delinquency"],
            recent_inquiries=doc["recent_inquiries"],
            open_accounts=doc["open_accounts"],
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    valid = (
        report.client_id == client_id
        and type(report.has_delinquency) is bool
        and type(report.recent_inquiries) is int
        and type(report.open_accounts) is int
    )
    return report if valid else None


def redis_client(url: str, socket_timeout_s: float) -> Any:
    """An asyncio Redis client that gives up fast: a slow Redis must cost a request a fraction of
    a second, never hold it (callers fall back, and retry Redis only after a pause)."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        retry_on_timeout=False,
    )


class RedisReportCache:
    """Reports as JSON under ``REDIS_KEY_PREFIX + <client id>``, expired by Redis itself."""

    def __init__(
        self,
        url: str,
        ttl_s: float,
        socket_timeout_s: float = 0.25,
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        client: Any = None,
    ) -> None:
        self._redis = client if client is not None else redis_client(url, socket_timeout_s)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._down_until: float | None = None

    @property
    def available(self) -> bool:
        return self._down_until is None or self._clock() >= self._down_until

    async def get(self, client_id: UUID) -> BureauReport | None:
        if not self.available:
            return None
        try:
            raw = await self._redis.get(REDIS_KEY_PREFIX + str(client_id))
        except Exception as exc:  # noqa: BLE001 - any Redis failure degrades to no cache
            self._failed(exc)
            return None
        self._recovered()
        return None if raw is None else report_from_json(raw, client_id)

    async def put(self, report: BureauReport) -> None:
        if not self.available:
            return
        key = REDIS_KEY_PREFIX + str(report.client_id)
        try:
            await self._redis.set(key, report_to_json(report), px=self.ttl_ms)
        except Exception as exc:  # noqa: BLE001 - any Redis failure degrades to no cache
            self._failed(exc)
            return
        self._recovered()

    async def aclose(self) -> None:
        try:
            await self._redis.aclose()
        except Exception as exc:  # noqa: BLE001 - closing a broken connection is not a failure
            log.debug("bureau_cache_close_failed", error=type(exc).__name__)

    def _failed(self, exc: Exception) -> None:
        if self._down_until is None:
            # The exception's text may quote the URL, which can hold a password: name the type.
            log.warning(
                "bureau_cache_unavailable", error=type(exc).__name__, retry_s=self.retry_after_s
            )
        self._down_until = self._clock() + self.retry_after_s

    def _recovered(self) -> None:
        if self._down_until is not None:
            log.info("bureau_cache_recovered")
            self._down_until = None
