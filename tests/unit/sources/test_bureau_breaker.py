"""The circuit breaker's state machine, on a clock moved by hand."""

from __future__ import annotations

import pytest
from bureau_fakes import FakeClock

from credit_assessment.sources.breaker import BreakerState, CircuitBreaker


def make(failures: int = 3, reset_s: float = 30.0) -> tuple[CircuitBreaker, FakeClock, list[str]]:
    clock = FakeClock()
    changes: list[str] = []
    breaker = CircuitBreaker(failures, reset_s, clock, lambda state: changes.append(state.value))
    return breaker, clock, changes


def test_opens_after_consecutive_failures_only() -> None:
    breaker, _, changes = make(failures=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # the streak is broken
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert changes == ["open"]


def test_half_open_after_reset_allows_one_trial_then_closes_on_success() -> None:
    breaker, clock, changes = make(failures=1, reset_s=30)
    breaker.record_failure()
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()  # the trial
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # others wait while the trial is out
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()
    assert changes == ["open", "half_open", "closed"]


def test_failed_trial_reopens_and_restarts_the_pause() -> None:
    breaker, clock, changes = make(failures=5, reset_s=10)
    for _ in range(5):
        breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure()  # one failure is enough in HALF_OPEN
    assert breaker.state is BreakerState.OPEN
    clock.advance(9)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()
    assert changes == ["open", "half_open", "open", "half_open"]


def test_released_trial_lets_the_next_call_try() -> None:
    breaker, clock, _ = make(failures=1, reset_s=5)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.allow()
    breaker.release_trial()  # the trial was cancelled
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


def test_abandoned_trial_expires_after_another_reset_period() -> None:
    breaker, clock, _ = make(failures=1, reset_s=5)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.allow()
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()


def test_success_resets_the_failure_count() -> None:
    breaker, _, _ = make(failures=2)
    breaker.record_failure()
    assert breaker.consecutive_failures == 1
    breaker.record_success()
    assert breaker.consecutive_failures == 0


@pytest.mark.parametrize(("failures", "reset_s"), [(0, 1.0), (1, -1.0)])
def test_rejects_nonsense_limits(failures: int, reset_s: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures, reset_s)
