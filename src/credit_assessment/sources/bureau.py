"""The credit bureau, as the assessor sees it: ``await bureau.report(client_id) -> BureauLookup``.

``report()`` never raises. Whatever happens, the caller gets a lookup with a report (or None) and
an outcome to count; the engine REFERs when the report is None (unless the product allows
skipping the bureau), so a bureau failure can never approve.

    outcome        report   what happened
    ok             yes      the bureau answered with a valid report
    cached         yes      a report fetched within the stale period was reused; no call made
    not_found      None     the bureau has no credit file for this client (HTTP 404)
    timeout        None     no answer within BUREAU_TIMEOUT_S (retries included)
    error          None     connection failure, 5xx, 4xx other than 404, or a malformed body
    circuit_open   None     the breaker is open: the bureau was not called
    disabled       None     no BUREAU_URL: there is no bureau to call

A lookup's whole time budget is ``timeout_s``, retries included, so an applicant waits at most
that long for the bureau. Connection errors, 429 and 5xx are retried (``retries`` times, after a
short backoff with jitter) while budget remains; a timeout is not retried, and neither is a
malformed body. Timeouts and errors count towards the breaker; ``ok`` and ``not_found`` close it
(the bureau is up, it just has no file). The API key travels in a header and is never logged.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import httpx
import structlog

from credit_assessment.domain.types import BureauReport
from credit_assessment.sources.breaker import BreakerState, CircuitBreaker
from credit_assessment.sources.report_cache import (
    InProcessReportCache,
    NoReportCache,
    RedisReportCache,
    ReportCache,
)

if TYPE_CHECKING:
    from credit_assessment.settings import Settings

log = structlog.get_logger()

REPORT_PATH = "/v1/reports/{client_id}"
MAX_BODY_BYTES = 64 * 1024
MAX_COUNT = 10_000  # inquiries or accounts beyond this are not a credible report
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class LookupOutcome(enum.StrEnum):
    OK = "ok"
    CACHED = "cached"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    ERROR = "error"
    CIRCUIT_OPEN = "circuit_open"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class BureauLookup:
    report: BureauReport | None
    outcome: LookupOutcome


class BureauSource(Protocol):
    async def report(self, client_id: UUID) -> BureauLookup: ...

    async def aclose(self) -> None: ...


class BureauMetrics(Protocol):
    """What the bureau client tells the service's metrics; wired by the app, not imported here."""

    def lookup_finished(self, outcome: LookupOutcome, duration_s: float) -> None: ...

    def circuit_changed(self, is_open: bool) -> None: ...


class NoMetrics:
    def lookup_finished(self, outcome: LookupOutcome, duration_s: float) -> None:
        return None

    def circuit_changed(self, is_open: bool) -> None:
        return None


@dataclass(frozen=True, slots=True)
class BureauConfig:
    url: str
    api_key: str | None = field(default=None, repr=False)
    api_key_header: str = "X-API-Key"
    timeout_s: float = 2.0
    retries: int = 1
    backoff_s: float = 0.05  # first retry waits backoff_s plus up to backoff_s of jitter
    stale_period_s: float = 86_400.0
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    max_connections: int = 20  # httpx slows down past a few dozen (encode/httpx#3215)
    cache_entries: int = 10_000  # in-process cache only

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("BUREAU_URL must be an http(s):// URL")
        if self.timeout_s <= 0 or self.retries < 0 or self.stale_period_s < 0:
            raise ValueError("bureau timeout must be positive; retries and stale period >= 0")


class NoBureau:
    """No bureau configured: every lookup is ``disabled``, so the engine REFERs (or skips)."""

    def __init__(self, metrics: BureauMetrics | None = None) -> None:
        self._metrics: BureauMetrics = metrics if metrics is not None else NoMetrics()

    async def report(self, client_id: UUID) -> BureauLookup:
        self._metrics.lookup_finished(LookupOutcome.DISABLED, 0.0)
        return BureauLookup(None, LookupOutcome.DISABLED)

    async def aclose(self) -> None:
        return None


