"""HttpBureau over httpx's MockTransport: what each kind of answer becomes, and what is sent."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Coroutine

import httpx
import pytest
import structlog
from bureau_fakes import FakeClock, RecordingMetrics

from credit_assessment.domain.types import BureauReport
from credit_assessment.settings import Settings
from credit_assessment.sources import (
    BureauConfig,
    HttpBureau,
    InProcessReportCache,
    LookupOutcome,
    NoBureau,
    bureau_from_settings,
)
from credit_assessment.sources.bureau import parse_report

CLIENT = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
API_KEY = "bureau-key-0123456789"
GOOD = {"clientId": str(CLIENT), "hasDelinquency": True, "recentInquiries": 3, "openAccounts": 2}

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def bureau(
    handler: Handler,
    clock: Callable[[], float] = time.monotonic,
    cache: InProcessReportCache | None = None,
    metrics: RecordingMetrics | None = None,
    **config: object,
) -> HttpBureau:
    settings: dict[str, object] = {
        "url": "http://bureau.test",
        "api_key": API_KEY,
        "backoff_s": 0.001,
        **config,
    }
    return HttpBureau(
        BureauConfig(**settings),  # type: ignore[arg-type]
        cache=cache,
        metrics=metrics,
        transport=httpx.MockTransport(handler),
        clock=clock,
    )


def answering(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return handler, seen


async def test_ok_sends_the_key_and_parses_the_report() -> None:
    handler, seen = answering(httpx.Response(200, json={**GOOD, "reportedAt": "2025-01-01"}))
    metrics = RecordingMetrics()
    source = bureau(handler, metrics=metrics)
    lookup = await source.report(CLIENT)
    assert lookup.outcome == LookupOutcome.OK
    assert lookup.report == BureauReport(CLIENT, True, 3, 2)
    assert seen[0].url.path == f"/v1/reports/{CLIENT}"
    assert seen[0].headers["X-API-Key"] == API_KEY
    assert metrics.outcomes == ["ok"]
    await source.aclose()


def test_the_key_is_not_in_the_config_repr() -> None:
    assert API_KEY not in repr(BureauConfig("http://bureau.test", API_KEY))


async def test_404_is_no_credit_file_and_not_a_failure() -> None:
    handler, seen = answering(httpx.Response(404, json={"detail": "no credit file"}))
    source = bureau(handler, breaker_failures=1)
    for _ in range(3):
        lookup = await source.report(CLIENT)
        assert lookup == (lookup.__class__(None, LookupOutcome.NOT_FOUND))
    assert len(seen) == 3  # the breaker stayed closed
    await source.aclose()


GARBAGE = [
    httpx.Response(200, text="<html>oops</html>"),
    httpx.Response(200, content=b'{"clientId": "123'),
    httpx.Response(200, json=[]),
    httpx.Response(200, json=None),
    httpx.Response(200, json={**GOOD, "hasDelinquency": "no"}),
    httpx.Response(200, json={**GOOD, "recentInquiries": "2"}),
    httpx.Response(200, json={**GOOD, "openAccounts": True}),
    httpx.Response(200, json={**GOOD, "openAccounts": -1}),
    httpx.Response(200, json={**GOOD, "openAccounts": 2.5}),
    httpx.Response(200, json={k: v for k, v in GOOD.items() if k != "openAccounts"}),
    httpx.Response(200, json={**GOOD, "clientId": str(uuid.UUID(int=7))}),
    httpx.Response(200, json={**GOOD, "clientId": "not-a-uuid"}),
    httpx.Response(200, content=b"\xff\xfe\x00"),
    httpx.Response(200, content=json.dumps({**GOOD, "pad": "x" * 70_000}).encode()),
]


@pytest.mark.parametrize("response", GARBAGE, ids=range(len(GARBAGE)))
async def test_malformed_body_is_an_error_and_not_retried(response: httpx.Response) -> None:
    handler, seen = answering(response)
    source = bureau(handler, retries=3)
    lookup = await source.report(CLIENT)
    assert (lookup.report, lookup.outcome) == (None, LookupOutcome.ERROR)
    assert len(seen) == 1
    await source.aclose()


def test_parse_accepts_a_valid_report_with_extra_fields() -> None:
    body = json.dumps({**GOOD, "score": 700}).encode()
    assert parse_report(body, CLIENT) == BureauReport(CLIENT, True, 3, 2)


async def test_5xx_is_retried_then_succeeds() -> None:
    handler, seen = answering(httpx.Response(503), httpx.Response(200, json=GOOD))
    source = bureau(handler, retries=1)
    assert (await source.report(CLIENT)).outcome == LookupOutcome.OK
    assert len(seen) == 2
    await source.aclose()


@pytest.mark.parametrize(("status", "calls"), [(500, 3), (429, 3), (401, 1), (400, 1), (302, 1)])
async def test_http_errors(status: int, calls: int) -> None:
    handler, seen = answering(httpx.Response(status))
    source = bureau(handler, retries=2)
    assert (await source.report(CLIENT)).outcome == LookupOutcome.ERROR
    assert len(seen) == calls
    await source.aclose()


async def test_connection_errors_are_retried_then_error() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    source = bureau(handler, retries=1)
    assert (await source.report(CLIENT)).outcome == LookupOutcome.ERROR
    assert len(seen) == 2
    await source.aclose()


async def test_a_slow_bureau_times_out_within_the_budget_and_is_not_retried() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await asyncio.sleep(5)
        return httpx.Response(200, json=GOOD)

    source = bureau(handler, timeout_s=0.2, retries=3)
    started = time.monotonic()
    lookup = await source.report(CLIENT)
    elapsed = time.monotonic() - started
    assert lookup.outcome == LookupOutcome.TIMEOUT
    assert 0.18 < elapsed < 0.5
    assert len(seen) == 1
    await source.aclose()


async def test_retries_stop_when_the_budget_is_spent() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await asyncio.sleep(0.15)
        return httpx.Response(503)

    source = bureau(handler, timeout_s=0.25, retries=5, backoff_s=0.05)
    started = time.monotonic()
    lookup = await source.report(CLIENT)
    assert lookup.outcome in (LookupOutcome.ERROR, LookupOutcome.TIMEOUT)
    assert time.monotonic() - started < 0.4
    assert len(seen) <= 2
    await source.aclose()


async def test_unexpected_exception_becomes_error() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in a transport")

    source = bureau(handler)
    assert (await source.report(CLIENT)).outcome == LookupOutcome.ERROR
    await source.aclose()


async def test_breaker_opens_serves_circuit_open_then_recovers() -> None:
    clock = FakeClock()
    metrics = RecordingMetrics()
    responses = {"status": 500}

    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if responses["status"] == 200:
            return httpx.Response(200, json=GOOD)
        return httpx.Response(responses["status"])

    source = bureau(
        handler, clock, metrics=metrics, retries=0, breaker_failures=3, breaker_reset_s=30
    )
    outcomes = [(await source.report(CLIENT)).outcome for _ in range(5)]
    assert outcomes == ["error"] * 3 + ["circuit_open"] * 2
    assert len(seen) == 3
    assert metrics.circuit == [True]
    clock.advance(30)
    responses["status"] = 200
    assert (await source.report(CLIENT)).outcome == LookupOutcome.OK
    assert metrics.circuit == [True, False]
    assert metrics.outcomes == ["error"] * 3 + ["circuit_open"] * 2 + ["ok"]
    await source.aclose()


async def test_half_open_lets_one_trial_through_at_a_time() -> None:
    clock = FakeClock()
    release = asyncio.Event()
    seen: list[httpx.Request] = []
    fail = True

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if fail:
            return httpx.Response(500)
        await release.wait()
        return httpx.Response(200, json=GOOD)

    source = bureau(handler, clock, retries=0, breaker_failures=1, breaker_reset_s=10)
    assert (await source.report(CLIENT)).outcome == LookupOutcome.ERROR
    clock.advance(10)
    fail = False
    trial = asyncio.create_task(source.report(CLIENT))
    await asyncio.sleep(0.01)
    others = [await source.report(CLIENT) for _ in range(3)]
    assert {o.outcome for o in others} == {LookupOutcome.CIRCUIT_OPEN}
    release.set()
    assert (await trial).outcome == LookupOutcome.OK
    assert len(seen) == 2
    await source.aclose()


async def test_cancelled_trial_does_not_stick_the_breaker() -> None:
    clock = FakeClock()

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(500)

    source = bureau(handler, clock, retries=0, breaker_failures=1, breaker_reset_s=10)
    source.breaker.record_failure()
    clock.advance(10)
    trial = asyncio.create_task(source.report(CLIENT))
    await asyncio.sleep(0.01)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert source.breaker.allow()  # the next call may be the trial
    await source.aclose()


async def test_a_fresh_report_is_reused_within_the_stale_period() -> None:
    clock = FakeClock()
    handler, seen = answering(httpx.Response(200, json=GOOD), httpx.Response(500))
    cache = InProcessReportCache(ttl_s=3600, clock=clock)
    source = bureau(handler, clock, cache=cache, retries=0)
    assert (await source.report(CLIENT)).outcome == LookupOutcome.OK
    clock.advance(3599)
    lookup = await source.report(CLIENT)
    assert lookup.outcome == LookupOutcome.CACHED
    assert lookup.report == BureauReport(CLIENT, True, 3, 2)
    assert len(seen) == 1
    clock.advance(1)  # stale now: ask the bureau, which is failing
    assert (await source.report(CLIENT)).outcome == LookupOutcome.ERROR
    await source.aclose()


async def test_no_bureau_is_disabled() -> None:
    metrics = RecordingMetrics()
    lookup = await NoBureau(metrics).report(CLIENT)
    assert (lookup.report, lookup.outcome) == (None, LookupOutcome.DISABLED)
    assert metrics.outcomes == ["disabled"]


async def test_from_settings(tmp_path: object) -> None:
    assert isinstance(bureau_from_settings(Settings(bureau_url=None)), NoBureau)
    source = bureau_from_settings(
        Settings(bureau_url="http://127.0.0.1:9/", bureau_api_key=API_KEY)  # type: ignore[arg-type]
    )
    assert isinstance(source, HttpBureau)
    assert source.config.api_key == API_KEY
    assert source.config.timeout_s == 2.0 and source.config.breaker_failures == 5
    await source.aclose()


def test_config_rejects_a_bad_url() -> None:
    with pytest.raises(ValueError, match="BUREAU_URL"):
        BureauConfig("bureau.test")


async def test_the_key_is_never_logged() -> None:
    handler, _ = answering(httpx.Response(503), httpx.Response(200, text="garbage"))
    source = bureau(handler, retries=1, breaker_failures=1)
    with structlog.testing.capture_logs() as logs:
        await source.report(CLIENT)
        await source.report(CLIENT)
    assert logs, "failures are logged"
    assert API_KEY not in repr(logs)
    await source.aclose()
