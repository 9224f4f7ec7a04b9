"""HttpBureau against the real emulator process: every failure the client must survive."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from credit_assessment.model.applicants import SMOKE_CLIENT_ID, load_applicants
from credit_assessment.sources import (
    BureauConfig,
    HttpBureau,
    InProcessReportCache,
    LookupOutcome,
)
from tests.conftest import free_port
from tests.integration.bureau.conftest import EMULATOR_CLIENTS, EMULATOR_KEY, EmulatorProcess


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.circuit: list[bool] = []

    def lookup_finished(self, outcome: LookupOutcome, duration_s: float) -> None:
        self.outcomes.append(str(outcome))

    def circuit_changed(self, is_open: bool) -> None:
        self.circuit.append(is_open)


def client(emulator: EmulatorProcess, cache_s: float = 0, **overrides: Any) -> HttpBureau:
    config: dict[str, Any] = {"url": emulator.url, "api_key": EMULATOR_KEY, **overrides}
    cache = InProcessReportCache(cache_s) if cache_s else None
    return HttpBureau(BureauConfig(**config), cache=cache, metrics=Recorder())


def recorder(source: HttpBureau) -> Recorder:
    metrics = source._metrics
    assert isinstance(metrics, Recorder)
    return metrics


async def test_known_clients_get_their_reports(emulator: EmulatorProcess) -> None:
    source = client(emulator)
    applicants = load_applicants(EMULATOR_CLIENTS)
    lookups = await asyncio.gather(*(source.report(a.client_id) for a in applicants))
    assert all(lookup.outcome == LookupOutcome.OK for lookup in lookups)
    assert [lookup.report for lookup in lookups] == [a.bureau for a in applicants]
    assert lookups[0].report is not None and lookups[0].report.client_id == SMOKE_CLIENT_ID
    await source.aclose()


async def test_unknown_client_is_not_found(emulator: EmulatorProcess) -> None:
    source = client(emulator, breaker_failures=1)
    for _ in range(3):
        lookup = await source.report(uuid.UUID(int=12345))
        assert (lookup.report, lookup.outcome) == (None, LookupOutcome.NOT_FOUND)
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.OK  # breaker closed
    await source.aclose()


async def test_wrong_api_key_is_an_error(emulator: EmulatorProcess) -> None:
    source = client(emulator, api_key="not-the-key")
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.ERROR
    await source.aclose()


@pytest.mark.slow
async def test_a_slow_bureau_times_out_within_the_budget(emulator: EmulatorProcess) -> None:
    emulator.control(latency_ms=3000)
    source = client(emulator, timeout_s=0.5, retries=1)
    started = time.monotonic()
    lookup = await source.report(SMOKE_CLIENT_ID)
    elapsed = time.monotonic() - started
    assert (lookup.report, lookup.outcome) == (None, LookupOutcome.TIMEOUT)
    assert 0.45 < elapsed < 0.8, elapsed
    emulator.control(reset=True, mode="timeout", hang_s=5)
    started = time.monotonic()
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.TIMEOUT
    assert time.monotonic() - started < 0.8
    await source.aclose()


async def test_latency_within_the_budget_is_fine(emulator: EmulatorProcess) -> None:
    emulator.control(latency_ms=100)
    source = client(emulator, timeout_s=1.0)
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.OK
    await source.aclose()


async def test_5xx_is_an_error_after_one_retry(emulator: EmulatorProcess) -> None:
    emulator.control(mode="error")
    source = client(emulator, retries=1)
    lookup = await source.report(SMOKE_CLIENT_ID)
    assert (lookup.report, lookup.outcome) == (None, LookupOutcome.ERROR)
    assert emulator.requests_served() == 2
    await source.aclose()


async def test_intermittent_5xx_is_mostly_absorbed_by_the_retry(emulator: EmulatorProcess) -> None:
    emulator.control(mode="error", failure_rate=0.2)
    source = client(emulator, retries=1, breaker_failures=50)
    lookups = [await source.report(a.client_id) for a in load_applicants(EMULATOR_CLIENTS)]
    ok = sum(lookup.outcome == LookupOutcome.OK for lookup in lookups)
    assert ok >= 40  # about 4% of lookups fail twice in a row at a 20% failure rate
    await source.aclose()


async def test_every_kind_of_garbage_is_an_error(emulator: EmulatorProcess) -> None:
    emulator.control(mode="garbage")
    source = client(emulator, breaker_failures=100)
    lookups = [await source.report(SMOKE_CLIENT_ID) for _ in range(6)]
    assert {(lookup.report, lookup.outcome) for lookup in lookups} == {(None, "error")}
    assert emulator.requests_served() == 6  # garbage is not retried
    await source.aclose()


async def test_an_absent_bureau_is_an_error_quickly() -> None:
    config = BureauConfig(url=f"http://127.0.0.1:{free_port()}", timeout_s=2.0)
    source = HttpBureau(config)
    started = time.monotonic()
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.ERROR
    assert time.monotonic() - started < 0.5  # connection refused, retried once
    await source.aclose()


@pytest.mark.slow
async def test_breaker_opens_then_recovers_after_reset(emulator: EmulatorProcess) -> None:
    emulator.control(mode="error")
    source = client(emulator, retries=0, breaker_failures=5, breaker_reset_s=1.0)
    outcomes = [(await source.report(SMOKE_CLIENT_ID)).outcome for _ in range(5)]
    assert outcomes == ["error"] * 5
    opened_at = time.monotonic()
    served = emulator.requests_served()
    assert served == 5
    for _ in range(20):
        started = time.monotonic()
        lookup = await source.report(SMOKE_CLIENT_ID)
        assert (lookup.report, lookup.outcome) == (None, LookupOutcome.CIRCUIT_OPEN)
        assert time.monotonic() - started < 0.01  # answered without the network
    assert emulator.requests_served() == served  # the bureau was not called
    assert recorder(source).circuit == [True]

    emulator.control(reset=True)  # the bureau is back
    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - opened_at)))
    lookup = await source.report(SMOKE_CLIENT_ID)
    assert lookup.outcome == LookupOutcome.OK  # the half-open trial
    assert recorder(source).circuit == [True, False]
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.OK
    await source.aclose()


@pytest.mark.slow
async def test_failed_trial_keeps_the_breaker_open(emulator: EmulatorProcess) -> None:
    emulator.control(mode="error")
    source = client(emulator, retries=0, breaker_failures=2, breaker_reset_s=0.3)
    for _ in range(2):
        await source.report(SMOKE_CLIENT_ID)
    await asyncio.sleep(0.3)
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.ERROR  # the trial
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.CIRCUIT_OPEN
    assert emulator.requests_served() == 3
    await source.aclose()


async def test_a_recent_report_is_served_while_the_bureau_is_down(
    emulator: EmulatorProcess,
) -> None:
    source = client(emulator, cache_s=3600)
    fresh = await source.report(SMOKE_CLIENT_ID)
    assert fresh.outcome == LookupOutcome.OK
    emulator.control(mode="error")
    stale = await source.report(SMOKE_CLIENT_ID)
    assert stale.outcome == LookupOutcome.CACHED
    assert stale.report == fresh.report
    other = load_applicants(2)[1].client_id
    assert (await source.report(other)).outcome == LookupOutcome.ERROR  # never fetched: no copy
    assert recorder(source).outcomes == ["ok", "cached", "error"]
    await source.aclose()


@pytest.mark.slow
async def test_a_report_older_than_the_stale_period_is_not_served(
    emulator: EmulatorProcess,
) -> None:
    source = client(emulator, cache_s=0.3)
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.OK
    emulator.control(mode="error")
    await asyncio.sleep(0.35)
    assert (await source.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.ERROR
    await source.aclose()
