"""The rate limiter's windows with a given clock, and its fallback when Redis fails."""

from __future__ import annotations

from typing import Any

from credit_assessment.api.ratelimit import (
    LocalRateLimiter,
    RedisRateLimiter,
    rate_limiter,
    too_many,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_subject_over_its_limit_waits_for_the_next_window():
    clock = Clock(1000.25)
    limiter = LocalRateLimiter(2, 1.0, clock)
    assert [await limiter.hit("a") for _ in range(2)] == [None, None]
    assert await limiter.hit("a") == 0.75  # until 1001.0
    assert await limiter.hit("b") is None  # per subject
    clock.now = 1001.0
    assert await limiter.hit("a") is None


def test_the_problem_says_when_to_retry():
    problem = too_many(0.2, 2, 1.0)
    assert problem.status == 429 and problem.headers == {"retry-after": "1"}
    assert too_many(30.01, 100, 60).headers == {"retry-after": "31"}


class BrokenRedis:
    def pipeline(self, transaction: bool) -> Any:
        raise ConnectionRefusedError("down")

    async def aclose(self) -> None:
        return None


async def test_when_redis_fails_the_process_counts_on_its_own():
    clock = Clock(50.5)
    limiter = RedisRateLimiter("redis://unused", 1, 1.0, clock=clock, client=BrokenRedis())
    assert await limiter.hit("a") is None
    assert await limiter.hit("a") == 0.5


def test_no_limit_unless_the_settings_ask():
    assert rate_limiter(0, 1.0, None) is None
    assert isinstance(rate_limiter(5, 1.0, None), LocalRateLimiter)
