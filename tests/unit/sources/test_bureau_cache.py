"""The report caches: bounded and expiring in process; Redis failures degrade to a miss."""

from __future__ import annotations

import uuid

import pytest
from bureau_fakes import FakeClock

from credit_assessment.domain.types import BureauReport
from credit_assessment.sources.report_cache import (
    REDIS_KEY_PREFIX,
    InProcessReportCache,
    NoReportCache,
    RedisReportCache,
    report_from_json,
    report_to_json,
)


def report(n: int = 0, inquiries: int = 2) -> BureauReport:
    return BureauReport(
        uuid.UUID(int=n + 1), has_delinquency=n % 2 == 1, recent_inquiries=inquiries
    )


async def test_entry_lives_for_the_ttl() -> None:
    clock = FakeClock()
    cache = InProcessReportCache(ttl_s=60, clock=clock)
    await cache.put(report())
    clock.advance(59.9)
    assert await cache.get(report().client_id) == report()
    clock.advance(0.1)
    assert await cache.get(report().client_id) is None
    assert len(cache) == 0


async def test_least_recently_used_goes_first_when_full() -> None:
    cache = InProcessReportCache(ttl_s=60, max_entries=2, clock=FakeClock())
    await cache.put(report(0))
    await cache.put(report(1))
    assert await cache.get(report(0).client_id) is not None  # 0 is now the most recent
    await cache.put(report(2))
    assert len(cache) == 2
    assert await cache.get(report(1).client_id) is None
    assert await cache.get(report(0).client_id) == report(0)
    assert await cache.get(report(2).client_id) == report(2)


async def test_put_refreshes_an_entry() -> None:
    clock = FakeClock()
    cache = InProcessReportCache(ttl_s=10, clock=clock)
    await cache.put(report(inquiries=1))
    clock.advance(8)
    await cache.put(report(inquiries=5))
    clock.advance(8)
    found = await cache.get(report().client_id)
    assert found is not None and found.recent_inquiries == 5


async def test_no_cache_never_hits() -> None:
    cache = NoReportCache()
    await cache.put(report())
    assert await cache.get(report().client_id) is None


def test_json_round_trip_and_rejects() -> None:
    r = report(1)
    assert report_from_json(report_to_json(r), r.client_id) == r
    assert report_from_json(report_to_json(r), uuid.UUID(int=99)) is None  # someone else's
    assert report_from_json(b"not json", r.client_id) is None
    assert report_from_json(b'{"client_id": "x"}', r.client_id) is None
    bad = report_to_json(r).replace("true", '"yes"')
    assert report_from_json(bad, r.client_id) is None


class BrokenRedis:
    """Stands in for a redis client whose server has gone away."""

    def __init__(self) -> None:
        self.calls = 0
        self.healthy = False
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        self.calls += 1
        if not self.healthy:
            raise ConnectionError("Error 111 connecting to redis://:hunter2@localhost")
        return self.data.get(key)

    async def set(self, key: str, value: str, px: int) -> None:
        self.calls += 1
        if not self.healthy:
            raise TimeoutError
        self.data[key] = value

    async def aclose(self) -> None:
        raise ConnectionError


async def test_redis_failure_is_a_miss_and_stands_aside(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    redis = BrokenRedis()
    cache = RedisReportCache("redis://unused", ttl_s=60, retry_after_s=5, clock=clock, client=redis)
    assert await cache.get(report().client_id) is None
    assert not cache.available
    await cache.put(report())
    assert await cache.get(report().client_id) is None
    assert redis.calls == 1  # stood aside: no more calls while down
    clock.advance(5)
    redis.healthy = True
    await cache.put(report())
    assert await cache.get(report().client_id) == report()
    assert REDIS_KEY_PREFIX + str(report().client_id) in redis.data
    await cache.aclose()  # a failure to close is not an error
    assert "hunter2" not in capsys.readouterr().out