class HttpBureau:
    """``GET {url}/v1/reports/{client_id}`` with the API key header; see the module docstring."""

    def __init__(
        self,
        config: BureauConfig,
        cache: ReportCache | None = None,
        metrics: BureauMetrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._cache: ReportCache = cache if cache is not None else NoReportCache()
        self._metrics: BureauMetrics = metrics if metrics is not None else NoMetrics()
        self._clock = clock
        self.breaker = CircuitBreaker(
            config.breaker_failures, config.breaker_reset_s, clock, self._breaker_changed
        )
        headers = {"Accept": "application/json"}
        if config.api_key:
            headers[config.api_key_header] = config.api_key
        self._client = httpx.AsyncClient(
            base_url=config.url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(max_connections=config.max_connections),
            transport=transport,
            follow_redirects=False,
        )

    async def report(self, client_id: UUID) -> BureauLookup:
        started = self._clock()
        try:
            lookup = await self._lookup(client_id)
        except Exception as exc:  # noqa: BLE001 - report() never raises, whatever broke
            log.error("bureau_lookup_failed", client_id=str(client_id), error=type(exc).__name__)
            lookup = BureauLookup(None, LookupOutcome.ERROR)
        self._metrics.lookup_finished(lookup.outcome, self._clock() - started)
        return lookup

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._cache.aclose()

    async def _lookup(self, client_id: UUID) -> BureauLookup:
        cached = await self._cache.get(client_id)
        if cached is not None:
            return BureauLookup(cached, LookupOutcome.CACHED)
        if not self.breaker.allow():
            return BureauLookup(None, LookupOutcome.CIRCUIT_OPEN)
        try:
            report, outcome = await self._fetch(client_id)
        except BaseException:
            self.breaker.release_trial()  # cancelled mid-call: let the next call be the trial
            raise
        if outcome in (LookupOutcome.OK, LookupOutcome.NOT_FOUND):
            self.breaker.record_success()
        else:
            self.breaker.record_failure()
        if report is not None:
            await self._cache.put(report)
        return BureauLookup(report, outcome)

    async def _fetch(self, client_id: UUID) -> tuple[BureauReport | None, LookupOutcome]:
        deadline = self._clock() + self.config.timeout_s
        path = REPORT_PATH.format(client_id=client_id)
        for attempt in range(self.config.retries + 1):
            if attempt:
                pause = self.config.backoff_s * 2 ** (attempt - 1)
                pause += random.uniform(0, pause)
                if deadline - self._clock() <= pause:
                    break
                await asyncio.sleep(pause)
            remaining = deadline - self._clock()
            try:
                async with asyncio.timeout(remaining):
                    response = await self._client.get(path)
                    body = await response.aread()
            except (TimeoutError, httpx.TimeoutException):
                log.warning("bureau_timeout", client_id=str(client_id), attempt=attempt + 1)
                return None, LookupOutcome.TIMEOUT
            except httpx.TransportError as exc:
                log.warning(
                    "bureau_unreachable", client_id=str(client_id), error=type(exc).__name__
                )
                continue
            status = response.status_code
            if status == 200:
                return self._parse(body, client_id)
            if status == 404:
                return None, LookupOutcome.NOT_FOUND
            log.warning("bureau_http_error", client_id=str(client_id), status=status)
            if status not in RETRY_STATUSES:
                break
        return None, LookupOutcome.ERROR

    def _parse(self, body: bytes, client_id: UUID) -> tuple[BureauReport | None, LookupOutcome]:
        report = parse_report(body, client_id)
        if report is None:
            log.warning("bureau_malformed_report", client_id=str(client_id), size=len(body))
            return None, LookupOutcome.ERROR
        return report, LookupOutcome.OK

    def _breaker_changed(self, state: BreakerState) -> None:
        log.warning("bureau_circuit_changed", state=state.value)
        if state is not BreakerState.HALF_OPEN:  # half-open still counts as open until it closes
            self._metrics.circuit_changed(state is BreakerState.OPEN)


def parse_report(body: bytes, client_id: UUID) -> BureauReport | None:
    """The report in a 200 body, or None when the body is not a valid report for ``client_id``.

    Expected: ``{"clientId": "<uuid>", "hasDelinquency": bool, "recentInquiries": int,
    "openAccounts": int}`` (other fields are ignored). Types are strict: ``"no"`` is not a
    boolean and ``true`` is not a count; a report about another client is rejected.
    """
    if len(body) > MAX_BODY_BYTES:
        return None
    try:
        doc: Any = json.loads(body)
        reported_id = UUID(doc["clientId"])
        delinquency = doc["hasDelinquency"]
        inquiries = doc["recentInquiries"]
        accounts = doc["openAccounts"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if reported_id != client_id or type(delinquency) is not bool:
        return None
    if not all(type(n) is int and 0 <= n <= MAX_COUNT for n in (inquiries, accounts)):
        return None
    return BureauReport(client_id, delinquency, inquiries, accounts)


def bureau_config_from_settings(settings: Settings) -> BureauConfig | None:
    """The bureau's config from ``credit_assessment.settings.Settings``; None without BUREAU_URL.

    Fields beyond ``bureau_url``/``bureau_api_key`` take their defaults until Settings has them.
    """
    if not settings.bureau_url:
        return None
    secret = settings.bureau_api_key
    defaults = BureauConfig(url=settings.bureau_url)
    return BureauConfig(
        url=settings.bureau_url,
        api_key=secret.get_secret_value() if secret is not None else None,
        timeout_s=float(getattr(settings, "bureau_timeout_s", defaults.timeout_s)),
        retries=int(getattr(settings, "bureau_retries", defaults.retries)),
        stale_period_s=float(getattr(settings, "bureau_stale_period_s", defaults.stale_period_s)),
        breaker_failures=int(
            getattr(settings, "bureau_breaker_failures", defaults.breaker_failures)
        ),
        breaker_reset_s=float(
            getattr(settings, "bureau_breaker_reset_s", defaults.breaker_reset_s)
        ),
    )


def report_cache_for(config: BureauConfig, redis_url: str | None) -> ReportCache:
    if config.stale_period_s <= 0:
        return NoReportCache()
    if redis_url:
        return RedisReportCache(redis_url, config.stale_period_s)
    return InProcessReportCache(config.stale_period_s, config.cache_entries)


def bureau_from_settings(settings: Settings, metrics: BureauMetrics | None = None) -> BureauSource:
    """The app's one bureau source (create in the lifespan, ``await source.aclose()`` after)."""
    config = bureau_config_from_settings(settings)
    if config is None:
        return NoBureau(metrics)
    redis_secret = settings.redis_url
    redis_url = redis_secret.get_secret_value() if redis_secret is not None else None
    return HttpBureau(config, report_cache_for(config, redis_url), metrics)
