"""A circuit breaker: stop calling a dependency that keeps failing, try again after a pause.

    CLOSED --(failure_threshold consecutive failures)--> OPEN
    OPEN   --(reset_s elapsed, next call is the trial)--> HALF_OPEN
    HALF_OPEN --(trial succeeds)--> CLOSED
    HALF_OPEN --(trial fails)--> OPEN (the pause starts again)

While HALF_OPEN only the trial call goes through; the others are refused as if OPEN. A trial
that ends without an answer is released (``release_trial``), and one that never reports back is
given up after another ``reset_s``, so the breaker cannot stick. The clock is injected, so the
state machine is tested without sleeping.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        reset_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_s < 0:
            raise ValueError("reset_s must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go out now? In HALF_OPEN a True answer makes the caller the trial."""
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self.reset_s:
                return False
            self._set(BreakerState.HALF_OPEN)
            self._trial_started_at = now
            return True
        # HALF_OPEN: one trial at a time, unless the trial in flight was abandoned.
        if self._trial_started_at is not None and now - self._trial_started_at < self.reset_s:
            return False
        self._trial_started_at = now
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._trial_started_at = None
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._trial_started_at = None
            self._set(BreakerState.OPEN)

    def release_trial(self) -> None:
        """The call allowed by ``allow()`` ended without an answer (cancelled): neither outcome."""
        self._trial_started_at = None

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
